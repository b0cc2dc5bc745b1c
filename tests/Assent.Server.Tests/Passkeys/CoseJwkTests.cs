using System.Formats.Cbor;
using Assent.Protocol;
using Assent.Protocol.Jose;
using Assent.Server.Identity;

namespace Assent.Server.Tests.Passkeys;

/// <summary>
/// <see cref="CoseJwk"/> read directly with crafted COSE keys (RFC 9052 §7, RFC 9053 §7, RFC 8230 §4):
/// only the three key kinds, each with its own key type, curve and members, become a JWK.
/// </summary>
public sealed class PasskeyCoseJwkTests
{
    public static TheoryData<string> Kinds => ["ES256", "RS256", "EdDSA"];

    private static byte[] Key(params (object Key, object? Value)[] entries) => TestCbor.Encode(TestCbor.Map(entries));

    private static byte[] Ec2(int kty = 2, int crv = 1, int alg = -7, bool x = true, bool y = true) =>
        Key(Present([(1, kty), (3, alg), (-1, crv)], (-2, x ? new byte[32] : null), (-3, y ? new byte[32] : null)));

    private static byte[] Okp(int kty = 1, int crv = 6, int alg = -8, bool x = true) =>
        Key(Present([(1, kty), (3, alg), (-1, crv)], (-2, x ? new byte[32] : null)));

    private static byte[] Rsa(int kty = 3, int alg = -257, bool n = true, bool e = true) =>
        Key(Present([(1, kty), (3, alg)], (-1, n ? new byte[256] : null), (-2, e ? new byte[] { 1, 0, 1 } : null)));

