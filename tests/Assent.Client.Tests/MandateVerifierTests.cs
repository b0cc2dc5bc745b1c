using System.Text.Json;
using System.Text.Json.Nodes;
using Assent.Client.Verification;
using Assent.Protocol;
using Assent.Protocol.Approvals;

namespace Assent.Client.Tests;

/// <summary>
/// A payment a spending mandate approved (docs/policies.md §6): the verifier checks the device's signature over the
/// mandate against the DID document, and the payment against the limits that signature covers.
/// </summary>
[Collection(IssuersCollection.Name)]
public sealed class MandateVerifierTests(Issuers issuers)
{
    private static string Payment(string amount, string payee = "api.example.com") =>
        $$"""[{"type":"payment","amount":"{{amount}}","currency":"USD","payee":"{{payee}}"}]""";

    private async Task<(string Token, IssuerServer Server)> MandatePaymentAsync()
    {
        var server = issuers.A;
        var user = await server.UserAsync();
        using var client = server.ClientFor(user);
        var expires = DateTimeOffset.UtcNow.AddDays(7).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'");
        var human = Human.DecideAsync(user, Decisions.Approve);
        var mandate = await client.ApproveAsync("Spend up to 5 USD a day on the search API", new()
        {
            Details = $$"""[{"type":"mandate","currency":"USD","per_payment":"1.00","total":"5.00","period":"day","payees":["api.example.com"],"expires_at":"{{expires}}"}]""",
        }, CancellationToken.None);
        await human;
        Assert.True(mandate.Approved);
        // No human this time: the mandate covers it.
        var paid = await client.ApproveAsync("Pay 0.40 USD for a search", new() { Scope = "payments:write", Details = Payment("0.40") }, CancellationToken.None);
        Assert.True(paid.Approved);
        return (paid.AccessToken!, server);
    }

    private static async Task<string> RefusedAsync(JsonObject claims)
    {
        using var http = new HttpClient();
        var dids = new DidDocuments(http, TimeProvider.System, TimeSpan.Zero);
        var root = JsonDocument.Parse(claims.ToJsonString()).RootElement;
        var e = await Assert.ThrowsAsync<TokenVerificationException>(() => Evidence.CheckAsync(root, new TokenVerifier.Claims(root), dids, CancellationToken.None));
        Assert.Equal(TokenErrors.EvidenceMismatch, e.Code);
        return e.Message;
    }

    [Fact]
    public async Task A_mandate_payment_verifies_and_any_change_to_its_mandate_evidence_or_payment_is_refused()
    {
        var (token, server) = await MandatePaymentAsync();
        using var verifier = new TokenVerifier(server.Issuer);
        var verified = await verifier.VerifyAsync(token, new() { Scope = "payments:write", CheckReplay = false }, CancellationToken.None);
        Assert.NotNull(verified.EvidenceDevice);
        var e = await Assert.ThrowsAsync<TokenVerificationException>(() =>
            verifier.VerifyAsync(token, new() { Scope = "payments:write", CheckReplay = false, AllowMandates = false }, CancellationToken.None));
        Assert.Equal(TokenErrors.EvidenceMismatch, e.Code);

        var claims = JsonNode.Parse(Base64Url.Decode(token.Split('.')[1]))!.AsObject();
        var overLimit = claims.DeepClone().AsObject();
        overLimit["authorization_details"] = JsonNode.Parse(Payment("1.50"));
        var otherPayee = claims.DeepClone().AsObject();
        otherPayee["authorization_details"] = JsonNode.Parse(Payment("0.40", "evil.example"));
        var otherMandate = claims.DeepClone().AsObject();
        otherMandate["mandate"]!["id"] = "mnd_someotherone";
        var flipped = claims.DeepClone().AsObject();
        var sig = Base64Url.Decode(claims["evidence"]!["sig"]!.GetValue<string>());
        sig[^1] ^= 1;
        flipped["evidence"]!["sig"] = Base64Url.Encode(sig);
        var otherAgent = claims.DeepClone().AsObject();
        otherAgent["client_id"] = "agt_other";
        var noMandateClaim = claims.DeepClone().AsObject();
        noMandateClaim.Remove("mandate");

        Assert.Contains("exceeds the mandate's limits", await RefusedAsync(overLimit));
        Assert.Contains("payee", await RefusedAsync(otherPayee));
        Assert.Contains("mandate id", await RefusedAsync(otherMandate));
        Assert.Contains("does not verify", await RefusedAsync(flipped));
        Assert.Contains("client_id", await RefusedAsync(otherAgent));
        // amr says mandate, so the mandate's evidence is not read as an ordinary approval's.
        await RefusedAsync(noMandateClaim);
    }
}
