using System.Text.Json;
using System.Text.RegularExpressions;
using Assent.Protocol.OAuth;
using Assent.Server.Common;
using Assent.Server.Storage;

namespace Assent.Server.Approvals;

/// <summary>A policy as an operator writes it (CLI or <c>/v1/policies</c>), before it is checked and stored (docs/policies.md §1).</summary>
internal sealed record PolicyDraft(
    string? Name,
    int? Position,
    string? Agent,
    string? Scope,
    string? DetailType,
    string? Currency,
    JsonElement? AmountOver,
    JsonElement? AmountAtMost,
    string? Requires,
    int? Quorum,
    IReadOnlyList<string>? Approvers);

/// <summary>A policy refused at creation, with what to fix.</summary>
internal sealed class PolicyProblemException(string message) : ArgumentException(message);

/// <summary>A request a deny policy refuses (docs/policies.md §1): nothing is created.</summary>
internal sealed class PolicyDeniedException(PolicyRecord policy) : Exception($"policy {policy.Label} denies this request")
{
    public PolicyRecord Policy { get; } = policy;
}

/// <summary>
/// Policies (docs/policies.md): checked when added, tried in order when a request is created, the first match deciding
/// what the request needs: one approver, a quorum of named users, or a refusal.
/// </summary>
internal sealed partial class PolicyBook(IPolicyStore policies, IUserStore users, TimeProvider time)
{
    /// <summary>Most users a quorum may name; also bounds what one request fans out to.</summary>
    public const int MaxApprovers = 32;

    [GeneratedRegex("^[a-z0-9][a-z0-9._-]{0,47}$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[\\x21\\x23-\\x5B\\x5D-\\x7E]{1,128}$", RegexOptions.CultureInvariant)]
    private static partial Regex ScopeToken();

    public Task<IReadOnlyList<PolicyRecord>> ListAsync(CancellationToken ct) => policies.ListActiveAsync(ct);

    /// <summary>Checks and stores a policy (the next version of its name); <see cref="PolicyProblemException"/> says what is wrong, and nothing is stored.</summary>
    public async Task<PolicyRecord> AddAsync(PolicyDraft d, string actor, CancellationToken ct)
    {
        if (d.Name is null || !NamePattern().IsMatch(d.Name))
        {
            throw new PolicyProblemException("name is required: 1 to 48 of a-z 0-9 . _ - starting with a letter or digit (e.g. treasury-large)");
        }
        if (d.Position is { } p && (p < 0 || p > 1_000_000))
        {
            throw new PolicyProblemException("position must be between 0 and 1000000 (lower is tried first)");
        }
        if (d.Agent is { } agent && (agent.Length is 0 or > 64 || agent.Any(char.IsWhiteSpace)))
        {
            throw new PolicyProblemException("agent must be a client id (agt_…) or an API key id");
        }
        if (d.Scope is { } scope && !ScopeToken().IsMatch(scope))
        {
            throw new PolicyProblemException("scope must be one scope token (RFC 6749 §3.3), e.g. payments:send");
        }
        if (d.DetailType is { } type && (type.Length is 0 or > 64 || type.Any(char.IsWhiteSpace)))
        {
            throw new PolicyProblemException("type must be an authorization_details type (RFC 9396), e.g. payment");
        }
        string? over = null, atMost = null;
        if (d.AmountOver is not null || d.AmountAtMost is not null)
        {
            if (d.Currency is null)
            {
                throw new PolicyProblemException("an amount bound needs a currency: amounts are compared per currency (ISO 4217, e.g. USD)");
            }
            over = Amount(d.AmountOver, d.Currency, "amount over");
            atMost = Amount(d.AmountAtMost, d.Currency, "amount at most");
            if (over is not null && atMost is not null && Money.Compare(over, atMost) >= 0)
            {
                throw new PolicyProblemException($"no amount is over {over} and at most {atMost} {d.Currency}: the policy could never match");
            }
        }
        else if (d.Currency is not null && Money.MinorUnits(d.Currency) is null)
        {
            throw new PolicyProblemException($"currency '{d.Currency}' is not an ISO 4217 currency code (e.g. USD, EUR, JPY)");
        }
        var requires = d.Requires ?? (d.Approvers is { Count: > 0 } ? PolicyRequirements.Quorum : PolicyRequirements.One);
        if (!PolicyRequirements.IsValid(requires))
        {
            throw new PolicyProblemException($"requires must be '{PolicyRequirements.One}', '{PolicyRequirements.Quorum}' or '{PolicyRequirements.Deny}'");
        }
        var approverIds = new List<string>();
        var quorum = 1;
        if (requires == PolicyRequirements.Quorum)
        {
            if (d.Approvers is not { Count: > 0 } named)
            {
                throw new PolicyProblemException("a quorum names its approvers: the users (handles or ids) of whom M must approve");
            }
            if (named.Count > MaxApprovers)
            {
                throw new PolicyProblemException($"a quorum names at most {MaxApprovers} approvers");
            }
            foreach (var who in named)
            {
                var user = (who.StartsWith("usr_", StringComparison.Ordinal) ? await users.FindAsync(who, ct) : null) ?? await users.FindByHandleAsync(who, ct)
                    ?? throw new PolicyProblemException($"approver '{Shorten(who)}' is no user of this server; invite them first (assent admin invite HANDLE)");
                // The same user named twice is one approver: a quorum counts distinct users.
                if (!approverIds.Contains(user.Id))
                {
                    approverIds.Add(user.Id);
                }
            }
            quorum = d.Quorum ?? approverIds.Count;
            if (quorum < 1 || quorum > approverIds.Count)
            {
                throw new PolicyProblemException($"a quorum of {quorum} of {approverIds.Count} distinct approvers can never be reached: M must be between 1 and {approverIds.Count}");
            }
        }
        else if (d.Approvers is { Count: > 0 } || d.Quorum is not null)
        {
            throw new PolicyProblemException($"approvers and quorum belong to requires '{PolicyRequirements.Quorum}' only");
        }
        var now = time.GetUtcNow();
        var draft = new PolicyRecord(Ids.Ordered("pol", now), d.Name, 0, d.Position ?? 100, d.Agent, d.Scope, d.DetailType, d.Currency, over, atMost,
            requires, quorum, string.Join(' ', approverIds), now.ToUnixTimeMilliseconds(), null);
        return await policies.AddAsync(draft, p => new AuditEvent(AuditTypes.PolicyAdded, null, actor, p.Label, Describe(p)), ct);
    }

