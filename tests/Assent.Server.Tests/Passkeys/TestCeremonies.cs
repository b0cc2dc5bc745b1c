using Assent.Server.Common;
using Assent.Server.Identity;

namespace Assent.Server.Tests.Passkeys;

/// <summary>The ceremonies of a server at <see cref="TestAuthenticator.Origin"/>, attestation trusted or not.</summary>
internal static class TestCeremonies
{
    private static readonly Lazy<Task<PasskeyCeremonies>> Untrusted = new(() => PasskeyCeremonies.CreateAsync(Options(), default));

    public static AssentOptions Options(params string[] trustedRoots) => new()
    {
        Issuer = TestAuthenticator.Origin,
        WebAuthnAttestation = trustedRoots.Length == 0 ? WebAuthnAttestationModes.None : WebAuthnAttestationModes.Trusted,
        WebAuthnTrustedRoots = trustedRoots.Length == 0 ? null : trustedRoots,
    };

    /// <summary>The default: any attestation, none trusted.</summary>
    public static Task<PasskeyCeremonies> NoneAsync() => Untrusted.Value;

    /// <summary>Only attestations that chain to one of <paramref name="roots"/> (certificate files).</summary>
    public static Task<PasskeyCeremonies> TrustedAsync(params string[] roots) => PasskeyCeremonies.CreateAsync(Options(roots), default);
}
