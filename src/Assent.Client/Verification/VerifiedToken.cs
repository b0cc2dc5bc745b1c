using System.Text.Json;

namespace Assent.Client.Verification;

/// <summary>An access token that passed every requested check.</summary>
public sealed record VerifiedToken(
    string Issuer,
    string Subject,
    IReadOnlyList<string> Audiences,
    string? ClientId,
    string Scope,
    string JwtId,
    DateTimeOffset IssuedAt,
    DateTimeOffset ExpiresAt,
    string? BindingMessage,
    JsonElement? AuthorizationDetails,
    string? Transaction,
    string KeyId,
    JsonElement Claims)
{
    /// <summary>The verification method (<c>did#device</c>) whose signature was checked, when evidence was checked.</summary>
    public string? EvidenceDevice { get; init; }

    /// <summary>True when the token's <c>scope</c> contains <paramref name="scope"/>.</summary>
    public bool HasScope(string scope) => TokenVerifier.ContainsScope(Scope, scope);
}
