using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Assent.Client.Verification;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Crypto;
using Assent.Protocol.WebAuthn;

namespace Assent.Client.Tests;

/// <summary>
/// The evidence check (docs/tokens.md) with evidence made here, signed by keys this test holds and published in DID
/// documents it serves: a passkey's <c>webauthn</c> evidence (docs/concepts.md §5.1: the WebAuthn challenge is SHA-256
/// of <c>approve ‖ 0x00 ‖ payload</c>), payloads the server would never sign, and the entries of a quorum's array.
/// </summary>
public sealed class PasskeyEvidenceTests : IDisposable
{
    private const string Issuer = "https://evidence.test";
    private const string ClientId = "agt_evidence";
    private const string Scope = "openid approve:action";
    private const string Message = "Rotate the keys";
    private const string Txn = "apr_evidence";

    private readonly DidServer _server = new();
    private readonly Approver _alice;
    private readonly Approver _bob;

    public PasskeyEvidenceTests()
    {
        _alice = _server.Add("usr_alice");
        _bob = _server.Add("usr_bob");
    }

    public void Dispose()
    {
        _alice.Dispose();
        _bob.Dispose();
        _server.Dispose();
    }

    /// <summary>A user with a passkey (P-256) and an Ed25519 device, both in the DID document <see cref="DidServer"/> serves.</summary>
    private sealed class Approver(string did) : IDisposable
    {
        public string Did => did;
        public string Passkey => did + "#dev_passkey";
        public string Phone => did + "#dev_phone";
        public ECDsa PasskeyKey { get; } = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        public byte[] PhoneSeed { get; } = Ed25519.NewSeed();

        /// <summary>What the document lists for the passkey; a test may replace it with an unusable key.</summary>
        public JsonObject PasskeyJwk { get; set; } = null!;

        public void Dispose() => PasskeyKey.Dispose();
    }

    /// <summary>Serves the DID documents of https://evidence.test/users/{id}/did.json.</summary>
    private sealed class DidServer : HttpMessageHandler
    {
        private readonly Dictionary<string, Approver> _users = new(StringComparer.Ordinal);

