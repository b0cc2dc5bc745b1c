using System.Text.RegularExpressions;
using Assent.Protocol.Approvals;
using Assent.Server.Audit;
using Assent.Server.Hosting;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Assent.Server.Tokens;

namespace Assent.Server.Admin;

internal sealed record Invite(string Code, string Link, string Handle, string UserId, bool Admin, DateTimeOffset ExpiresAt);

internal sealed record CreatedAgent(string ClientId, string ClientSecret, string Name, string Scopes, string Owner);

/// <summary>Operator actions that work straight on the database, with or without a running server.</summary>
internal sealed partial class AdminOperations(IAssentStore store, AssentOptions options, TimeProvider time)
{
    public const string EnrollPath = "/app/enroll";

    [GeneratedRegex("^[a-z0-9._-]{1,48}$")]
    private static partial Regex HandlePattern();

    [GeneratedRegex("^[a-z0-9:._/-]{1,64}$")]
    private static partial Regex ScopePattern();

    public static bool IsValidHandle(string handle) => HandlePattern().IsMatch(handle);

    public async Task<Invite> InviteAsync(string handle, bool admin, CancellationToken ct)
    {
        if (!IsValidHandle(handle))
        {
            throw new ArgumentException("a handle is 1 to 48 characters of a-z, 0-9, '.', '_' and '-'");
        }
        var now = time.GetUtcNow();
        var code = Ids.InviteCode();
        var expires = now + options.InviteLifetime;
        var user = await store.CreateInviteAsync(
            new UserRecord(Ids.New("usr"), handle, admin, now.ToUnixTimeMilliseconds()),
            new InviteRecord(Ids.Hash(Ids.NormalizeInviteCode(code)), "", expires.ToUnixTimeMilliseconds(), null),
            new AuditEvent(AuditTypes.UserInvited, null, "operator", null, new Dictionary<string, string> { ["handle"] = handle, ["admin"] = admin ? "true" : "false" }),
            ct);
        var link = $"{options.IssuerString}{EnrollPath}?code={Uri.EscapeDataString(code)}";
        return new Invite(code, link, user.Handle, user.Id, user.IsAdmin, expires);
    }

    public async Task<CreatedAgent> CreateAgentAsync(string ownerHandle, string name, string scopes, CancellationToken ct)
    {
        var owner = await store.FindUserByHandleAsync(ownerHandle, ct)
            ?? throw new ArgumentException($"no user '{ownerHandle}'; invite them first: assent admin invite {ownerHandle}");
        name = name.Trim();
        if (name.Length is 0 or > AccessTokenBudget.MaxAgentNameLength)
        {
            throw new ArgumentException($"an agent name is 1 to {AccessTokenBudget.MaxAgentNameLength} characters");
        }
        // Approvers are shown the name: nothing in it may hide or reorder text.
        if (DisplayText.Problem("the agent name", name) is { } hidden)
        {
            throw new ArgumentException(hidden);
        }
        var list = NormalizeScopes(scopes);
        var clientId = Ids.New("agt");
        var secret = Ids.Secret("sec");
        await store.CreateClientAsync(new ClientRecord(clientId, Ids.Hash(secret), name, owner.Id, list, time.GetUtcNow().ToUnixTimeMilliseconds(), null),
            new AuditEvent(AuditTypes.AgentCreated, owner.Id, "operator", clientId, new Dictionary<string, string> { ["name"] = name, ["scopes"] = list }), ct);
        return new CreatedAgent(clientId, secret, name, list, owner.Handle);
    }

    /// <summary>Scopes an agent may ask for; <c>openid</c> is always included because CIBA requires it.</summary>
    public static string NormalizeScopes(string scopes)
    {
        var list = scopes.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Append("openid").Distinct().ToList();
        var bad = list.FirstOrDefault(s => !ScopePattern().IsMatch(s));
        if (bad is not null)
        {
            throw new ArgumentException($"'{bad}' is not a valid scope (use a-z, 0-9 and : . _ / -)");
        }
        return string.Join(' ', list);
    }

    public static async Task<string> RotateKeysAsync(IAssentStore store, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var ring = new KeyRing(store, MasterKey.Load(options.DataDirectory), options, time);
        await ring.InitializeAsync(ct);
        return await ring.RotateAsync(ct);
    }
}
