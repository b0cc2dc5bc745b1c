using System.Text;
using Assent.Server.Admin;
using Assent.Server.App;
using Assent.Server.Agents;
using Assent.Server.Approvals;
using Assent.Server.Audit;
using Assent.Server.Ciba;
using Assent.Server.Clients;
using Assent.Server.Devices;
using Assent.Server.Discovery;
using Assent.Server.Http;
using Assent.Server.Keys;
using Assent.Server.Passkeys;
using Assent.Server.Sessions;
using Assent.Server.Storage;
using Assent.Server.Tokens;
using Assent.Server.Users;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Assent.Server.Hosting;

/// <summary>Builds and runs the Assent server; used by <c>assent server</c> and by tests.</summary>
public static class AssentServer
{
    /// <summary>Opens storage, loads keys and returns a ready-to-start app listening on <paramref name="urls"/>.</summary>
    public static async Task<WebApplication> BuildAsync(AssentOptions options, string urls, TextWriter? banner = null, TimeProvider? time = null,
        LogLevel logLevel = LogLevel.Warning, CancellationToken ct = default)
    {
        if (options.Validate() is { } problem)
        {
            throw new InvalidOperationException(problem);
        }
        time ??= TimeProvider.System;
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(urls);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            k.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
            k.Limits.MaxConcurrentConnections = null;
            k.Limits.MaxConcurrentUpgradedConnections = null;
        });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(logLevel);

        var store = await StoreFactory.OpenAsync(options, time, ct);
        var keys = new KeyRing(store, MasterKey.Load(options.DataDirectory), options, time);
        await keys.InitializeAsync(ct);

        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(time);
        services.AddSingleton(store);
        services.AddSingleton(keys);
        services.AddSingleton<ApprovalHub>();
        services.AddSingleton<ApprovalService>();
        services.AddSingleton<PollPacer>();
        services.AddSingleton<ClientDirectory>();
        services.AddSingleton<IdentityDirectory>();
        services.AddSingleton<ClientAuthenticator>();
        services.AddSingleton<DeviceAuthenticator>();
        services.AddSingleton<TokenIssuer>();
        services.AddSingleton<SessionService>();
        services.AddSingleton<AccessTokenValidator>();
        services.AddSingleton<AdminOperations>();
        services.AddSingleton<WebSessions>();
        services.AddSingleton(await PasskeyCeremonies.CreateAsync(options, ct));
        services.AddHostedService<Sweeper>();
        if (store is PostgresStore postgres)
        {
            services.AddSingleton(postgres);
            services.AddHostedService<PostgresListener>();
        }
        services.Configure<FormOptions>(f =>
        {
            var limits = RequestBodies.Limits(options.MaxRequestBodyBytes);
            f.ValueLengthLimit = limits.ValueLengthLimit;
            f.KeyLengthLimit = limits.KeyLengthLimit;
            f.ValueCountLimit = limits.ValueCountLimit;
            f.BufferBodyLengthLimit = limits.BufferBodyLengthLimit;
            f.MultipartBodyLengthLimit = limits.MultipartBodyLengthLimit;
        });
        services.ConfigureHttpJsonOptions(j =>
        {
            // One wire style everywhere: snake_case members, absent rather than null.
            j.SerializerOptions.PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower;
            j.SerializerOptions.DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull;
            j.SerializerOptions.TypeInfoResolverChain.Insert(0, ServerJson.Default);
        });
        services.AddProblemDetails();
        services.AddOpenApi("v1");

        var app = builder.Build();
        app.UseExceptionHandler(new ExceptionHandlerOptions { StatusCodeSelector = e => e is BadHttpRequestException b ? b.StatusCode : 500 });
        app.UseStatusCodePages();
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapGet("/healthz", async (IAssentStore s, CancellationToken c) =>
            {
                await s.AnyUserAsync(c);
                return TypedResults.Json(new HealthReport("ok", s is SqliteStore ? "sqlite" : "postgres"), ServerJson.Default.HealthReport);
            })
            .WithSummary("Liveness and readiness: answers once storage responds").WithTags("Operations");
        app.MapDiscovery(options);
        app.MapCiba();
        app.MapTokens();
        app.MapDevices();
        app.MapSessions();
        app.MapAgents();
        app.MapDids();
        app.MapAudit();
        app.MapPasskeys();
        app.MapApp(options);
        app.Lifetime.ApplicationStopped.Register(() => store.DisposeAsync().AsTask().GetAwaiter().GetResult());

        if (!await store.AnyUserAsync(ct))
        {
            var invite = await new AdminOperations(store, options, time).InviteAsync("admin", admin: true, ct);
            (banner ?? Console.Out).WriteLine(FirstUserBanner(invite));
        }
        return app;
    }

    internal static string FirstUserBanner(Invite invite)
    {
        var sb = new StringBuilder();
        sb.AppendLine("No users yet. Enrol the first (admin) user's device with this one-time code:");
        sb.AppendLine();
        sb.AppendLine($"  code: {invite.Code}");
        sb.AppendLine($"  link: {invite.Link}");
        sb.AppendLine();
        sb.AppendLine($"  or from a terminal: assent device enroll --server {invite.Link[..invite.Link.IndexOf(AdminOperations.EnrollPath, StringComparison.Ordinal)]} --code {invite.Code}");
        sb.AppendLine($"The code works once and expires at {invite.ExpiresAt:u}.");
        return sb.ToString();
    }
}
