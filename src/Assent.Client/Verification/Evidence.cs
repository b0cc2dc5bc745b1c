using System.Security.Cryptography;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Crypto;
using Assent.Protocol.OAuth;
using Assent.Protocol.WebAuthn;

namespace Assent.Client.Verification;

/// <summary>
/// The <c>evidence</c> claim (docs/tokens.md): proof, checkable with the approver's DID document alone, that
/// one of the user's devices signed <c>approve ‖ 0x00 ‖ payload</c>, and that the payload is this token's action.
/// </summary>
internal static class Evidence
{
    public const string WebAuthnKind = "webauthn";
    public const string Ed25519Kind = "ed25519";

    /// <summary>
    /// Checks every evidence entry and returns the verification methods that signed, one per approving device, or throws
    /// <see cref="TokenErrors.EvidenceMismatch"/>. One approver: an object whose device belongs to <c>sub</c>. Several
    /// (a quorum, docs/tokens.md §4): an array, each entry's device belonging to a DID of the <c>approvers</c> claim, each
    /// checked against that DID's document, all over the same payload.
    /// </summary>
    public static async Task<IReadOnlyList<string>> CheckAllAsync(JsonElement claims, TokenVerifier.Claims c, DidDocuments dids, CancellationToken ct)
    {
        if (!claims.TryGetProperty(ClaimNames.Evidence, out var evidence))
        {
            throw Mismatch("the token carries no evidence");
        }
        if (claims.TryGetProperty(ClaimNames.Mandate, out var mandate) || IsMandateAmr(claims))
        {
            return [await CheckMandateAsync(evidence, mandate, c, dids, ct)];
        }
        if (evidence.ValueKind == JsonValueKind.Object)
        {
            return [(await CheckAsync(evidence, c.Sub, c, dids, ct)).Device];
        }
        if (evidence.ValueKind != JsonValueKind.Array || evidence.GetArrayLength() == 0)
        {
            throw Mismatch("the token carries no evidence: an object, or for several approvers a non-empty array of them");
        }
        if (!claims.TryGetProperty(ClaimNames.Approvers, out var approversClaim) || approversClaim.ValueKind != JsonValueKind.Array)
        {
            throw Mismatch("evidence from several devices needs the approvers claim");
        }
        var approvers = approversClaim.EnumerateArray().Select(a => a.ValueKind == JsonValueKind.String ? a.GetString()! : "").ToHashSet(StringComparer.Ordinal);
        var devices = new List<string>();
        byte[]? first = null;
        foreach (var entry in evidence.EnumerateArray())
        {
            var device = entry.ValueKind == JsonValueKind.Object ? RemoteJson.String(entry, "device") : null;
            if (device is null || device.IndexOf('#', StringComparison.Ordinal) < 1)
            {
                throw Mismatch("an evidence entry names no device");
            }
            var did = DidOf(device);
            if (!approvers.Contains(did))
            {
                throw Mismatch($"the evidence device {device} is not of an approver the token names");
            }
            var (checkedDevice, payload) = await CheckAsync(entry, did, c, dids, ct);
            // docs/tokens.md §4: every approver signed the same payload, the one the request was created with.
            if (first is not null && !CryptographicOperations.FixedTimeEquals(first, payload))
            {
                throw Mismatch("the evidence entries are over different payloads");
            }
            first = payload;
            devices.Add(checkedDevice);
        }
        return devices;
    }

    /// <summary>The first verification method that signed (see <see cref="CheckAllAsync"/>).</summary>
    public static async Task<string> CheckAsync(JsonElement claims, TokenVerifier.Claims c, DidDocuments dids, CancellationToken ct) =>
        (await CheckAllAsync(claims, c, dids, ct))[0];

    /// <summary>The DID a verification method (<c>did#device</c>) belongs to.</summary>
    public static string DidOf(string device) => device[..device.IndexOf('#', StringComparison.Ordinal)];

    private static bool IsMandateAmr(JsonElement claims) =>
        claims.TryGetProperty(ClaimNames.AuthenticationMethods, out var amr) && amr.ValueKind == JsonValueKind.Array &&
        amr.EnumerateArray().Any(m => m.ValueKind == JsonValueKind.String && m.GetString() == AuthenticationMethods.Mandate);

