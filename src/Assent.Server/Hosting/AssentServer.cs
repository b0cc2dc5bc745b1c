using System.Text;
using Assent.Protocol;
using Assent.Protocol.Messages;
using Assent.Server.Admin;
using Assent.Server.Agents;
using Assent.Server.ApiKeys;
using Assent.Server.App;
using Assent.Server.Approvals;
using Assent.Server.Audit;
using Assent.Server.Authentication;
using Assent.Server.Challenges;
using Assent.Server.Payments;
using Assent.Server.Authorize;
using Assent.Server.Ciba;
using Assent.Server.Common;
using Assent.Server.Devices;
using Assent.Server.Discovery;
using Assent.Server.Identity;
using Assent.Server.Keys;
using Assent.Server.Mandates;
using Assent.Server.Passkeys;
using Assent.Server.Push;
using Assent.Server.Policies;
using Assent.Server.Sessions;
using Assent.Server.Storage;
using Assent.Server.Storage.Postgres;
using Assent.Server.Tokens;
using Assent.Server.Users;
using Assent.Server.Vault;
using Assent.Server.Webhooks;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Assent.Server.Hosting;

/// <summary>Builds and runs the Assent server; used by <c>assent server</c> and by tests.</summary>
public static class AssentServer
{
    /// <summary>Opens storage, loads keys and returns a ready-to-start app listening on <paramref name="urls"/>.</summary>
    public static async Task<WebApplication> BuildAsync(AssentOptions options, string urls, TextWriter? banner = null, TimeProvider? time = null,
        LogLevel logLevel = LogLevel.Warning, CancellationToken ct = default)
    {
        if ((options.Validate() ?? AccessTokenBudget.Problem(options)) is { } problem)
        {
            throw new InvalidOperationException(problem);
        }
        time ??= TimeProvider.System;
        // No appsettings.json is read with reloadOnChange: that watches the working directory and everything under it, and
        // where the data directory is the working directory (the container's /data) every SQLite write woke the watcher:
        // a twentieth of the server's CPU at full load. Settings come from the environment and the command line.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
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
        // ASP.NET Core writes several Information lines per request; a request nobody authenticated may write at most
        // one, and only Assent's own (docs/deployment.md §12). A narrower category in Logging__LogLevel__… still wins.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);

        // The key first: a key file refused (readable by others, a missing directory) leaves no database behind.
        var master = MasterKey.Load(options);
        if (master.PlacementWarning(options) is { } warning)
        {
            await Console.Error.WriteLineAsync(warning);
        }
        var (store, keys, invite) = await FirstStartAsync(options, master, time, ct);

        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(time);
        // Storage: one narrow store per aggregate (docs/storage.md).
        services.AddSingleton(store);
        services.AddSingleton(store.Users);
        services.AddSingleton(store.Devices);
        services.AddSingleton(store.Clients);
        services.AddSingleton(store.Consents);
        services.AddSingleton(store.Approvals);
        services.AddSingleton(store.Sessions);
        services.AddSingleton(store.Audit);
        services.AddSingleton(store.Keys);
        services.AddSingleton(store.Meta);
        services.AddSingleton(store.RateCounters);
        services.AddSingleton(store.ApiKeys);
        services.AddSingleton(store.Challenges);
        services.AddSingleton(store.Webhooks);
        services.AddSingleton(store.Policies);
        services.AddSingleton(store.Mandates);
        services.AddSingleton(store.Vault);
        services.AddSingleton(store.Database.Outbox);
        services.AddSingleton(master);
        services.AddSingleton(store.WebClients);
        // The core: identities, keys and tokens, the approval lifecycle.
        services.AddSingleton(keys);
        services.AddSingleton<IdentityDirectory>();
        services.AddSingleton<ClientDirectory>();
        services.AddSingleton<AgentConsents>();
        services.AddSingleton(await PasskeyCeremonies.CreateAsync(options, ct));
        services.AddSingleton<TokenIssuer>();
        services.AddSingleton<AccessTokenValidator>();
        services.AddSingleton<ApprovalHub>();
        services.AddSingleton<IApprovalEvents>(sp => sp.GetRequiredService<ApprovalHub>());
        services.AddSingleton<PolicyBook>();
        services.AddSingleton<MandateBook>();
        services.AddSingleton<ApprovalService>();
        services.AddSingleton<ApprovalViews>();
        services.AddSingleton<PollPacer>();
        services.AddSingleton<GrantSettler>();
        // Who is calling, decided once per request by a scheme.
        services.AddSingleton<AttemptLimiter>();
        services.AddSingleton<RefusalAudit>();
        services.AddSingleton<ClientAuthenticator>();
        services.AddRateLimiter(r => r.AddPolicy<string, CreationLimit>(CreationLimit.Policy));
        services.AddSingleton<WebSessions>();
        services.AddSingleton<Assent.Server.Passkeys.SignInChallenges>();
        services.AddAuthentication()
            .AddScheme<AuthenticationSchemeOptions, DeviceSignatureHandler>(AssentSchemes.Device, null)
            .AddScheme<AuthenticationSchemeOptions, WebSessionHandler>(AssentSchemes.WebSession, null)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyHandler>(AssentSchemes.ApiKey, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(AssentSchemes.Device, p => p.AddAuthenticationSchemes(AssentSchemes.Device).RequireAuthenticatedUser())
            .AddPolicy(AssentSchemes.WebSession, p => p.AddAuthenticationSchemes(AssentSchemes.WebSession).RequireAuthenticatedUser())
            .AddPolicy(AssentSchemes.ApiKey, p => p.AddAuthenticationSchemes(AssentSchemes.ApiKey).RequireAuthenticatedUser());
        // The features' services.
        services.AddSingleton<CibaGrant>();
        services.AddSingleton<SessionService>();
        services.AddSingleton<DeviceCodeGrant>();
        services.AddSingleton<ClientCredentialsGrant>();
        services.AddSingleton<CibaClients>();
        services.AddSingleton<TargetGuard>();
        services.AddSingleton<EventBodies>();
        services.AddHostedService<DeliveryWorker>();
        services.AddSingleton<AuthorizationCodeGrant>();
        services.AddSingleton<AuthorizationCodes>();
        services.AddPayments(store);
        services.AddSingleton<IdTokenHints>();
        services.AddHostedService<Sweeper>();
        await services.AddPushAsync(store, master, ct);
        if (store.Database is PostgresDatabase postgres)
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
            // Problem details are read by people: quotes stay quotes (the bodies are application/json, never HTML).
            j.SerializerOptions.Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping;
            j.SerializerOptions.TypeInfoResolverChain.Insert(0, ServerJson.Default);
            j.SerializerOptions.TypeInfoResolverChain.Insert(0, ProtocolJson.Default);
            // The /v1 messages keep their own camelCase contract (docs/challenges.md).
            j.SerializerOptions.TypeInfoResolverChain.Insert(0, V1Json.Default);
            j.SerializerOptions.TypeInfoResolverChain.Insert(0, PaymentJson.Default);
        });
        services.AddProblemDetails();
        services.AddExceptionHandler<ClientFaults>();
        services.AddSingleton<StorageHealth>();
        services.AddExceptionHandler<StorageOutages>();
        services.AddOpenApi("v1", o => o.AddSchemaTransformer<V1SchemaNames>());

