using System.Text.RegularExpressions;
using Assent.Protocol.Approvals;

namespace Assent.Server.Identity;

/// <summary>What a user handle, an agent or device name and a scope may look like (docs/concepts.md §1–§3).</summary>
internal static partial class Naming
{
    public const int MaxHandleLength = 48;

    public const int MaxNameLength = 64;

    [GeneratedRegex("^[a-z0-9._-]{1,48}$")]
    private static partial Regex HandlePattern();

    [GeneratedRegex("^[a-z0-9:._/-]{1,64}$")]
    private static partial Regex ScopePattern();

    public static bool IsValidHandle(string handle) => HandlePattern().IsMatch(handle);

    /// <summary>
    /// A device or agent name: 1 to 64 characters that hide or reorder nothing, since approvers are shown it
    /// (<see cref="DisplayText"/>). Null when it may be used, else why not, naming the field as <paramref name="what"/>.
    /// </summary>
    public static string? NameProblem(string what, string name) =>
        name.Length is 0 or > MaxNameLength ? $"{what} must be 1 to {MaxNameLength} characters" : DisplayText.Problem(what, name);

    /// <summary>Why an agent may not be called <paramref name="name"/>: its owner has an active one of that name (docs/concepts.md §3).</summary>
    public static string AgentNameTaken(string owner, string name, string? clientId) =>
        $"{owner} already has an active agent named '{name}'{(clientId is null ? "" : $" ({clientId})")}; an owner's agents need distinct names " +
        "(compared without case), so choose another";

    /// <summary>Scopes an agent may ask for; <c>openid</c> is always included because CIBA requires it.</summary>
    /// <exception cref="ArgumentException">A scope has characters outside a-z, 0-9 and <c>: . _ / -</c>.</exception>
    public static string NormalizeScopes(string scopes)
    {
        var list = scopes.Split([' ', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Append(Protocol.OAuth.Scopes.OpenId).Distinct().ToList();
        var bad = list.FirstOrDefault(s => !ScopePattern().IsMatch(s));
        if (bad is not null)
        {
            throw new ArgumentException($"'{bad}' is not a valid scope (use a-z, 0-9 and : . _ / -)");
        }
        return string.Join(' ', list);
    }
}
