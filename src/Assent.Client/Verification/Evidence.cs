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

    /// <summary>Returns the verification method that signed, or throws <see cref="TokenErrors.EvidenceMismatch"/>.</summary>
    public static async Task<string> CheckAsync(JsonElement claims, TokenVerifier.Claims c, DidDocuments dids, CancellationToken ct)
    {
        if (!claims.TryGetProperty(ClaimNames.Evidence, out var evidence) || evidence.ValueKind != JsonValueKind.Object)
        {
            throw Mismatch("the token carries no evidence");
        }
        var kind = RemoteJson.String(evidence, "kind");
        var device = RemoteJson.String(evidence, "device");
        if (device is null || !device.StartsWith(c.Sub + "#", StringComparison.Ordinal))
        {
            throw Mismatch("the evidence device is not a verification method of the token's subject");
        }
        var payload = Bytes(evidence, "payload") ?? throw Mismatch("the evidence has no payload");
        var signature = Bytes(evidence, "sig") ?? throw Mismatch("the evidence has no sig");

        var methods = await dids.MethodsAsync(c.Sub, ct);
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
        return device;
    }

    private static byte[]? Bytes(JsonElement obj, string name) =>
        RemoteJson.String(obj, name) is { } text && Base64Url.TryDecode(text, out var bytes) ? bytes : null;

    private static TokenVerificationException Mismatch(string message) => new(TokenErrors.EvidenceMismatch, message);
}