        var app = builder.Build();
        if (options.ServerTiming)
        {
            // First, so that the time includes every other middleware.
            app.UseServerTiming();
        }
        if (ClientAddress.Forwarding(options.Limits) is { } forwarded)
        {
            app.UseForwardedHeaders(forwarded);
        }
        app.UseExceptionHandler(new ExceptionHandlerOptions { StatusCodeSelector = e => e is BadHttpRequestException b ? b.StatusCode : 500 });
        app.UseStatusCodePages();
        app.MapOpenApi("/openapi/{documentName}.json");
        app.UseRateLimiter();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapHealth();
        app.MapDiscovery(options);
        app.MapCiba();
        app.MapTokens();
        app.MapDevices();
        app.MapApprover();
        app.MapSessions();
        app.MapAgents();
        app.MapConsents();
        app.MapDids();
        app.MapAudit();
        app.MapPasskeys();
        app.MapApiKeys();
        app.MapChallenges();
        app.MapWebhooks();
        app.MapPush();
        app.MapAuthorize();
        app.MapPolicies();
        app.MapPayments();
        app.MapMandates();
        app.MapVault();
        app.MapApp(options);
        app.Lifetime.ApplicationStopped.Register(() => store.DisposeAsync().AsTask().GetAwaiter().GetResult());

