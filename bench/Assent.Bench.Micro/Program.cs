using System.Diagnostics;
using Assent.Protocol.Crypto;

// Ed25519 sign and verify throughput on NSec (libsodium): a Stopwatch loop, ~2 s per measurement after a
// short warm-up. Signing is measured both ways the code signs: importing the seed per call (devices, CLI)
// and with a key imported once (the server's issuer key). Then a passkey's ES256 assertion: the P-256 key import against
// the verification, and the SDK's whole offline check with its key kept after the first import (ImportedKeys).
// Run in Release: dotnet run -c Release --project bench/Assent.Bench.Micro [seconds]
var seconds = args.Length > 0 && double.TryParse(args[0], out var s) ? s : 2.0;
var measure = TimeSpan.FromSeconds(seconds);

var seed = Ed25519.NewSeed();
// About the size of an approval signing input: decision ‖ 0x00 ‖ a ~400-byte payload.
var message = System.Security.Cryptography.RandomNumberGenerator.GetBytes(400);
var publicKey = Ed25519.PublicKeyFromSeed(seed);
var signature = Ed25519.Sign(seed, message);
using var signer = new Ed25519Signer(seed);
if (!Ed25519.Verify(publicKey, message, signature) || !signer.Sign(message).AsSpan().SequenceEqual(signature))
{
    throw new InvalidOperationException("Ed25519 does not verify its own signature");
}

Console.WriteLine($".NET {Environment.Version}, {Environment.ProcessorCount} cores, {message.Length}-byte message, {seconds:0.#} s per run");
Console.WriteLine($"{"backend",-14}{"operation",-14}{"ops/s",12}{"µs/op",10}");
Report("nsec", "sign", Run(() => Ed25519.Sign(seed, message).Length, measure));
Report("nsec", "sign-signer", Run(() => signer.Sign(message).Length, measure));
Report("nsec", "verify", Run(() => Ed25519.Verify(publicKey, message, signature) ? 1 : 0, measure));

// A passkey assertion (ES256) as the server and the SDK check it: importing the P-256 key (OpenSSL validates the point
// in full) against verifying the signature, and the whole offline check, whose key import is kept after the first.
using var p256 = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
var q = p256.ExportParameters(false);
var ecSignature = p256.SignData(message, System.Security.Cryptography.HashAlgorithmName.SHA256);
Report("openssl", "p256-import", Run(() =>
{
    using var k = System.Security.Cryptography.ECDsa.Create(new System.Security.Cryptography.ECParameters { Curve = q.Curve, Q = q.Q });
    return k.KeySize;
}, measure));
Report("openssl", "p256-verify", Run(() => p256.VerifyData(message, ecSignature, System.Security.Cryptography.HashAlgorithmName.SHA256) ? 1 : 0, measure));
var jwk = new Assent.Protocol.Jose.Jwk("EC", "P-256", Assent.Protocol.Base64Url.Encode(q.Q.X!), Assent.Protocol.Base64Url.Encode(q.Q.Y!));
var challenge = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
var clientData = System.Text.Encoding.UTF8.GetBytes(
    $"{{\"type\":\"webauthn.get\",\"challenge\":\"{Assent.Protocol.Base64Url.Encode(challenge)}\",\"origin\":\"https://example.com\",\"crossOrigin\":false}}");
byte[] authData = [.. System.Security.Cryptography.SHA256.HashData("example.com"u8), 0x05, 0, 0, 0, 0];
var assertionSignature = p256.SignData([.. authData, .. System.Security.Cryptography.SHA256.HashData(clientData)],
    System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.DSASignatureFormat.Rfc3279DerSequence);
Report("assent", "es256-assert", Run(() => Assent.Protocol.WebAuthn.WebAuthnVerifier.VerifyAssertionSignature(authData, clientData, assertionSignature, jwk, challenge,
    "example.com", ["https://example.com"]).Succeeded ? 1 : throw new InvalidOperationException("the assertion does not verify"), measure));

static double Run(Func<int> operation, TimeSpan duration)
{
    var sink = 0;
    var warmUp = Stopwatch.StartNew();
    while (warmUp.Elapsed < TimeSpan.FromMilliseconds(300))
    {
        sink += operation();
    }
    long count = 0;
    var watch = Stopwatch.StartNew();
    while (watch.Elapsed < duration)
    {
        // Batches of 64 keep the clock read out of the measurement.
        for (var i = 0; i < 64; i++)
        {
            sink += operation();
        }
        count += 64;
    }
    watch.Stop();
    GC.KeepAlive(sink);
    return count / watch.Elapsed.TotalSeconds;
}

static void Report(string backend, string operation, double opsPerSecond) =>
    Console.WriteLine($"{backend,-14}{operation,-14}{opsPerSecond,12:N0}{1e6 / opsPerSecond,10:N1}");
