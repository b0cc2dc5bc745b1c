using Assent.Protocol;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Keys;
using Assent.Server.Storage;

namespace Assent.Server.Admin;

internal sealed record Invite(string Code, string Link, string Handle, string UserId, bool Admin, DateTimeOffset ExpiresAt);

internal sealed record CreatedAgent(string ClientId, string ClientSecret, string Name, string Scopes, string Owner);

internal sealed record CreatedApiKey(string Id, string Key, string Name, string Scopes, string Owner);

/// <summary>Operator actions that work straight on the database, with or without a running server.</summary>
internal sealed class AdminOperations(AssentStore store, AssentOptions options, TimeProvider time)
{
    public async Task<Invite> InviteAsync(string handle, bool admin, CancellationToken ct)
    {
        if (!Naming.IsValidHandle(handle))
        {
            throw new ArgumentException("a handle is 1 to 48 characters of a-z, 0-9, '.', '_' and '-'");
        }
        var (user, invite, audit, code, expires) = NewInvite(handle, admin);
        var created = await store.Users.CreateInviteAsync(user, invite, audit, ct);
        return new Invite(code, EnrollLink(options, code), created.Handle, created.Id, created.IsAdmin, expires);
    }

    /// <summary>
    /// At start with no users: invites the first (admin) user, unless another node starting at the same time already did
    /// (then null). The claim lasts a minute, so a later start on a database still without users prints a new code.
    /// </summary>
    public async Task<Invite?> InviteFirstAdminAsync(CancellationToken ct)
    {
        var (user, invite, audit, code, expires) = NewInvite("admin", admin: true);
        var created = await store.Users.TryCreateFirstInviteAsync(user, invite, audit,
            user.CreatedAt, (long)FirstInviteClaimLasts.TotalMilliseconds, ct);
        return created is null ? null : new Invite(code, EnrollLink(options, code), created.Handle, created.Id, true, expires);
    }

    /// <summary>The enrolment link an invite code is handed out with (docs/http-api.md §12.1).</summary>
    internal static string EnrollLink(AssentOptions options, string code) =>
        $"{options.IssuerString}{EndpointPaths.Enroll}?code={Uri.EscapeDataString(code)}";

    /// <summary>A new user with a one-time code, and its audit entry.</summary>
    private (UserRecord User, InviteRecord Invite, AuditEvent Audit, string Code, DateTimeOffset Expires) NewInvite(string handle, bool admin)
    {
        var now = time.GetUtcNow();
        var code = Ids.InviteCode();
        var expires = now + options.InviteLifetime;
        return (new UserRecord(Ids.New("usr"), handle, admin, now.ToUnixTimeMilliseconds()),
            new InviteRecord(Ids.Hash(Ids.NormalizeInviteCode(code)), "", expires.ToUnixTimeMilliseconds(), null),
            new AuditEvent(AuditTypes.UserInvited, null, "operator", null, new Dictionary<string, string> { ["handle"] = handle, ["admin"] = admin ? "true" : "false" }),
            code, expires);
    }

    private static readonly TimeSpan FirstInviteClaimLasts = TimeSpan.FromMinutes(1);

    public async Task<CreatedAgent> CreateAgentAsync(string ownerHandle, string name, string scopes, CancellationToken ct)
    {
        var owner = await store.Users.FindByHandleAsync(ownerHandle, ct)
            ?? throw new ArgumentException($"no user '{ownerHandle}'; invite them first: assent admin invite {ownerHandle}");
        name = name.Trim();
        // Approvers are shown the name: nothing in it may hide or reorder text.
        if (Naming.NameProblem("the agent name", name) is { } refused)
        {
            throw new ArgumentException(refused);
        }
        var list = Naming.NormalizeScopes(scopes);
        var clientId = Ids.New("agt");
        var secret = Ids.Secret("sec");
        // Approvers tell an owner's agents apart by name (docs/concepts.md §3): the store refuses a name the owner already uses.
        if (!await store.Clients.TryCreateAsync(new ClientRecord(clientId, Ids.Hash(secret), name, owner.Id, list, time.GetUtcNow().ToUnixTimeMilliseconds(), null),
                new AuditEvent(AuditTypes.AgentCreated, owner.Id, "operator", clientId, new Dictionary<string, string> { ["name"] = name, ["scopes"] = list }), ct))
        {
            throw new ArgumentException(Naming.AgentNameTaken(owner.Handle, name, (await store.Clients.FindActiveByNameAsync(owner.Id, name, ct))?.Id));
        }
        return new CreatedAgent(clientId, secret, name, list, owner.Handle);
    }

