using System.Diagnostics;
using System.Security.Cryptography;
using Assent.Protocol.Crypto;

// Ed25519 sign and verify throughput per backend: a Stopwatch loop, ~2 s per measurement after a
// short warm-up. Run in Release: dotnet run -c Release --project bench/Assent.Bench.Micro [seconds]
var seconds = args.Length > 0 && double.TryParse(args[0], out var s) ? s : 2.0;
var measure = TimeSpan.FromSeconds(seconds);

IEd25519[] backends = LibsodiumEd25519.TryCreate() is { } sodium
    ? [sodium, new BouncyCastleEd25519()]
    : [new BouncyCastleEd25519()];

var seed = RandomNumberGenerator.GetBytes(Ed25519.SeedSize);
// About the size of an approval signing input: decision ‖ 0x00 ‖ a ~400-byte payload.
var message = RandomNumberGenerator.GetBytes(400);

Console.WriteLine($".NET {Environment.Version}, {Environment.ProcessorCount} cores, {message.Length}-byte message, {seconds:0.#} s per run");
Console.WriteLine($"{"backend",-14}{"operation",-10}{"ops/s",12}{"µs/op",10}");
foreach (var backend in backends)
{
    var publicKey = backend.PublicKeyFromSeed(seed);
    var signature = backend.Sign(seed, message);
    if (!backend.Verify(publicKey, message, signature))
    {
        throw new InvalidOperationException($"{backend.Name} does not verify its own signature");
    }
    Report(backend.Name, "sign", Run(() => backend.Sign(seed, message).Length, measure));
    Report(backend.Name, "verify", Run(() => backend.Verify(publicKey, message, signature) ? 1 : 0, measure));
}

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
    Console.WriteLine($"{backend,-14}{operation,-10}{opsPerSecond,12:N0}{1e6 / opsPerSecond,10:N1}");
