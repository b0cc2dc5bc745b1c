using System.Security.Cryptography;
using Assent.Protocol.WebAuthn;

namespace Assent.Server.Tests.Passkeys;

/// <summary>
/// Deterministic fuzzing of the ceremonies with attacker bytes: whatever Fido2 makes of them, a
/// ceremony answers with a refusal and never throws. Any exception fails the test where it escapes.
/// </summary>
public sealed class PasskeyFuzzTests
{
    private static readonly byte[] Challenge = SHA256.HashData("fuzz challenge"u8);
    private static readonly Lazy<Corpus> Valid = new(BuildCorpus);

    private sealed record Ceremony(TestAuthenticator Authenticator, byte[] AuthData, byte[] ClientData, byte[] Signature);

    private sealed record Corpus(IReadOnlyList<Ceremony> Assertions, IReadOnlyList<(byte[] Attestation, byte[] ClientData)> Registrations);

    private static Corpus BuildCorpus()
    {
        var assertions = new List<Ceremony>();
        var registrations = new List<(byte[], byte[])>();
        var createData = TestAuthenticator.ClientDataJson(ClientData.TypeCreate, Challenge);
        var getData = TestAuthenticator.ClientDataJson(ClientData.TypeGet, Challenge);
        var extensions = TestCbor.Encode(TestCbor.Map(("credProps", TestCbor.Map(("rk", true)))));
        foreach (var kind in new[] { "ES256", "RS256", "EdDSA" })
        {
            // Kept alive for the test run: the corpus is static.
            var authenticator = TestAuthenticator.Create(kind);
            var plain = authenticator.AuthenticatorData(signCount: 3);
            registrations.Add((TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true)), createData));
            registrations.Add((authenticator.PackedSelfAttestation(authenticator.AuthenticatorData(attested: true, extensions: extensions), createData), createData));
            assertions.Add(new Ceremony(authenticator, plain, getData, authenticator.SignCeremony(plain, getData)));
        }
        return new Corpus(assertions, registrations);
    }

    private static async Task<bool> RegisterAsync(byte[] attestation, byte[] clientData) =>
        (await (await TestCeremonies.NoneAsync()).VerifyRegistrationAsync("usr_fuzz", attestation, clientData, Challenge, default)).Succeeded;

    private static async Task<bool> AssertAsync(Ceremony c, byte[] authData, byte[] clientData, byte[] signature) =>
        (await (await TestCeremonies.NoneAsync()).VerifyAssertionAsync(c.Authenticator.Stored(), authData, clientData, signature, Challenge, default)).Succeeded;

    [Fact]
    public async Task Seeded_random_and_mutated_inputs_are_refused_without_exceptions()
    {
        var random = new Random(20_240_917);
        var registrations = Valid.Value.Registrations;
        var assertion = Valid.Value.Assertions[0];
        for (var i = 0; i < 1_000; i++)
        {
            var (attestation, clientData) = registrations[random.Next(registrations.Count)];
            Assert.False(await RegisterAsync(RandomBytes(random, random.Next(0, 96)), clientData));
            // A mutation may leave a valid registration (another AAGUID, say): only an exception fails.
            await RegisterAsync(Mutate(random, attestation), clientData);
            await RegisterAsync(attestation, Mutate(random, clientData));
            var authData = Mutate(random, assertion.AuthData);
            Assert.Equal(authData.SequenceEqual(assertion.AuthData), await AssertAsync(assertion, authData, assertion.ClientData, assertion.Signature));
            Assert.False(await AssertAsync(assertion, RandomBytes(random, random.Next(0, 64)), RandomBytes(random, random.Next(0, 64)),
                RandomBytes(random, random.Next(0, 72))));
        }
    }

    [Fact]
    public async Task Every_truncation_of_a_valid_attestation_object_is_refused()
    {
        foreach (var (attestation, clientData) in Valid.Value.Registrations)
        {
            Assert.True(await RegisterAsync(attestation, clientData));
            for (var length = 0; length < attestation.Length; length++)
            {
                Assert.False(await RegisterAsync(attestation[..length], clientData));
            }
        }
    }

    [Fact]
    public async Task Every_single_bit_flip_of_a_valid_attestation_object_is_handled()
    {
        foreach (var (attestation, clientData) in Valid.Value.Registrations)
        {
            for (var bit = 0; bit < attestation.Length * 8; bit++)
            {
                await RegisterAsync(Flip(attestation, bit), clientData);
            }
        }
    }

    [Fact]
    public async Task Every_single_bit_flip_of_signed_assertion_bytes_fails_verification()
    {
        foreach (var c in Valid.Value.Assertions)
        {
            Assert.True(await AssertAsync(c, c.AuthData, c.ClientData, c.Signature));
            for (var bit = 0; bit < c.AuthData.Length * 8; bit++)
            {
                Assert.False(await AssertAsync(c, Flip(c.AuthData, bit), c.ClientData, c.Signature));
            }
            for (var bit = 0; bit < c.ClientData.Length * 8; bit++)
            {
                Assert.False(await AssertAsync(c, c.AuthData, Flip(c.ClientData, bit), c.Signature));
            }
            for (var bit = 0; bit < c.Signature.Length * 8; bit++)
            {
                Assert.False(await AssertAsync(c, c.AuthData, c.ClientData, Flip(c.Signature, bit)), $"{c.Authenticator.Algorithm} bit {bit} of {Convert.ToHexString(c.Signature)}");
            }
            for (var length = 0; length < c.Signature.Length; length++)
            {
                Assert.False(await AssertAsync(c, c.AuthData, c.ClientData, c.Signature[..length]));
            }
        }
    }

    [Theory]
    [InlineData(0x81)]
    [InlineData(0x9f)]
    [InlineData(0xa1)]
    public async Task One_hundred_thousand_levels_of_nesting_are_refused(byte opener)
    {
        var deep = Enumerable.Repeat(opener, 100_000).ToArray();
        using var authenticator = TestAuthenticator.Create("EdDSA");
        var createData = TestAuthenticator.ClientDataJson(ClientData.TypeCreate, Challenge);

        Assert.False(await RegisterAsync(deep, createData));
        Assert.False(await RegisterAsync(TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true, coseKey: deep)), createData));
    }

    [Theory]
    [InlineData("5bffffffffffffffff")]
    [InlineData("5b7fffffffffffffff00")]
    [InlineData("7bffffffffffffffff")]
    [InlineData("9bffffffffffffffff")]
    [InlineData("bb7fffffffffffffff000000")]
    [InlineData("5affffffff")]
    [InlineData("a363666d74646e6f6e656761747453746d74a06861757468446174615b7fffffffffffffff00")]
    public async Task Huge_declared_lengths_are_refused_without_a_huge_allocation(string hex)
    {
        var input = Convert.FromHexString(hex);
        var createData = TestAuthenticator.ClientDataJson(ClientData.TypeCreate, Challenge);
        await RegisterAsync(input, createData);
        var before = GC.GetAllocatedBytesForCurrentThread();

        Assert.False(await RegisterAsync(input, createData));

        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000);
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    private static byte[] Mutate(Random random, byte[] valid)
    {
        var list = valid.ToList();
        for (var m = random.Next(1, 5); m > 0 && list.Count > 0; m--)
        {
            var at = random.Next(list.Count);
            switch (random.Next(3))
            {
                case 0:
                    list[at] ^= (byte)random.Next(1, 256);
                    break;
                case 1:
                    list.Insert(at, (byte)random.Next(256));
                    break;
                default:
                    list.RemoveAt(at);
                    break;
            }
        }
        return [.. list];
    }

    private static byte[] Flip(byte[] data, int bit)
    {
        var copy = data.ToArray();
        copy[bit / 8] ^= (byte)(1 << (bit % 8));
        return copy;
    }
}
