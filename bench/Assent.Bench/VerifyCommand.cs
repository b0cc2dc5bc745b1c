using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Assent.Client.Verification;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Crypto;
using Assent.Protocol.Did;
using Assent.Protocol.Jose;
using Assent.Server.Common;

namespace Assent.Bench;

/// <summary>
/// Single-thread <see cref="TokenVerifier.VerifyAsync"/> rate against the raw Ed25519 rate of the two verifies each token
/// needs (the issuer's signature and the device's in its evidence), same backend, same run, same tokens (the server's
/// size, with evidence). Each token is verified once, so the replay guard does real work. Rounds alternate raw and
/// verifier in small chunks to share any drift.
/// </summary>
internal static class VerifyCommand
{
    private const string Issuer = "https://bench.test";
    private const int Chunk = 250;
    private static readonly string Approver = DidWeb.ForUser(new Uri(Issuer), "usr_0123456789abcdef");
    private static readonly string Device = Approver + "#dev_0123456789";

    public static async Task<int> RunAsync(BenchArgs args, CancellationToken ct)
    {
        var perRound = args.Int("tokens", 20_000, 100, 1_000_000);
        var rounds = args.Int("rounds", 5, 1, 50);
        var seed = Ed25519.NewSeed();
        var publicKey = Ed25519.PublicKeyFromSeed(seed);
        var kid = Jwk.Thumbprint(Base64Url.Encode(publicKey));
        var deviceSeed = Ed25519.NewSeed();
        var devicePublicKey = Ed25519.PublicKeyFromSeed(deviceSeed);
        using var http = new HttpClient(new StaticJwks(Jwk.ForEd25519(publicKey, kid), Jwk.ForEd25519(devicePublicKey)));
        using var verifier = new TokenVerifier(Issuer, new TokenVerifierOptions { HttpClient = http });
        var header = Jws.EncodeHeader(kid, Jws.AccessTokenType);
        var options = new VerifyOptions { Scope = "approve:action", Audience = "agt_bench" };

        Console.WriteLine($"verify: {perRound} tokens per round, {rounds} rounds, token size {Mint(header, seed, deviceSeed, 0).Length} chars");
        // Warm-up: JIT, JWKS fetch, tiered compilation.
        var warm = Enumerable.Range(0, 5_000).Select(i => Mint(header, seed, deviceSeed, -1 - i)).ToArray();
        foreach (var t in warm)
        {
            await verifier.VerifyAsync(t, options, ct);
        }
        RawTicks(warm, publicKey, devicePublicKey);

        var raw = new List<double>();
        var full = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            var tokens = new string[perRound];
            for (var i = 0; i < perRound; i++)
            {
                tokens[i] = Mint(header, seed, deviceSeed, round * perRound + i);
            }
            // Interleaved in small chunks, so a noisy neighbour on a shared machine slows both sides alike.
            var (rawTicks, fullTicks) = (0L, 0L);
            for (var start = 0; start < perRound; start += Chunk)
            {
                var chunk = tokens.AsSpan(start, Math.Min(Chunk, perRound - start)).ToArray();
                rawTicks += RawTicks(chunk, publicKey, devicePublicKey);
                var began = Stopwatch.GetTimestamp();
                foreach (var t in chunk)
                {
                    await verifier.VerifyAsync(t, options, ct);
                }
                fullTicks += Stopwatch.GetTimestamp() - began;
            }
            raw.Add(perRound * (double)Stopwatch.Frequency / rawTicks);
            full.Add(perRound * (double)Stopwatch.Frequency / fullTicks);
            Console.WriteLine($"  round {round + 1}: raw Ed25519 (2 verifies) {Stats.F(raw[^1], 0)}/s, TokenVerifier {Stats.F(full[^1], 0)}/s ({Stats.F(100 * full[^1] / raw[^1], 1)}%)");
        }
        var ratios = raw.Select((r, i) => 100 * full[i] / r).Order().ToList();
        raw.Sort();
        full.Sort();
        var (rawMedian, fullMedian, ratio) = (raw[raw.Count / 2], full[full.Count / 2], ratios[ratios.Count / 2]);
        Console.WriteLine($"  median: raw {Stats.F(rawMedian, 0)}/s, TokenVerifier {Stats.F(fullMedian, 0)}/s; median round ratio {Stats.F(ratio, 1)}% (target >= 85%)");
        Stats.Result("verify", ("raw_per_s", Stats.F(rawMedian, 0)), ("verifier_per_s", Stats.F(fullMedian, 0)),
            ("ratio_pct", Stats.F(ratio, 1)));
        return 0;
    }

    /// <summary>
    /// Raw verifies of what a token's check cannot do without: the issuer's signature over the token and the device's
    /// over the approval payload in its evidence (docs/tokens.md §4.1), both prepared beforehand so only Ed25519 is timed.
    /// </summary>
    private static long RawTicks(string[] tokens, byte[] publicKey, byte[] devicePublicKey)
    {
        var inputs = new byte[tokens.Length][];
        var signatures = new byte[tokens.Length][];
        var payloads = new byte[tokens.Length][];
        var deviceSignatures = new byte[tokens.Length][];
        for (var i = 0; i < tokens.Length; i++)
        {
            var dot = tokens[i].LastIndexOf('.');
            inputs[i] = Encoding.ASCII.GetBytes(tokens[i][..dot]);
            signatures[i] = Base64Url.Decode(tokens[i].AsSpan(dot + 1));
            using var claims = JsonDocument.Parse(Base64Url.Decode(tokens[i].Split('.')[1]));
            var evidence = claims.RootElement.GetProperty("evidence");
            payloads[i] = ApprovalPayload.SigningInput(Decisions.Approve, Base64Url.Decode(evidence.GetProperty("payload").GetString()!));
            deviceSignatures[i] = Base64Url.Decode(evidence.GetProperty("sig").GetString()!);
        }
        var began = Stopwatch.GetTimestamp();
        for (var i = 0; i < tokens.Length; i++)
        {
            if (!Ed25519.Verify(publicKey, inputs[i], signatures[i]) || !Ed25519.Verify(devicePublicKey, payloads[i], deviceSignatures[i]))
            {
                throw new InvalidOperationException("a bench token does not verify");
            }
        }
        return Stopwatch.GetTimestamp() - began;
    }

    /// <summary>An access token shaped like the server's (docs/tokens.md §3), evidence included.</summary>
    private static string Mint(string header, byte[] seed, byte[] deviceSeed, int n)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var sub = Approver;
        var txn = $"apr_{n:D20}";
        var details = """[{"type":"payment","amount":"125.00","currency":"EUR","recipient":"Zoë Example"}]"""u8;
        var payload = ApprovalPayload.Build(Issuer, txn, sub, "agt_bench", "Bench agent", "openid approve:action", "Pay Zoë 125 EUR",
            details, now, now + 300, "bench-nonce-0123456789");
        var sig = Ed25519.Sign(deviceSeed, ApprovalPayload.SigningInput(Decisions.Approve, payload));
        var buffer = new ArrayBufferWriter<byte>(2048);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("iss", Issuer);
            w.WriteString("sub", sub);
            w.WriteString("aud", "agt_bench");
            w.WriteString("client_id", "agt_bench");
            w.WriteStartObject("act");
            w.WriteString("sub", "agt_bench");
            w.WriteEndObject();
            w.WriteString("scope", "openid approve:action");
            w.WriteString("jti", $"jti-{n}-{Guid.NewGuid():N}");
            w.WriteNumber("iat", now);
            w.WriteNumber("nbf", now);
            w.WriteNumber("exp", now + 300);
            w.WriteNumber("auth_time", now);
            w.WriteStartArray("amr");
            w.WriteStringValue("swk");
            w.WriteEndArray();
            w.WriteString("binding_message", "Pay Zoë 125 EUR");
            w.WritePropertyName("authorization_details");
            w.WriteRawValue(details);
            w.WriteString("txn", txn);
            w.WriteStartObject("evidence");
            w.WriteString("kind", "ed25519");
            w.WriteString("device", Device);
            w.WriteString("payload", Base64Url.Encode(payload));
            w.WriteString("sig", Base64Url.Encode(sig));
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Jws.Sign(header, buffer.WrittenSpan, seed);
    }

    /// <summary>
    /// Discovery and JWKS of the bench issuer, and the approver's DID document (did:web, docs/concepts.md §7.1: the token's
    /// evidence is checked against the device key it lists), in memory: no network in the timed loop or around it. The
    /// documents are the server's own types, written the way the server writes them.
    /// </summary>
    private sealed class StaticJwks : HttpMessageHandler
    {
        private readonly Dictionary<string, string> _bodies;

        public StaticJwks(Jwk key, Jwk device)
        {
            DidWeb.TryGetDocumentUrl(Approver, out var document);
            var method = new VerificationMethod(Device, "JsonWebKey2020", Approver, device);
            _bodies = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["/.well-known/openid-configuration"] = $$"""{"issuer":"{{Issuer}}","jwks_uri":"{{Issuer}}/jwks"}""",
                ["/jwks"] = JsonSerializer.Serialize(new JwkSet([key]), JwkJson.Default.JwkSet),
                [document!.AbsolutePath] = JsonSerializer.Serialize(new DidDocument(["https://www.w3.org/ns/did/v1"], Approver, [method], [Device], [Device]),
                    ServerJson.Default.DidDocument),
            };
        }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(_bodies.TryGetValue(request.RequestUri!.AbsolutePath, out var body)
                ? new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(body, Encoding.UTF8, "application/json") }
                : new HttpResponseMessage(HttpStatusCode.NotFound));
    }
}