    /// <summary>An API key for the /v1 API (docs/challenges.md §1), created offline by the operator.</summary>
    public async Task<CreatedApiKey> CreateApiKeyAsync(string ownerHandle, string name, string scopes, CancellationToken ct)
    {
        var owner = await store.Users.FindByHandleAsync(ownerHandle, ct)
            ?? throw new ArgumentException($"no user '{ownerHandle}'; invite them first: assent admin invite {ownerHandle}");
        name = name.Trim();
        if (Naming.NameProblem("the key name", name) is { } refused)
        {
            throw new ArgumentException(refused);
        }
        var list = Authentication.ApiScopes.Normalize(scopes);
        var id = Ids.New("key");
        var key = Ids.Secret(Authentication.ApiKeyHandler.Prefix[..^1]);
        await store.ApiKeys.CreateAsync(new ApiKeyRecord(id, Ids.Hash(key), owner.Id, name, list, time.GetUtcNow().ToUnixTimeMilliseconds(), null, null),
            new AuditEvent(AuditTypes.ApiKeyCreated, owner.Id, "operator", id, new Dictionary<string, string> { ["name"] = name, ["scopes"] = list }), ct);
        return new CreatedApiKey(id, key, name, list, owner.Handle);
    }

    /// <summary>
    /// An agent's CIBA delivery mode (CIBA Core §4 <c>backchannel_token_delivery_mode</c>): poll, or ping / push to its
    /// <c>backchannel_client_notification_endpoint</c>, which CIBA Core §4 requires to be https.
    /// </summary>
    public async Task SetAgentDeliveryAsync(string clientId, string mode, string? endpoint, CancellationToken ct)
    {
        if (!Protocol.OAuth.DeliveryModes.Poll.Equals(mode) && !Protocol.OAuth.DeliveryModes.Ping.Equals(mode) && !Protocol.OAuth.DeliveryModes.Push.Equals(mode))
        {
            throw new ArgumentException("--delivery-mode must be poll, ping or push");
        }
        if (mode == Protocol.OAuth.DeliveryModes.Poll)
        {
            endpoint = null;
        }
        else if (endpoint is null || !Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) ||
                 !(uri.Scheme == Uri.UriSchemeHttps || (uri.Scheme == Uri.UriSchemeHttp && uri.IsLoopback)) || uri.Fragment.Length > 0)
        {
            throw new ArgumentException($"{mode} needs --notification-endpoint: an https URL (http only on loopback, for testing)");
        }
        if (!await store.Webhooks.TrySetCibaClientAsync(clientId, new CibaClientSettings(mode, endpoint), new AuditEvent(AuditTypes.AgentDeliveryChanged,
                null, "operator", clientId, new Dictionary<string, string> { ["mode"] = mode, ["endpoint"] = endpoint ?? "" }), ct))
        {
            throw new ArgumentException($"no active agent '{clientId}'");
        }
    }

    /// <summary>Registers a web client for passkey sign-in (docs/cli.md §6, <c>assent admin client create</c>).</summary>
    public async Task<Authorize.CreatedWebClient> CreateWebClientAsync(string name, IReadOnlyList<string> redirectUris, IReadOnlyList<string> postLogoutRedirectUris,
        bool isPublic, string? idTokenAlg, CancellationToken ct)
    {
        var created = await Authorize.WebClientRegistration.CreateAsync(store.WebClients, name, redirectUris, postLogoutRedirectUris, isPublic, idTokenAlg, time, ct);
        if (created.IdTokenAlg != IdTokenAlgs.EdDsa)
        {
            // The ES256/RS256 key is made now, not at the first sign-in: a relying party reads the JWKS once at start-up
            // (Microsoft's OpenID Connect handler refreshes it at most every five minutes), so a key made later is one
            // its first sign-in cannot find (docs/tokens.md §11). Running nodes publish it at their next key refresh.
            var ring = new KeyRing(store.Keys, store.Meta, MasterKey.Load(options), options, time, store.JoseKeys);
            await ring.InitializeAsync(ct);
            await ring.JoseKeyAsync(created.IdTokenAlg, ct);
        }
        return created;
    }

    public async Task<string> RotateKeysAsync(CancellationToken ct)
    {
        var ring = new KeyRing(store.Keys, store.Meta, MasterKey.Load(options), options, time, store.JoseKeys);
        await ring.InitializeAsync(ct);
        return await ring.RotateAsync(ct);
    }
}