    /// <summary>
    /// A payment a spending mandate approved (docs/tokens.md §4, docs/policies.md §6): the evidence is the user's device
    /// signature over the mandate's own payload, made earlier. It must verify against the subject's DID document, be the
    /// mandate the token names (<c>mnd_X</c> for request <c>apr_X</c>), for this agent and issuer, and the token's one
    /// payment must fit the limits that payload states.
    /// </summary>
    private static async Task<string> CheckMandateAsync(JsonElement evidence, JsonElement mandate, TokenVerifier.Claims c, DidDocuments dids, CancellationToken ct)
    {
        if (evidence.ValueKind != JsonValueKind.Object || mandate.ValueKind != JsonValueKind.Object || RemoteJson.String(mandate, "id") is not { } id)
        {
            throw Mismatch("a mandate's payment carries the mandate {id, remaining} and one evidence object");
        }
        var (device, payload) = await VerifyAsync(evidence, c.Sub, dids, ct);
        if (!ApprovalPayload.TryParse(payload, out var p))
        {
            throw Mismatch("the signed payload is not a v1 approval payload");
        }
        var why = p!.Iss != c.Iss ? "iss"
            : p.Sub != c.Sub ? "sub"
            : p.ClientId != c.ClientId ? "client_id"
            : p.Req.IndexOf('_', StringComparison.Ordinal) is var u && (u < 0 || "mnd_" + p.Req[(u + 1)..] != id) ? "req (the mandate id)"
            : null;
        if (why is not null)
        {
            throw Mismatch($"the signed mandate's {why} differs from the token's");
        }
        if (MandateDetails.Single(p.AuthorizationDetails, MandateDetails.MandateType) is not { } limits)
        {
            throw Mismatch("the signed payload is not a mandate");
        }
        // A challenge asking an amount (docs/challenges.md §2.1) is a payment too: {type:"challenge", action, amount, currency, payee?}.
        if ((MandateDetails.Single(c.AuthorizationDetails, MandateDetails.PaymentType) ?? MandateDetails.Single(c.AuthorizationDetails, "challenge")) is not { } payment)
        {
            throw Mismatch("a mandate approves one payment: the token's authorization_details must be a single payment (or challenge) entry");
        }
        if (MandateDetails.Misfit(limits, payment, DateTimeOffset.FromUnixTimeSeconds(c.Iat)) is { } misfit)
        {
            throw Mismatch($"the payment is outside the signed mandate: {misfit}");
        }
        return device;
    }

    /// <summary>Checks one evidence object made by a device of <paramref name="did"/>; returns the device and the payload it signed.</summary>
    private static async Task<(string Device, byte[] Payload)> CheckAsync(JsonElement evidence, string did, TokenVerifier.Claims c, DidDocuments dids,
        CancellationToken ct)
    {
        var (device, payload) = await VerifyAsync(evidence, did, dids, ct);
        if (!ApprovalPayload.TryParse(payload, out var p))
        {
            throw Mismatch("the signed payload is not a v1 approval payload");
        }
        // The device signed this payload; it must describe exactly this token.
        var why = p!.Iss != c.Iss ? "iss"
            : p.Sub != c.Sub ? "sub"
            : p.ClientId != c.ClientId ? "client_id"
            : p.Scope != c.Scope ? "scope"
            : p.BindingMessage != c.BindingMessage ? "binding_message"
            : !TokenVerifier.JsonEqual(p.AuthorizationDetails, c.AuthorizationDetails) ? "authorization_details"
            : p.Req != c.Txn ? "req/txn"
            : null;
        if (why is not null)
        {
            throw Mismatch($"the signed payload's {why} differs from the token's");
        }
        return (device, payload);
    }

    /// <summary>Verifies one evidence object's signature by a device of <paramref name="did"/> against its DID document.</summary>
    private static async Task<(string Device, byte[] Payload)> VerifyAsync(JsonElement evidence, string did, DidDocuments dids, CancellationToken ct)
    {
        var kind = RemoteJson.String(evidence, "kind");
        var device = RemoteJson.String(evidence, "device");
        if (device is null || !device.StartsWith(did + "#", StringComparison.Ordinal))
        {
            throw Mismatch("the evidence device is not a verification method of the token's subject");
        }
        var payload = Bytes(evidence, "payload") ?? throw Mismatch("the evidence has no payload");
        var signature = Bytes(evidence, "sig") ?? throw Mismatch("the evidence has no sig");

        var methods = await dids.MethodsAsync(did, ct);
        if (!methods.TryGetValue(device, out var jwk))
        {
            throw Mismatch($"{device} is not listed in the approver's DID document: unknown or revoked device");
        }
        var signed = ApprovalPayload.SigningInput(Decisions.Approve, payload);
        switch (kind)
        {
            case Ed25519Kind:
                if (!jwk.TryGetEd25519(out var publicKey) || !Ed25519.Verify(publicKey, signed, signature))
                {
                    throw Mismatch("the device signature over the approval payload does not verify");
                }
                break;
            case WebAuthnKind:
                var authenticatorData = Bytes(evidence, "authenticator_data") ?? throw Mismatch("webauthn evidence lacks authenticator_data");
                var clientDataJson = Bytes(evidence, "client_data_json") ?? throw Mismatch("webauthn evidence lacks client_data_json");
                if (!WebAuthnVerifier.IsUsableKey(jwk, out var keyError))
                {
                    throw Mismatch($"the device key in the DID document is not usable: {keyError.Detail}");
                }
                // docs/concepts.md §5.1: for a passkey the WebAuthn challenge is SHA-256 of the signed bytes.
                var result = WebAuthnVerifier.VerifyAssertionSignature(authenticatorData, clientDataJson, signature, jwk,
                    SHA256.HashData(signed), requireUserVerification: true);
                if (!result.Succeeded)
                {
                    throw Mismatch($"the passkey assertion does not verify: {result.Error.Detail}");
                }
                break;
            default:
                throw Mismatch($"unknown evidence kind '{kind}'");
        }
        return (device, payload);
    }

    private static byte[]? Bytes(JsonElement obj, string name) =>
        RemoteJson.String(obj, name) is { } text && Base64Url.TryDecode(text, out var bytes) ? bytes : null;

    private static TokenVerificationException Mismatch(string message) => new(TokenErrors.EvidenceMismatch, message);
}