        if (invite is not null)
        {
            (banner ?? Console.Out).WriteLine(invite.Created is { } created ? FirstUserBanner(created) : NoUsersYet);
        }
        return app;
    }

    internal const string NoUsersYet = "No users yet: another node starting at the same time printed the first (admin) user's one-time enrolment code.";

    /// <summary>Whether this start found no users and invited the first one: <see cref="Created"/> is null when another node did so first.</summary>
    private sealed record FirstInvite(Invite? Created);

    /// <summary>
    /// Opens storage, migrates it, checks the key-encryption key, creates the first signing key and the first user's
    /// invite when there are none. While the database is unreachable (a whole deployment coming up in any order) this is
    /// retried with a bounded backoff for <see cref="AssentOptions.StartupRetryFor"/>, one line on stderr per attempt.
    /// Each first-start step is single-winner, so nodes starting together on an empty database make one of each.
    /// </summary>
    private static async Task<(AssentStore Store, KeyRing Keys, FirstInvite? Invite)> FirstStartAsync(AssentOptions options, MasterKey master, TimeProvider time,
        CancellationToken ct)
    {
        // Waiting on another system: wall-clock time, whatever clock the tokens use.
        var clock = TimeProvider.System;
        var started = clock.GetTimestamp();
        var delay = TimeSpan.FromMilliseconds(250);
        for (var attempt = 1; ; attempt++)
        {
            AssentStore? store = null;
            try
            {
                store = await StoreFactory.OpenAsync(options, time, ct);
                var keys = new KeyRing(store.Keys, store.Meta, master, options, time, store.JoseKeys);
                await keys.InitializeAsync(ct);
                // Offline commands on this data (assent admin invite) print links for the issuer the server runs as (docs/cli.md §6).
                await store.Meta.SetAsync(MetaKeys.Issuer, Encoding.UTF8.GetBytes(options.IssuerString), ct);
                FirstInvite? invite = null;
                if (!await store.Users.AnyAsync(ct))
                {
                    invite = new FirstInvite(await new AdminOperations(store, options, time).InviteFirstAdminAsync(ct));
                }
                if (attempt > 1)
                {
                    await Console.Error.WriteLineAsync($"the database answered after {clock.GetElapsedTime(started).TotalSeconds:0.0} s ({attempt} attempts)");
                }
                return (store, keys, invite);
            }
            catch (Exception e) when (StorageFaults.IsUnavailableAtStart(e) && clock.GetElapsedTime(started) + delay < options.StartupRetryFor)
            {
                if (store is not null)
                {
                    await store.DisposeAsync();
                }
                await Console.Error.WriteLineAsync(
                    $"waiting for the database: {e.Message.ReplaceLineEndings(" ")} (attempt {attempt}; next in {delay.TotalSeconds:0.##} s, giving up after {options.StartupRetryFor.TotalSeconds:0} s)");
                await Task.Delay(delay, clock, ct);
                delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, MaxStartupDelay.TotalMilliseconds));
            }
            catch
            {
                if (store is not null)
                {
                    await store.DisposeAsync();
                }
                throw;
            }
        }
    }

    private static readonly TimeSpan MaxStartupDelay = TimeSpan.FromSeconds(10);

    internal static string FirstUserBanner(Invite invite)
    {
        var sb = new StringBuilder();
        sb.AppendLine("No users yet. Enrol the first (admin) user's device with this one-time code:");
        sb.AppendLine();
        sb.AppendLine($"  code: {invite.Code}");
        sb.AppendLine($"  link: {invite.Link}");
        sb.AppendLine();
        sb.AppendLine($"  or from a terminal: assent device enroll --server {invite.Link[..invite.Link.IndexOf(EndpointPaths.Enroll, StringComparison.Ordinal)]} --code {invite.Code}");
        sb.AppendLine($"The code works once and expires at {invite.ExpiresAt:u}.");
        return sb.ToString();
    }
}
