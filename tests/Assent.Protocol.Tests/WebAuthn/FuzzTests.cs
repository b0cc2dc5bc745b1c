using System.Security.Cryptography;
using Assent.Protocol.WebAuthn;

namespace Assent.Protocol.Tests.WebAuthn;

/// <summary>
/// Deterministic fuzzing of every parser that reads attacker bytes. The CBOR decoder may only
/// ever raise <see cref="CborException"/>; the public TryParse and Verify methods may raise
/// nothing at all. Any other exception fails the test where it escapes.
/// </summary>
public sealed class FuzzTests
{
    private static readonly string[] Origins = [TestAuthenticator.Origin];
    private static readonly byte[] Challenge = SHA256.HashData("fuzz challenge"u8);
    private static readonly Lazy<Corpus> Valid = new(BuildCorpus);

    private sealed record Ceremony(TestAuthenticator Authenticator, CoseKey Key, byte[] AuthData, byte[] ClientData, byte[] Signature);

    private sealed record Corpus(IReadOnlyList<byte[]> Inputs, IReadOnlyList<Ceremony> Assertions, IReadOnlyList<(byte[] Attestation, byte[] ClientData)> Registrations);

    private static Corpus BuildCorpus()
    {
        var inputs = new List<byte[]>();
        var assertions = new List<Ceremony>();
        var registrations = new List<(byte[], byte[])>();
        var createData = TestAuthenticator.ClientDataJson(ClientData.TypeCreate, Challenge);
        var getData = TestAuthenticator.ClientDataJson(ClientData.TypeGet, Challenge);
        var extensions = TestCbor.Encode(TestCbor.Map(("credProps", TestCbor.Map(("rk", true)))));
        foreach (var kind in new[] { "ES256", "RS256", "EdDSA" })
        {
            // Kept alive for the test run: the corpus is static.
            var authenticator = TestAuthenticator.Create(kind);
            Assert.True(CoseKey.TryParse(authenticator.CoseKey, out var key, out _));
            var attested = authenticator.AuthenticatorData(attested: true, extensions: extensions);
            var plain = authenticator.AuthenticatorData(signCount: 3);
            var none = TestAuthenticator.NoneAttestation(authenticator.AuthenticatorData(attested: true));
            var packed = authenticator.PackedSelfAttestation(attested, createData);
            inputs.AddRange([authenticator.CoseKey, attested, plain, none, packed]);
            inputs.Add(createData);
            registrations.Add((none, createData));
            registrations.Add((packed, createData));
            assertions.Add(new Ceremony(authenticator, key, plain, getData, authenticator.SignCeremony(plain, getData)));
        }
        return new Corpus(inputs, assertions, registrations);
    }

    private static void ParseEverything(byte[] input)
    {
        try
        {
            Cbor.Decode(input);
        }
        catch (CborException)
        {
        }
        CoseKey.TryParse(input, out _, out _);
        AuthenticatorData.TryParse(input, out _, out _);
        AttestationObject.TryParse(input, out _, out _);
        ClientData.TryParse(input, out _, out _);
    }

    [Fact]
    public void Seeded_random_and_mutated_inputs_raise_only_typed_failures()
    {
        var random = new Random(20_240_917);
        var corpus = Valid.Value.Inputs;
        for (var i = 0; i < 20_000; i++)
        {
            byte[] input;
            if (i % 2 == 0)
            {
                input = new byte[random.Next(0, 96)];
                random.NextBytes(input);
            }
            else
            {
                var list = corpus[random.Next(corpus.Count)].ToList();
                for (var m = random.Next(1, 5); m > 0 && list.Count > 0; m--)
                {
                    var at = random.Next(list.Count);
                    switch (random.Next(3))
                    {
                        case 0:
                            list[at] = (byte)random.Next(256);
                            break;
                        case 1:
                            list.Insert(at, (byte)random.Next(256));
                            break;
                        default:
                            list.RemoveAt(at);
                            break;
                    }
                }
                input = [.. list];
            }
            ParseEverything(input);
        }
    }

    [Fact]
    public void Every_truncation_of_a_valid_input_is_refused_without_surprises()
    {
        foreach (var valid in Valid.Value.Inputs)
        {
            for (var length = 0; length < valid.Length; length++)
            {
                ParseEverything(valid[..length]);
            }
        }
        foreach (var (attestation, clientData) in Valid.Value.Registrations)
        {
            for (var length = 0; length < attestation.Length; length++)
            {
                Assert.False(WebAuthnVerifier.VerifyRegistration(attestation[..length], clientData, Challenge, Origins, TestAuthenticator.RpId).Succeeded);
            }
        }
    }

