using System.Text.Json;
using Assent.Protocol.Messages;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace Assent.Server.Hosting;

/// <summary>
/// The OpenAPI document names members with the app's snake_case policy, but the /v1 messages are camelCase on the wire
/// (their own contract, <see cref="V1Json"/>): their schemas are renamed to match what is sent.
/// </summary>
internal sealed class V1SchemaNames : IOpenApiSchemaTransformer
{
    public Task TransformAsync(OpenApiSchema schema, OpenApiSchemaTransformerContext context, CancellationToken ct)
    {
        if (schema.Properties is not { Count: > 0 } properties || (V1Json.Default.GetTypeInfo(context.JsonTypeInfo.Type) ?? PaymentJson.Default.GetTypeInfo(context.JsonTypeInfo.Type)) is not { } v1)
        {
            return Task.CompletedTask;
        }
        foreach (var property in v1.Properties)
        {
            var clr = property.AttributeProvider is System.Reflection.MemberInfo m ? m.Name : property.Name;
            var snake = JsonNamingPolicy.SnakeCaseLower.ConvertName(clr);
            if (snake != property.Name && properties.Remove(snake, out var value))
            {
                properties[property.Name] = value;
                if (schema.Required?.Remove(snake) == true)
                {
                    schema.Required.Add(property.Name);
                }
            }
        }
        return Task.CompletedTask;
    }
}
