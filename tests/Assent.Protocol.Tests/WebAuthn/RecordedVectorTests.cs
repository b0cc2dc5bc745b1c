using System.Security.Cryptography;
using System.Text;
using Assent.Protocol.Jose;
using Assent.Protocol.WebAuthn;

namespace Assent.Protocol.Tests.WebAuthn;

/// <summary>
/// An ES256 assertion generated once with a software P-256 key and frozen here, so the verifier
/// is checked against fixed bytes rather than only against what this code base itself produces.
/// </summary>
public sealed class RecordedVectorTests
{
    private const string CoseKeyHex =
        "a50102032620012158204d52eeca222eb282850b32b0733b9482284942161242459bd7aaf6b57687cc1122582090a69cfeb915099e50c1494045d3672683a710a32568ebb089aa5ea677f9a614";
    private const string JwkX = "TVLuyiIusoKFCzKwczuUgihJQhYSQkWb16r2tXaHzBE";
    private const string JwkY = "kKac_rkVCZ5QwUlARdNnJoOnEKMlaOuwiapepnf5phQ";
    // SHA-256("assent recorded vector")
    private const string ChallengeHex = "73b6e0a79491ae06f4a8e1ffc7193a3622a3055fe370dd11fe1405c726a92fd1";
    // SHA-256("assent.example") ‖ flags UP|UV ‖ signCount 5
    private const string AuthenticatorDataHex = "2303f98711928c6681b12bf3d43f4aab2d69eec7c87835b06ec8d02f516c54bd0500000005";
    private const string ClientDataJson =
        "{\"type\":\"webauthn.get\",\"challenge\":\"c7bgp5SRrgb0qOH_xxk6NiKjBV_jcN0R_hQFxyapL9E\",\"origin\":\"https://assent.example\",\"crossOrigin\":false}";
    private const string SignatureHex =
        "3046022100f2d4e6ea26a135ea1fef6e18c13f959182207d29ebba8a72c4a5ff2d219e92560221008a9488fac2e598e77a2dd372ddf5dfb2ef8ee2c64d72be0671f62d5f1f25f483";

    private static readonly string[] Origins = ["https://assent.example"];

    private static readonly Jwk Key = new("EC", "P-256", JwkX, JwkY);

    private static WebAuthnResult<VerifiedAssertion> Verify(byte[] authData, byte[] signature) =>
        WebAuthnVerifier.VerifyAssertionSignature(authData, Encoding.UTF8.GetBytes(ClientDataJson), signature, Key,
            Convert.FromHexString(ChallengeHex), "assent.example", Origins);

    [Fact]
    public void The_recorded_es256_assertion_verifies()
    {
        var result = Verify(Convert.FromHexString(AuthenticatorDataHex), Convert.FromHexString(SignatureHex));

        Assert.True(result.Succeeded, result.Error?.Detail);
        Assert.Equal(5u, result.Value.SignCount);
        Assert.Equal(AuthenticatorFlags.UserPresent | AuthenticatorFlags.UserVerified, result.Value.Flags);
    }

    [Fact]
    public void The_recorded_challenge_is_the_hash_the_client_data_carries()
    {
        Assert.Equal(ChallengeHex, Convert.ToHexStringLower(SHA256.HashData("assent recorded vector"u8)));
        Assert.Equal(SHA256.HashData("assent.example"u8), Convert.FromHexString(AuthenticatorDataHex)[..32]);
    }

    [Fact]
    public void The_recorded_jwk_is_the_recorded_cose_key()
    {
        // The COSE key's x (label -2) and y (label -3) are the 32 bytes after their headers 0x21 0x58 0x20 and 0x22 0x58 0x20.
        var cose = Convert.FromHexString(CoseKeyHex);
        Assert.Equal(Base64Url.Decode(JwkX), cose[10..42]);
        Assert.Equal(Base64Url.Decode(JwkY), cose[45..77]);
    }

    [Fact]
    public void The_recorded_assertion_with_a_raised_sign_count_fails_its_signature()
    {
        var authData = Convert.FromHexString(AuthenticatorDataHex);
        authData[^1] = 6;

        Assert.Equal(WebAuthnFailures.InvalidSignature, Verify(authData, Convert.FromHexString(SignatureHex)).Error?.Code);
    }
}