    [Fact]
    public void Every_single_bit_flip_of_a_valid_input_is_handled()
    {
        // Attestation objects are flipped through the whole verifier in the test below.
        var attestations = Valid.Value.Registrations.Select(r => r.Attestation).ToHashSet();
        foreach (var valid in Valid.Value.Inputs.Where(i => !attestations.Contains(i)))
        {
            for (var bit = 0; bit < valid.Length * 8; bit++)
            {
                var input = valid.ToArray();
                input[bit / 8] ^= (byte)(1 << (bit % 8));
                ParseEverything(input);
            }
        }
    }

    [Fact]
    public void Every_single_bit_flip_of_signed_assertion_bytes_fails_verification()
    {
        foreach (var c in Valid.Value.Assertions)
        {
            Assert.True(Verify(c, c.AuthData, c.ClientData, c.Signature).Succeeded);
            for (var bit = 0; bit < c.AuthData.Length * 8; bit++)
            {
                Assert.False(Verify(c, Flip(c.AuthData, bit), c.ClientData, c.Signature).Succeeded);
            }
            for (var bit = 0; bit < c.ClientData.Length * 8; bit++)
            {
                Assert.False(Verify(c, c.AuthData, Flip(c.ClientData, bit), c.Signature).Succeeded);
            }
            for (var bit = 0; bit < c.Signature.Length * 8; bit++)
            {
                Assert.False(Verify(c, c.AuthData, c.ClientData, Flip(c.Signature, bit)).Succeeded);
            }
            for (var length = 0; length < c.Signature.Length; length++)
            {
                Assert.False(Verify(c, c.AuthData, c.ClientData, c.Signature[..length]).Succeeded);
            }
        }
    }

    [Fact]
    public void Every_single_bit_flip_of_a_valid_attestation_object_is_handled()
    {
        foreach (var (attestation, clientData) in Valid.Value.Registrations)
        {
            for (var bit = 0; bit < attestation.Length * 8; bit++)
            {
                WebAuthnVerifier.VerifyRegistration(Flip(attestation, bit), clientData, Challenge, Origins, TestAuthenticator.RpId);
            }
        }
    }

    [Theory]
    [InlineData(0x81)]
    [InlineData(0x9f)]
    [InlineData(0xa1)]
    public void One_hundred_thousand_levels_of_nesting_stop_at_the_depth_limit(byte opener)
    {
        var deep = Enumerable.Repeat(opener, 100_000).ToArray();

        Assert.Throws<CborException>(() => Cbor.Decode(deep));
        Assert.False(AttestationObject.TryParse(deep, out _, out _));
        Assert.False(CoseKey.TryParse(deep, out _, out _));
        using var authenticator = TestAuthenticator.Create("EdDSA");
        Assert.False(AuthenticatorData.TryParse(authenticator.AuthenticatorData(attested: true, coseKey: deep), out _, out var error));
        Assert.Equal(WebAuthnFailures.InvalidKey, error.Code);
    }

    [Theory]
    [InlineData("5bffffffffffffffff")]
    [InlineData("5b7fffffffffffffff00")]
    [InlineData("7bffffffffffffffff")]
    [InlineData("9bffffffffffffffff")]
    [InlineData("9b7fffffffffffffff0000")]
    [InlineData("bbffffffffffffffff")]
    [InlineData("bb7fffffffffffffff000000")]
    [InlineData("5affffffff")]
    [InlineData("9a7fffffff01")]
    [InlineData("ba7fffffff0102")]
    public void Huge_declared_lengths_are_refused_before_any_allocation(string hex)
    {
        var input = Convert.FromHexString(hex);
        var before = GC.GetAllocatedBytesForCurrentThread();

        Assert.Throws<CborException>(() => Cbor.Decode(input));
        ParseEverything(input);

        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000);
    }

    [Fact]
    public void An_attestation_object_whose_auth_data_claims_exabytes_is_refused()
    {
        // {"fmt": "none", "attStmt": {}, "authData": h'…' declared 2^63-1 bytes long}
        var input = Convert.FromHexString("a363666d74646e6f6e656761747453746d74a06861757468446174615b7fffffffffffffff00");

        Assert.False(AttestationObject.TryParse(input, out _, out var error));
        Assert.Equal(WebAuthnFailures.MalformedAttestation, error.Code);
    }

    private static WebAuthnResult<VerifiedAssertion> Verify(Ceremony c, byte[] authData, byte[] clientData, byte[] signature) =>
        WebAuthnVerifier.VerifyAssertion(authData, clientData, signature, c.Key, Challenge, Origins, TestAuthenticator.RpId, 0);

    private static byte[] Flip(byte[] data, int bit)
    {
        var copy = data.ToArray();
        copy[bit / 8] ^= (byte)(1 << (bit % 8));
        return copy;
    }
}
