using System.Text.Json;
using Assent.Protocol.Did;
using Assent.Protocol.Jose;
using Assent.Protocol.OAuth;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Storage;

namespace Assent.Server.Keys;

/// <summary>
/// The longest access token this server can issue under its settings, so that it never issues one
/// that verifiers refuse: they accept at most <see cref="Jws.DefaultMaxLength"/> characters
/// (RFC 8725 §3.1; docs/tokens.md).
/// </summary>
/// <remarks>
/// An approval's access token (<see cref="TokenIssuer"/>) carries the binding message and the
/// authorization details twice: as claims, and inside the approval payload that the evidence
/// carries base64url-encoded; the whole claims set is base64url-encoded again. So one byte of
/// those costs 4/3 + 16/9 ≈ 3.1 characters of token, one byte of a passkey's assertion 16/9.
/// Every input is bounded: identifiers have fixed lengths, the limits below are enforced where
/// each enters, numbers have at most 11 digits, and JSON escaping (the default encoder) writes
/// at most 6 bytes, <c>\uXXXX</c>, per UTF-16 unit.
/// </remarks>
internal static class AccessTokenBudget
{
    /// <summary>docs/concepts.md: a binding message is at most 256 characters (UTF-16 units).</summary>
    public const int MaxBindingMessageLength = 256;

    /// <summary>An agent's name, shown to the approver as <c>client_name</c>.</summary>
    public const int MaxAgentNameLength = Naming.MaxNameLength;

    /// <summary>The scope granted to one request (scope tokens are ASCII, never escaped).</summary>
    public const int MaxScopeLength = 128;

    /// <summary>RFC 8707 <c>resource</c>, the token's <c>aud</c>.</summary>
    public const int MaxResourceLength = 128;

    /// <summary><c>\uXXXX</c>: the most bytes the default JSON encoder writes for one UTF-16 unit.</summary>
    private const int MaxEscapedUnit = 6;

    /// <summary>Unix seconds have 10 digits until 2286.</summary>
    private const int MaxNumberLength = 11;

    private const int JtiLength = 22;
    private const int NonceLength = 22;

    /// <summary>RFC 7638 thumbprint: base64url of SHA-256.</summary>
    private const int KidLength = 43;

    private const int Ed25519SignatureLength = 64;

    /// <summary>
    /// Checked at start (with the other settings): every token issued must be one that verifiers accept
    /// (RFC 8725 §3.1; docs/tokens.md §8). Null when the settings fit, else what to change.
    /// </summary>
    public static string? Problem(AssentOptions options) =>
        WorstCase(options) is var worst && worst > Jws.DefaultMaxLength
            ? $"Assent:MaxAuthorizationDetailsBytes ({options.MaxAuthorizationDetailsBytes}) and Assent:MaxWebAuthnEvidenceBytes ({options.MaxWebAuthnEvidenceBytes}) " +
              $"with this issuer let an access token reach {worst} characters, more than the {Jws.DefaultMaxLength} verifiers accept; lower them"
            : null;

    /// <summary>The characters of the longest access token these settings allow.</summary>
    public static int WorstCase(AssentOptions options)
    {
        var epoch = DateTimeOffset.UnixEpoch;
        var approvalId = Ids.Ordered("apr", epoch).Length;
        // Agents registered through POST /agents are named after their request (agt_ + the apr_ suffix).
        var clientId = Math.Max(Math.Max(Ids.Ordered("agt", epoch).Length, Ids.New("agt").Length), CliClient.Id.Length);
        var did = DidWeb.ForUser(options.IssuerUri, new string('u', Ids.New("usr").Length));
        var device = did + "#" + new string('d', Ids.New("dev").Length);
        var bindingMessage = Quoted(MaxBindingMessageLength * MaxEscapedUnit);
        var details = options.MaxAuthorizationDetailsBytes;
        var scope = Quoted(MaxScopeLength);

        // ApprovalPayload.Build: {"v","iss","req","sub","client_id","client_name","scope","binding_message","authorization_details","iat","exp","nonce"}.
        var payload = Object(
            Member("v", 1),
            Member("iss", Quoted(options.IssuerString)),
            Member("req", Quoted(approvalId)),
            Member("sub", Quoted(did)),
            Member("client_id", Quoted(clientId)),
            Member("client_name", Quoted(MaxAgentNameLength * MaxEscapedUnit)),
            Member("scope", scope),
            Member("binding_message", bindingMessage),
            Member("authorization_details", details),
            Member("iat", MaxNumberLength),
            Member("exp", MaxNumberLength),
            Member("nonce", Quoted(NonceLength)));

        // ApprovalService.Evidence of a passkey: the largest kind. Three base64url strings of a, b and c bytes
        // together are at most two characters longer than one of a + b + c.
        var assertion = Base64UrlLength(options.MaxWebAuthnEvidenceBytes) + 2;
        var evidence = Object(
            Member("kind", Quoted(DeviceKinds.WebAuthn)),
            Member("device", Quoted(device)),
            Member("payload", Quoted(Base64UrlLength(payload))),
            Member("sig", Quoted(0)),
            Member("authenticator_data", Quoted(0)),
            Member("client_data_json", Quoted(0))) + assertion;

        // TokenIssuer.AccessClaims for an agent (with act); a human's session token has fewer members.
        var claims = Object(
            Member(ClaimNames.Issuer, Quoted(options.IssuerString)),
            Member(ClaimNames.Subject, Quoted(did)),
            Member(ClaimNames.Audience, Quoted(Math.Max(clientId, MaxResourceLength * MaxEscapedUnit))),
            Member(ClaimNames.ClientId, Quoted(clientId)),
            Member(ClaimNames.Actor, Object(Member(ClaimNames.Subject, Quoted(clientId)))),
            Member(ClaimNames.Scope, scope),
            Member(ClaimNames.JwtId, Quoted(JtiLength)),
            Member(ClaimNames.IssuedAt, MaxNumberLength),
            Member(ClaimNames.NotBefore, MaxNumberLength),
            Member(ClaimNames.Expiration, MaxNumberLength),
            Member(ClaimNames.AuthTime, MaxNumberLength),
            Member(ClaimNames.AuthenticationMethods, Array(Quoted(AuthenticationMethods.HardwareKey), Quoted(AuthenticationMethods.User),
                Quoted(AuthenticationMethods.MultiFactor))),
            Member(ClaimNames.BindingMessage, bindingMessage),
            Member(ClaimNames.AuthorizationDetails, details),
            Member(ClaimNames.Transaction, Quoted(approvalId)),
            Member(ClaimNames.Evidence, evidence));

        var header = Jws.EncodeHeader(new string('k', KidLength), Jws.AccessTokenType).Length;
        return header + 1 + Base64UrlLength(claims) + 1 + Base64UrlLength(Ed25519SignatureLength);
    }

    /// <summary>Unpadded base64url (RFC 4648 §5).</summary>
    private static int Base64UrlLength(int bytes) => (bytes * 4 + 2) / 3;

    private static int Quoted(int bytes) => bytes + 2;

    private static int Quoted(string known) => JsonEncodedText.Encode(known).EncodedUtf8Bytes.Length + 2;

    private static int Member(string name, int value) => Quoted(name) + 1 + value;

    private static int Object(params int[] members) => 2 + members.Sum() + members.Length - 1;

    private static int Array(params int[] items) => 2 + items.Sum() + items.Length - 1;
}
