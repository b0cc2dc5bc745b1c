using System.Security.Cryptography;
using System.Text;
using Assent.Protocol.WebAuthn;

namespace Assent.Protocol.Tests.WebAuthn;

public sealed class AuthenticatorDataTests
{
    [Fact]
    public void Plain_assertion_data_parses_into_hash_flags_and_big_endian_count()
    {
        using var authenticator = TestAuthenticator.Create("EdDSA");
        var flags = AuthenticatorFlags.UserPresent | AuthenticatorFlags.BackupEligible | AuthenticatorFlags.BackupState;

        Assert.True(AuthenticatorData.TryParse(authenticator.AuthenticatorData(flags, signCount: 0x01020304), out var data, out var error), error?.Detail);

        Assert.Equal(SHA256.HashData(Encoding.UTF8.GetBytes(TestAuthenticator.RpId)), data.RpIdHash);
        Assert.Equal(flags, data.Flags);
        Assert.Equal(0x01020304u, data.SignCount);
        Assert.Null(data.AttestedCredential);
        Assert.Null(data.Extensions);
    }

    [Fact]
    public void Attested_credential_data_and_extensions_are_both_read()
    {
        using var authenticator = TestAuthenticator.Create("ES256");
        var extensions = TestCbor.Encode(TestCbor.Map(("credProps", TestCbor.Map(("rk", true)))));

        Assert.True(AuthenticatorData.TryParse(authenticator.AuthenticatorData(attested: true, extensions: extensions), out var data, out var error),
            error?.Detail);

        Assert.Equal(TestAuthenticator.Aaguid, data.AttestedCredential?.Aaguid);
        Assert.Equal(authenticator.CredentialId, data.AttestedCredential?.CredentialId);
        Assert.Equal(authenticator.CoseKey, data.AttestedCredential?.PublicKeyCose);
        Assert.Equal(extensions, data.Extensions);
    }

    [Fact]
    public void Extensions_that_are_not_a_map_are_refused()
    {
        using var authenticator = TestAuthenticator.Create("ES256");

        Assert.False(AuthenticatorData.TryParse(authenticator.AuthenticatorData(extensions: [0x80]), out _, out var error));
        Assert.Equal(WebAuthnFailures.MalformedAuthenticatorData, error.Code);
    }

    [Fact]
    public void Data_shorter_than_the_fixed_part_is_refused()
    {
        Assert.False(AuthenticatorData.TryParse(new byte[36], out _, out var error));
        Assert.Equal(WebAuthnFailures.MalformedAuthenticatorData, error.Code);
    }

    [Fact]
    public void A_credential_id_longer_than_1023_bytes_is_refused()
    {
        var data = new byte[37 + 16 + 2 + 1024 + 1];
        data[32] = (byte)(AuthenticatorFlags.UserPresent | AuthenticatorFlags.AttestedCredentialData);
        data[37 + 16] = 0x04;

        Assert.False(AuthenticatorData.TryParse(data, out _, out var error));
        Assert.Equal(WebAuthnFailures.MalformedAuthenticatorData, error.Code);
    }

    [Fact]
    public void A_credential_key_that_is_not_a_cose_key_is_refused_as_an_invalid_key()
    {
        using var authenticator = TestAuthenticator.Create("ES256");

        Assert.False(AuthenticatorData.TryParse(authenticator.AuthenticatorData(attested: true, coseKey: [0xa0]), out _, out var error));
        Assert.Equal(WebAuthnFailures.InvalidKey, error.Code);
    }
}