    /// <summary>Retires the active version of a policy; null when there is none.</summary>
    public Task<PolicyRecord?> RemoveAsync(string name, string actor, CancellationToken ct) =>
        policies.TryRemoveAsync(name, time.GetUtcNow().ToUnixTimeMilliseconds(), p => new AuditEvent(AuditTypes.PolicyRemoved, null, actor, p.Label), ct);

    /// <summary>The first active policy a request matches, or null (one approver, the requested user).</summary>
    public async Task<PolicyRecord?> MatchAsync(string clientId, string scope, string? authorizationDetails, CancellationToken ct)
    {
        var active = await policies.ListActiveAsync(ct);
        if (active.Count == 0)
        {
            return null;
        }
        using var details = authorizationDetails is null ? null : JsonDocument.Parse(authorizationDetails);
        return active.FirstOrDefault(p => Matches(p, clientId, scope, details?.RootElement));
    }

    /// <summary>
    /// Every condition the policy sets must hold (docs/policies.md §2). Type and amount are met by one entry of
    /// <c>authorization_details</c> together: its type, and its amount in the policy's currency within the bounds.
    /// </summary>
    internal static bool Matches(PolicyRecord p, string clientId, string scope, JsonElement? details)
    {
        if (p.ClientId is not null && p.ClientId != clientId)
        {
            return false;
        }
        if (p.Scope is not null && !scope.Split(' ').Contains(p.Scope))
        {
            return false;
        }
        if (p.DetailType is null && p.Currency is null)
        {
            return true;
        }
        if (details is not { ValueKind: JsonValueKind.Array } entries)
        {
            return false;
        }
        foreach (var entry in entries.EnumerateArray())
        {
            if (entry.ValueKind != JsonValueKind.Object)
            {
                continue;
            }
            if (p.DetailType is not null &&
                !(entry.TryGetProperty(AuthorizationDetailFields.Type, out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == p.DetailType))
            {
                continue;
            }
            if (p.Currency is null || AmountMatches(p, entry))
            {
                return true;
            }
        }
        return false;
    }

    private static bool AmountMatches(PolicyRecord p, JsonElement entry)
    {
        if (!(entry.TryGetProperty("currency", out var c) && c.ValueKind == JsonValueKind.String && c.GetString() == p.Currency))
        {
            return false;
        }
        if (!entry.TryGetProperty("amount", out var raw))
        {
            // A bound on the amount needs an amount; a currency alone is met by the currency.
            return p.AmountOver is null && p.AmountAtMost is null;
        }
        var (amount, _) = Money.Parse(raw, p.Currency);
        if (amount is null)
        {
            // An amount that is no exact decimal of this currency (an exponent, too many digits) is read as unbounded:
            // it meets every "over" and no "at most", so it can never slip under a threshold (docs/policies.md §2).
            return p.AmountAtMost is null;
        }
        return (p.AmountOver is null || Money.Compare(amount, p.AmountOver) > 0) && (p.AmountAtMost is null || Money.Compare(amount, p.AmountAtMost) <= 0);
    }

    private static string? Amount(JsonElement? raw, string currency, string what)
    {
        if (raw is not { } value)
        {
            return null;
        }
        var (amount, problem) = Money.Parse(value, currency);
        return problem is null ? amount : throw new PolicyProblemException($"{what}: {problem}");
    }

    /// <summary>The policy's conditions and requirement, for its audit entry.</summary>
    internal static Dictionary<string, string> Describe(PolicyRecord p)
    {
        var data = new Dictionary<string, string> { ["position"] = p.Position.ToString(System.Globalization.CultureInfo.InvariantCulture), ["requires"] = p.Requires };
        void Add(string key, string? value)
        {
            if (value is not null)
            {
                data[key] = value;
            }
        }
        Add("agent", p.ClientId);
        Add("scope", p.Scope);
        Add("type", p.DetailType);
        Add("currency", p.Currency);
        Add("amount_over", p.AmountOver);
        Add("amount_at_most", p.AmountAtMost);
        if (p.Requires == PolicyRequirements.Quorum)
        {
            data["quorum"] = p.Quorum.ToString(System.Globalization.CultureInfo.InvariantCulture);
            data["approvers"] = p.Approvers;
        }
        return data;
    }

    private static string Shorten(string text) => text.Length <= 64 ? text : text[..64] + "…";
}
