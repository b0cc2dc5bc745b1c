namespace Assent.Mcp;

/// <summary>
/// Marks an MCP tool method as needing a human's approval through Assent before it runs
/// (<see cref="AssentMcpServerBuilderExtensions.WithAssentApproval"/>). The template becomes the binding message
/// the human reads, filled from the call's arguments: <c>[RequiresApproval("Deploy {service} to {env}")]</c>.
/// </summary>
/// <param name="message">The binding-message template (<see cref="ApprovalTemplate"/>); null for the default message naming the tool.</param>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class RequiresApprovalAttribute(string? message = null) : Attribute
{
    /// <summary>The binding-message template, or null for the default.</summary>
    public string? Message => message;

    /// <summary>Scopes to ask for instead of <see cref="AssentApprovalOptions.Scope"/>.</summary>
    public string? Scope { get; set; }
}