    /// <summary>The entries, then those of <paramref name="optional"/> that have a value.</summary>
    private static (object Key, object? Value)[] Present((object Key, object? Value)[] entries, params (object Key, byte[]? Value)[] optional) =>
        [.. entries, .. optional.Where(o => o.Value is not null).Select(o => (o.Key, (object?)o.Value))];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void An_authenticators_key_becomes_its_jwk_and_algorithm(string kind)
    {
        using var authenticator = TestAuthenticator.Create(kind);

        Assert.True(CoseJwk.TryToJwk(authenticator.CoseKey, out var jwk, out var algorithm));
        Assert.Equal(authenticator.Jwk, jwk);
        Assert.Equal(authenticator.Algorithm, algorithm);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void A_jwk_becomes_the_ctap2_canonical_cose_key_it_was_read_from(string kind)
    {
        using var authenticator = TestAuthenticator.Create(kind);

        // TestAuthenticator writes its labels in canonical order (1, 3, -1, -2, -3) with shortest integers.
        Assert.Equal(authenticator.CoseKey, CoseJwk.FromJwk(authenticator.Jwk));
        Assert.True(CoseJwk.TryToJwk(CoseJwk.FromJwk(authenticator.Jwk), out var jwk, out _));
        Assert.Equal(authenticator.Jwk, jwk);
    }

    [Fact]
    public void The_crafted_keys_themselves_are_read()
    {
        // The refusals below each change one thing of these.
        Assert.True(CoseJwk.TryToJwk(Ec2(), out var ec, out var ecAlg));
        Assert.Equal(new Jwk("EC", "P-256", Base64Url.Encode(new byte[32]), Base64Url.Encode(new byte[32])), ec);
        Assert.Equal(-7, ecAlg);
        Assert.True(CoseJwk.TryToJwk(Okp(), out var okp, out var okpAlg));
        Assert.Equal(new Jwk(Jwk.OctetKeyPair, Jwk.Ed25519Curve, Base64Url.Encode(new byte[32])), okp);
        Assert.Equal(-8, okpAlg);
        Assert.True(CoseJwk.TryToJwk(Rsa(), out var rsa, out var rsaAlg));
        Assert.Equal(new Jwk("RSA", null, null, N: Base64Url.Encode(new byte[256]), E: "AQAB"), rsa);
        Assert.Equal(-257, rsaAlg);
    }

    public static TheoryData<string, byte[]> Refused => new()
    {
        { "ES256, OKP key type, P-256 curve", Ec2(kty: 1) },
        { "ES256, EC2 key type, Ed25519 curve", Ec2(crv: 6) },
        { "ES256, EC2 key type, P-384 curve", Ec2(crv: 2) },
        { "ES256 without x", Ec2(x: false) },
        { "ES256 without y", Ec2(y: false) },
        { "EdDSA, EC2 key type, Ed25519 curve", Okp(kty: 2) },
        { "EdDSA, OKP key type, X25519 curve", Okp(crv: 4) },
        { "EdDSA, OKP key type, P-256 curve", Okp(crv: 1) },
        { "EdDSA without x", Okp(x: false) },
        { "RS256, EC2 key type", Rsa(kty: 2) },
        { "RS256 without n", Rsa(n: false) },
        { "RS256 without e", Rsa(e: false) },
        { "PS256 (-37), not asked for", Rsa(alg: -37) },
        { "ES384 (-35) on a P-256 key", Ec2(alg: -35) },
        { "no algorithm", Key((1, 2), (-1, 1), (-2, new byte[32]), (-3, new byte[32])) },
        { "no key type", Key((3, -7), (-1, 1), (-2, new byte[32]), (-3, new byte[32])) },
        { "x as an integer", Key((1, 1), (3, -8), (-1, 6), (-2, 5)) },
        { "crv as a byte string", Key((1, 1), (3, -8), (-1, new byte[] { 6 }), (-2, new byte[32])) },
        { "an empty map", Key() },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void A_key_that_is_not_one_of_the_three_kinds_is_refused(string what, byte[] cose)
    {
        Assert.False(CoseJwk.TryToJwk(cose, out _, out _), what);
    }

    [Fact]
    public void The_algorithm_of_a_refused_key_is_still_reported()
    {
        Assert.False(CoseJwk.TryToJwk(Rsa(alg: -37), out _, out var algorithm));
        Assert.Equal(-37, algorithm);
    }

    public static TheoryData<string, byte[]> Unreadable => new()
    {
        // CborContentException: the map ends early.
        { "truncated in x", Ec2()[..^5] },
        { "truncated after the header", Ec2()[..1] },
        { "nothing", [] },
        { "an indefinite-length map without its break", IndefiniteEc2()[..^1] },
        // InvalidOperationException: not a map, or a label that is not an integer.
        { "an array", TestCbor.Encode(new object?[] { 1, 2 }) },
        { "a text label", Key(("kty", 2), (3, -7), (-1, 1), (-2, new byte[32]), (-3, new byte[32])) },
        // OverflowException: a label or a value outside the integer types read.
        { "a label beyond int", Key((1L << 40, 1), (1, 2), (3, -7), (-1, 1), (-2, new byte[32]), (-3, new byte[32])) },
        { "a value beyond long", Key((1, new TestCborRaw([0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), (3, -7)) },
    };

    [Theory]
    [MemberData(nameof(Unreadable))]
    public void Bytes_that_are_no_cose_key_are_refused_without_an_exception(string what, byte[] cose)
    {
        Assert.False(CoseJwk.TryToJwk(cose, out _, out var algorithm), what);
        Assert.Equal(0, algorithm);
    }

    private static byte[] IndefiniteEc2(params (int Label, string Text)[] extra)
    {
        var writer = new CborWriter(CborConformanceMode.Lax);
        writer.WriteStartMap(null);
        foreach (var (label, text) in extra)
        {
            writer.WriteInt32(label);
            writer.WriteTextString(text);
        }
        writer.WriteInt32(1);
        writer.WriteInt32(2);
        writer.WriteInt32(3);
        writer.WriteInt32(-7);
        writer.WriteInt32(-1);
        writer.WriteInt32(1);
        writer.WriteInt32(-2);
        writer.WriteByteString(new byte[32]);
        writer.WriteInt32(-3);
        writer.WriteByteString(new byte[32]);
        writer.WriteEndMap();
        return writer.Encode();
    }

    [Fact]
    public void A_key_in_an_indefinite_length_map_is_read()
    {
        var cose = IndefiniteEc2();
        Assert.Equal(0xbf, cose[0]); // RFC 8949 §3.2.2: major type 5, additional information 31

        Assert.True(CoseJwk.TryToJwk(cose, out var jwk, out var algorithm));
        Assert.Equal(new Jwk("EC", "P-256", Base64Url.Encode(new byte[32]), Base64Url.Encode(new byte[32])), jwk);
        Assert.Equal(-7, algorithm);
    }

    [Fact]
    public void Members_of_other_types_are_skipped_not_misread()
    {
        // A text kid (label 2) and a nested map before the key's own labels: each is skipped whole.
        using var authenticator = TestAuthenticator.Create("ES256");
        var cose = Key([(2, "a kid"), (-70000, TestCbor.Map((1, 2), (3, -257))), .. authenticator.CoseKeyMap().Entries]);

        Assert.True(CoseJwk.TryToJwk(cose, out var jwk, out var algorithm));
        Assert.Equal(authenticator.Jwk, jwk);
        Assert.Equal(TestAuthenticator.ES256, algorithm);
        Assert.True(CoseJwk.TryToJwk(IndefiniteEc2((2, "a kid"), (4, "another")), out _, out _));
    }
}
