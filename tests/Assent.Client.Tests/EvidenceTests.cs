using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Assent.Client.Verification;
using Assent.Protocol;
using Assent.Protocol.Approvals;

namespace Assent.Client.Tests;

/// <summary>
/// The evidence check on its own (docs/tokens.md): a real approval's claims, their <c>evidence</c> changed one way at
/// a time, checked against the approver's real DID document. Each change must be refused as <c>evidence_mismatch</c>.
/// </summary>
[Collection(IssuersCollection.Name)]
public sealed class EvidenceTests(Issuers issuers)
{
    private async Task<JsonObject> ApprovedClaimsAsync()
    {
        var user = await issuers.A.UserAsync();
        using var client = issuers.A.ClientFor(user);
        var human = Human.DecideAsync(user, Decisions.Approve);
        var approval = await client.ApproveAsync("Rotate the keys", new() { Scope = "approve:action" }, CancellationToken.None);
        await human;
        Assert.True(approval.Approved);
        return JsonNode.Parse(Base64Url.Decode(approval.AccessToken!.Split('.')[1]))!.AsObject();
    }

    private static async Task<string> CheckAsync(JsonObject claims)
    {
        using var http = new HttpClient();
        var dids = new DidDocuments(http, TimeProvider.System, TimeSpan.Zero);
        var root = JsonDocument.Parse(claims.ToJsonString()).RootElement;
        return await Evidence.CheckAsync(root, new TokenVerifier.Claims(root), dids, CancellationToken.None);
    }

    private static async Task<string> RefusedAsync(JsonObject claims)
    {
        var e = await Assert.ThrowsAsync<TokenVerificationException>(() => CheckAsync(claims));
        Assert.Equal(TokenErrors.EvidenceMismatch, e.Code);
        return e.Message;
    }

    private static string Flip(string base64Url)
    {
        var bytes = Base64Url.Decode(base64Url);
        bytes[^1] ^= 1;
        return Base64Url.Encode(bytes);
    }

    [Fact]
    public async Task The_untouched_evidence_names_the_device_that_signed()
    {
        var claims = await ApprovedClaimsAsync();

        Assert.Equal(claims["evidence"]!["device"]!.GetValue<string>(), await CheckAsync(claims));
    }

    [Fact]
    public async Task Missing_or_malformed_evidence_is_refused()
    {
        var claims = await ApprovedClaimsAsync();
        var evidence = claims["evidence"]!.AsObject();

        var none = claims.DeepClone().AsObject();
        none.Remove("evidence");
        var notObject = claims.DeepClone().AsObject();
        notObject["evidence"] = JsonValue.Create("signed");
        Assert.Contains("no evidence", await RefusedAsync(none));
        Assert.Contains("no evidence", await RefusedAsync(notObject));

        foreach (var member in new[] { "payload", "sig" })
        {
            var missing = claims.DeepClone().AsObject();
            missing["evidence"]!.AsObject().Remove(member);
            Assert.Contains($"no {member}", await RefusedAsync(missing));
        }
        var unknownKind = claims.DeepClone().AsObject();
        unknownKind["evidence"]!["kind"] = "rsa";
        Assert.Contains("unknown evidence kind", await RefusedAsync(unknownKind));
        Assert.Equal("ed25519", evidence["kind"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_device_of_another_subject_or_one_not_in_the_DID_document_is_refused()
    {
        var claims = await ApprovedClaimsAsync();
        var device = claims["evidence"]!["device"]!.GetValue<string>();

        var noDevice = claims.DeepClone().AsObject();
        noDevice["evidence"]!.AsObject().Remove("device");
        var otherSubject = claims.DeepClone().AsObject();
        otherSubject["evidence"]!["device"] = "did:web:elsewhere.example:users:usr_x" + device[device.IndexOf('#')..];
        var unknown = claims.DeepClone().AsObject();
        unknown["evidence"]!["device"] = device[..(device.IndexOf('#') + 1)] + "dev_notenrolled";

        Assert.Contains("not a verification method of the token's subject", await RefusedAsync(noDevice));
        Assert.Contains("not a verification method of the token's subject", await RefusedAsync(otherSubject));
        Assert.Contains("not listed in the approver's DID document", await RefusedAsync(unknown));
    }

    [Fact]
    public async Task A_changed_signature_or_payload_is_refused()
    {
        var claims = await ApprovedClaimsAsync();

        var signature = claims.DeepClone().AsObject();
        signature["evidence"]!["sig"] = Flip(claims["evidence"]!["sig"]!.GetValue<string>());
        var payload = claims.DeepClone().AsObject();
        payload["evidence"]!["payload"] = Flip(claims["evidence"]!["payload"]!.GetValue<string>());

        Assert.Contains("does not verify", await RefusedAsync(signature));
        Assert.Contains("does not verify", await RefusedAsync(payload));
    }

    [Theory]
    [InlineData("iss", "https://other.example")]
    [InlineData("client_id", "agt_other")]
    [InlineData("scope", "openid admin")]
    [InlineData("binding_message", "Delete everything")]
    [InlineData("txn", "apr_other")]
    public async Task A_token_whose_claims_differ_from_the_signed_payload_is_refused(string claim, string value)
    {
        var claims = await ApprovedClaimsAsync();
        claims[claim] = value;

        var message = await RefusedAsync(claims);

        Assert.Contains("differs from the token's", message);
    }

    [Fact]
    public async Task Authorization_details_that_differ_from_the_signed_ones_are_refused()
    {
        var claims = await ApprovedClaimsAsync();
        claims["authorization_details"] = JsonNode.Parse("""[{"type":"payment","amount":"1.00","currency":"EUR"}]""");

        Assert.Contains("authorization_details", await RefusedAsync(claims));
    }
}