        public Approver Add(string userId)
        {
            var approver = new Approver($"did:web:evidence.test:users:{userId}");
            var q = approver.PasskeyKey.ExportParameters(false).Q;
            approver.PasskeyJwk = new JsonObject { ["kty"] = "EC", ["crv"] = "P-256", ["x"] = Base64Url.Encode(q.X!), ["y"] = Base64Url.Encode(q.Y!) };
            _users[$"/users/{userId}/did.json"] = approver;
            return approver;
        }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.RequestUri!.Host != "evidence.test" || !_users.TryGetValue(request.RequestUri.AbsolutePath, out var a))
            {
                return Task.FromResult(new HttpResponseMessage(HttpStatusCode.NotFound));
            }
            var phone = new JsonObject { ["kty"] = "OKP", ["crv"] = "Ed25519", ["x"] = Base64Url.Encode(Ed25519.PublicKeyFromSeed(a.PhoneSeed)) };
            var document = new JsonObject
            {
                ["id"] = a.Did,
                ["verificationMethod"] = new JsonArray(
                    new JsonObject { ["id"] = a.Passkey, ["type"] = "JsonWebKey", ["controller"] = a.Did, ["publicKeyJwk"] = a.PasskeyJwk.DeepClone() },
                    new JsonObject { ["id"] = a.Phone, ["type"] = "JsonWebKey", ["controller"] = a.Did, ["publicKeyJwk"] = phone }),
            };
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK)
            {
                Content = new StringContent(document.ToJsonString(), Encoding.UTF8, "application/json"),
            });
        }
    }

    private static byte[] Payload(string sub, string iss = Issuer, string req = Txn, string nonce = "n0nce")
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        return ApprovalPayload.Build(iss, req, sub, ClientId, "Evidence agent", Scope, Message, [], now, now + 300, nonce);
    }

    private static byte[] AuthenticatorData(AuthenticatorFlags flags)
    {
        var data = new byte[37];
        SHA256.HashData("evidence.test"u8, data);
        data[32] = (byte)flags;
        BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan(33), 7);
        return data;
    }

    /// <summary>A passkey's evidence over <paramref name="payload"/>: an assertion whose challenge is SHA-256 of what an Ed25519 device would sign.</summary>
    private static JsonObject PasskeyEvidence(Approver approver, byte[] payload, string decision = Decisions.Approve,
        AuthenticatorFlags flags = AuthenticatorFlags.UserPresent | AuthenticatorFlags.UserVerified)
    {
        var challenge = SHA256.HashData(ApprovalPayload.SigningInput(decision, payload));
        var clientData = Encoding.UTF8.GetBytes(
            $"{{\"type\":\"webauthn.get\",\"challenge\":\"{Base64Url.Encode(challenge)}\",\"origin\":\"{Issuer}\",\"crossOrigin\":false}}");
        var authData = AuthenticatorData(flags);
        var signature = approver.PasskeyKey.SignData([.. authData, .. SHA256.HashData(clientData)], HashAlgorithmName.SHA256,
            DSASignatureFormat.Rfc3279DerSequence);
        return new JsonObject
        {
            ["kind"] = "webauthn",
            ["device"] = approver.Passkey,
            ["payload"] = Base64Url.Encode(payload),
            ["sig"] = Base64Url.Encode(signature),
            ["authenticator_data"] = Base64Url.Encode(authData),
            ["client_data_json"] = Base64Url.Encode(clientData),
        };
    }

    private static JsonObject PhoneEvidence(Approver approver, byte[] payload) => new()
    {
        ["kind"] = "ed25519",
        ["device"] = approver.Phone,
        ["payload"] = Base64Url.Encode(payload),
        ["sig"] = Base64Url.Encode(Ed25519.Sign(approver.PhoneSeed, ApprovalPayload.SigningInput(Decisions.Approve, payload))),
    };

    private static JsonObject Claims(string sub, JsonNode evidence, params string[] approvers)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var claims = new JsonObject
        {
            ["iss"] = Issuer,
            ["sub"] = sub,
            ["aud"] = ClientId,
            ["client_id"] = ClientId,
            ["act"] = new JsonObject { ["sub"] = ClientId },
            ["scope"] = Scope,
            ["binding_message"] = Message,
            ["txn"] = Txn,
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["iat"] = now,
            ["exp"] = now + 300,
            ["evidence"] = evidence,
        };
        if (approvers.Length > 0)
        {
            claims["approvers"] = new JsonArray([.. approvers.Select(a => (JsonNode)JsonValue.Create(a))]);
        }
        return claims;
    }

    private async Task<IReadOnlyList<string>> CheckAsync(JsonObject claims)
    {
        using var http = new HttpClient(_server, disposeHandler: false);
        var dids = new DidDocuments(http, TimeProvider.System, TimeSpan.Zero);
        var root = JsonDocument.Parse(claims.ToJsonString()).RootElement;
        return await Evidence.CheckAllAsync(root, new TokenVerifier.Claims(root), dids, CancellationToken.None);
    }

    private async Task<string> RefusedAsync(JsonObject claims)
    {
        var e = await Assert.ThrowsAsync<TokenVerificationException>(() => CheckAsync(claims));
        Assert.Equal(TokenErrors.EvidenceMismatch, e.Code);
        return e.Message;
    }

    [Fact]
    public async Task A_passkey_assertion_over_the_approval_payload_names_the_passkey()
    {
        var claims = Claims(_alice.Did, PasskeyEvidence(_alice, Payload(_alice.Did)));

        Assert.Equal([_alice.Passkey], await CheckAsync(claims));
    }

    [Theory]
    [InlineData("authenticator_data")]
    [InlineData("client_data_json")]
    public async Task Passkey_evidence_without_its_assertion_parts_is_refused(string member)
    {
        var evidence = PasskeyEvidence(_alice, Payload(_alice.Did));
        evidence.Remove(member);
        var unreadable = PasskeyEvidence(_alice, Payload(_alice.Did));
        unreadable[member] = "not base64url!";

        Assert.Equal($"webauthn evidence lacks {member}", await RefusedAsync(Claims(_alice.Did, evidence)));
        Assert.Equal($"webauthn evidence lacks {member}", await RefusedAsync(Claims(_alice.Did, unreadable)));
    }

    [Fact]
    public async Task A_passkey_whose_document_key_is_unusable_is_refused_before_the_signature()
    {
        _alice.PasskeyJwk["x"] = "AAAA";

        var message = await RefusedAsync(Claims(_alice.Did, PasskeyEvidence(_alice, Payload(_alice.Did))));

        Assert.StartsWith("the device key in the DID document is not usable: ", message);
        Assert.Contains("32 bytes", message);
    }

    [Fact]
    public async Task A_passkey_assertion_without_user_verification_is_refused()
    {
        var evidence = PasskeyEvidence(_alice, Payload(_alice.Did), flags: AuthenticatorFlags.UserPresent);

        Assert.Equal("the passkey assertion does not verify: the UV flag is not set", await RefusedAsync(Claims(_alice.Did, evidence)));
    }

    [Fact]
    public async Task A_passkey_assertion_for_a_denial_or_with_a_changed_signature_is_refused()
    {
        var payload = Payload(_alice.Did);
        var denial = PasskeyEvidence(_alice, payload, Decisions.Deny);
        var flipped = PasskeyEvidence(_alice, payload);
        var sig = Base64Url.Decode(flipped["sig"]!.GetValue<string>());
        sig[^1] ^= 1;
        flipped["sig"] = Base64Url.Encode(sig);

        Assert.Equal("the passkey assertion does not verify: challenge is not the one expected", await RefusedAsync(Claims(_alice.Did, denial)));
        Assert.Equal("the passkey assertion does not verify: assertion signature does not verify", await RefusedAsync(Claims(_alice.Did, flipped)));
    }

    [Fact]
    public async Task Ed25519_evidence_naming_the_passkey_is_refused()
    {
        var evidence = PhoneEvidence(_alice, Payload(_alice.Did));
        evidence["device"] = _alice.Passkey;

        Assert.Equal("the device signature over the approval payload does not verify", await RefusedAsync(Claims(_alice.Did, evidence)));
    }

    [Fact]
    public async Task A_validly_signed_payload_of_another_subject_or_not_a_payload_at_all_is_refused()
    {
        var otherSubject = PasskeyEvidence(_alice, Payload(_bob.Did));
        var notPayload = PhoneEvidence(_alice, Encoding.UTF8.GetBytes("{\"v\":2}"));

        Assert.Equal("the signed payload's sub differs from the token's", await RefusedAsync(Claims(_alice.Did, otherSubject)));
        Assert.Equal("the signed payload is not a v1 approval payload", await RefusedAsync(Claims(_alice.Did, notPayload)));
        // Each claim of the chain, in order: iss and req are the others the server's own tokens cannot change alone.
        Assert.Equal("the signed payload's iss differs from the token's",
            await RefusedAsync(Claims(_alice.Did, PhoneEvidence(_alice, Payload(_alice.Did, iss: "https://other.test")))));
        Assert.Equal("the signed payload's req/txn differs from the token's",
            await RefusedAsync(Claims(_alice.Did, PhoneEvidence(_alice, Payload(_alice.Did, req: "apr_other")))));
    }

    [Theory]
    [InlineData("client_id", "agt_other")]
    [InlineData("scope", "openid admin")]
    [InlineData("binding_message", "Delete everything")]
    public async Task Each_token_claim_that_differs_from_the_signed_payload_is_named(string claim, string value)
    {
        var claims = Claims(_alice.Did, PasskeyEvidence(_alice, Payload(_alice.Did)));
        claims[claim] = value;
        if (claim == "client_id")
        {
            claims["act"] = new JsonObject { ["sub"] = value };
        }

        Assert.Equal($"the signed payload's {claim} differs from the token's", await RefusedAsync(claims));
    }

    [Fact]
    public async Task Authorization_details_the_payload_does_not_carry_are_named()
    {
        var claims = Claims(_alice.Did, PhoneEvidence(_alice, Payload(_alice.Did)));
        claims["authorization_details"] = JsonNode.Parse("""[{"type":"payment","amount":"1.00"}]""");

        Assert.Equal("the signed payload's authorization_details differs from the token's", await RefusedAsync(claims));
    }

    [Fact]
    public async Task Evidence_missing_its_parts_or_naming_an_unlisted_device_or_kind_is_refused_by_name()
    {
        var payload = Payload(_alice.Did);
        var claims = Claims(_alice.Did, PhoneEvidence(_alice, payload));
        claims.Remove("evidence");
        Assert.Equal("the token carries no evidence", await RefusedAsync(claims));

        foreach (var (member, message) in new[] { ("payload", "the evidence has no payload"), ("sig", "the evidence has no sig") })
        {
            var evidence = PhoneEvidence(_alice, payload);
            evidence.Remove(member);
            Assert.Equal(message, await RefusedAsync(Claims(_alice.Did, evidence)));
        }
        var deviceless = PhoneEvidence(_alice, payload);
        deviceless.Remove("device");
        Assert.Equal("the evidence device is not a verification method of the token's subject", await RefusedAsync(Claims(_alice.Did, deviceless)));
        Assert.Equal("the evidence device is not a verification method of the token's subject",
            await RefusedAsync(Claims(_alice.Did, PhoneEvidence(_bob, payload))));

        var unlisted = PhoneEvidence(_alice, payload);
        unlisted["device"] = _alice.Did + "#dev_gone";
        Assert.Equal($"{_alice.Did}#dev_gone is not listed in the approver's DID document: unknown or revoked device",
            await RefusedAsync(Claims(_alice.Did, unlisted)));

        var unknownKind = PhoneEvidence(_alice, payload);
        unknownKind["kind"] = "rsa";
        Assert.Equal("unknown evidence kind 'rsa'", await RefusedAsync(Claims(_alice.Did, unknownKind)));

        var flipped = PhoneEvidence(_alice, payload);
        var sig = Base64Url.Decode(flipped["sig"]!.GetValue<string>());
        sig[0] ^= 1;
        flipped["sig"] = Base64Url.Encode(sig);
        Assert.Equal("the device signature over the approval payload does not verify", await RefusedAsync(Claims(_alice.Did, flipped)));
    }

    [Fact]
    public async Task A_quorum_entry_whose_device_has_a_one_letter_did_is_looked_up_as_that_did()
    {
        var entry = PhoneEvidence(_alice, Payload(_alice.Did));
        entry["device"] = "a#dev_phone";

        Assert.Equal("the approver 'a' is not a resolvable did:web", await RefusedAsync(Claims(_alice.Did, new JsonArray(entry), "a")));
    }

    [Fact]
    public async Task A_quorum_array_names_every_approving_device_in_order_passkeys_and_phones_alike()
    {
        var payload = Payload(_alice.Did);
        var claims = Claims(_alice.Did, new JsonArray(PasskeyEvidence(_bob, payload), PhoneEvidence(_alice, payload)), _alice.Did, _bob.Did);

        Assert.Equal([_bob.Passkey, _alice.Phone], await CheckAsync(claims));
        Assert.Equal(_bob.Did, Evidence.DidOf(_bob.Passkey));
    }

    [Fact]
    public async Task A_quorum_array_is_refused_when_empty_without_approvers_or_with_an_entry_naming_no_device()
    {
        var payload = Payload(_alice.Did);
        var entry = PhoneEvidence(_alice, payload);

        Assert.StartsWith("the token carries no evidence: an object, or", await RefusedAsync(Claims(_alice.Did, new JsonArray())));
        Assert.Equal("evidence from several devices needs the approvers claim", await RefusedAsync(Claims(_alice.Did, new JsonArray(entry.DeepClone()))));
        var approversNotArray = Claims(_alice.Did, new JsonArray(entry.DeepClone()));
        approversNotArray["approvers"] = _alice.Did;
        Assert.Equal("evidence from several devices needs the approvers claim", await RefusedAsync(approversNotArray));

        foreach (var device in new JsonNode?[] { null, "dev_phone", "#dev_phone", 42 })
        {
            var nameless = entry.DeepClone().AsObject();
            nameless["device"] = device;
            Assert.Equal("an evidence entry names no device", await RefusedAsync(Claims(_alice.Did, new JsonArray(nameless), _alice.Did)));
        }
        Assert.Equal("an evidence entry names no device", await RefusedAsync(Claims(_alice.Did, new JsonArray(JsonValue.Create("x")), _alice.Did)));
        // The one-entry array of the right approver passes: the refusals above are for the device, not the array.
        Assert.Equal([_alice.Phone], await CheckAsync(Claims(_alice.Did, new JsonArray(entry.DeepClone()), _alice.Did)));
    }

    [Fact]
    public async Task A_quorum_entry_of_someone_the_token_does_not_name_or_over_another_payload_is_refused()
    {
        var payload = Payload(_alice.Did);
        var bobs = PhoneEvidence(_bob, payload);
        var message = await RefusedAsync(Claims(_alice.Did, new JsonArray(PhoneEvidence(_alice, payload), bobs), _alice.Did, "did:web:evidence.test:users:usr_carol"));
        Assert.Equal($"the evidence device {_bob.Phone} is not of an approver the token names", message);

        // Bob signed a payload for this very token, but not the one Alice signed (another nonce): not one request's quorum.
        var otherPayload = PhoneEvidence(_bob, Payload(_alice.Did, nonce: "other"));
        Assert.Equal("the evidence entries are over different payloads",
            await RefusedAsync(Claims(_alice.Did, new JsonArray(PhoneEvidence(_alice, payload), otherPayload), _alice.Did, _bob.Did)));
        // A non-string approvers entry names nobody.
        var odd = Claims(_alice.Did, new JsonArray(PhoneEvidence(_alice, payload), PhoneEvidence(_bob, payload)), _alice.Did);
        odd["approvers"]!.AsArray().Add(7);
        Assert.Equal($"the evidence device {_bob.Phone} is not of an approver the token names", await RefusedAsync(odd));
    }
}
