using System.Security.Cryptography;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Did;
using Assent.Protocol.Jose;
using Assent.Protocol.WebAuthn;
using Assent.Server.Approvals;
using Assent.Server.Authentication;
using Assent.Server.Authorize;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Passkeys;

/// <summary>
/// The passkey ceremonies (docs/http-api.md §12.2, §12.3): registration with an invite or from a signed-in session, and
/// sign-in to the web app. Both use single-use server challenges: registration's kept in the store, sign-in's stateless
/// (<see cref="SignInChallenges"/>) and recorded as spent at their first use. What a signed-in user then
/// does (pending requests, decisions, devices) is served by the approver endpoints, for the device API alike.
/// </summary>
internal static class PasskeyEndpoints
{
    /// <summary>RS256 with a 2048-bit key: a 256-byte signature, what <c>AssentOptions.MaxWebAuthnEvidenceBytes</c> leaves room for.</summary>
    private const int MaxRsaModulusBytes = 256;

    public static IEndpointRouteBuilder MapPasskeys(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(EndpointPaths.WebAuthn).WithTags("Passkeys").DisableAntiforgery();
        group.MapPost("/register/options", RegistrationOptionsAsync).RequireRateLimiting(CreationLimit.Policy).WithSummary("Options for navigator.credentials.create: with an invite code, or for the signed-in user");
        group.MapPost("/register", RegisterAsync).WithSummary("Finish a passkey registration (attestation none or packed self); opens a session");
        group.MapPost("/signin/options", SignInOptions).RequireRateLimiting(CreationLimit.Policy).WithSummary("Options for navigator.credentials.get to sign in to the web app");
        group.MapPost("/signin", SignInAsync).WithSummary("Sign in with a passkey assertion; sets the session cookie, and with continue (the sign-in page's authorization request) may answer the client's redirect with the code");
        group.MapPost("/signout", SignOutAsync).WithSummary("End the web session");
        group.MapGet("/session", SessionAsync).WithSummary("The signed-in user and their passkeys (session cookie)");
        return app;
    }

    internal static async Task<IResult> RegistrationOptionsAsync(HttpContext http, IUserStore users, IDeviceStore devices, PasskeyCeremonies passkeys,
        AttemptLimiter limiter, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var read = await RequestBodies.ReadJsonAsync(http.Request, PasskeyJson.Default.RegistrationOptionsRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        UserRecord? user;
        byte[]? inviteHash = null;
        if (!string.IsNullOrWhiteSpace(read.Value!.Code))
        {
            if (read.Value.Code.Length > 64)
            {
                return Problem.BadRequest("the enrolment code is unknown, already used or expired; ask for a new invite");
            }
            // Wrong invite codes are limited per address, shared with Ed25519 enrolment (docs/deployment.md §10).
            var policy = AttemptPolicy.ForEnrolmentCodes(options.Limits);
            var byAddress = new AttemptKey(policy.Key("address", ClientAddress.Of(http)), null);
            if (limiter.Refused(byAddress) is { } limited)
            {
                return Problem.TooManyRequests("too many wrong enrolment codes from here; try again later", limited.RetryAfter);
            }
            inviteHash = Ids.Hash(Ids.NormalizeInviteCode(read.Value.Code));
            user = await users.FindInviteUserAsync(inviteHash, now, ct);
            if (user is null)
            {
                await limiter.FailedAsync(policy, [byAddress], ct);
                return Problem.BadRequest("the enrolment code is unknown, already used or expired; ask for a new invite");
            }
        }
        else
        {
            // Without an invite, only for the signed-in user (the web session scheme, which also checks the Origin).
            var signedIn = await Approver.AuthenticateAsync(http, AssentSchemes.WebSession);
            if (signedIn.Refused is not null)
            {
                return signedIn.Refused is "cross-origin request refused" ? Problem.Forbidden(signedIn.Refused)
                    : Problem.Unauthorized("sign in with a passkey, or give an invite code");
            }
            user = signedIn.Approver!.User;
        }
        // WebAuthn L3 §5.4.3: excludeCredentials keeps one authenticator from registering twice.
        var exclude = (await devices.ListAsync(user.Id, ct))
            .Where(d => d.Active && d.CredentialId is not null)
            .Select(d => d.CredentialId!);
        var creation = passkeys.RegistrationOptions(user.Id, user.Handle, exclude);
        await devices.CreateChallengeAsync(new WebAuthnChallengeRecord(SHA256.HashData(creation.Challenge), ChallengePurposes.Register, user.Id, inviteHash,
            now + (long)options.WebAuthnChallengeLifetime.TotalMilliseconds), now, ct);
        return TypedResults.Json(creation.Options, WebAuthnOptionsJson.Default.CreationOptions);
    }

    internal static async Task<IResult> RegisterAsync(HttpContext http, IDeviceStore devices, WebSessions sessions, PasskeyCeremonies passkeys,
        AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var read = await RequestBodies.ReadJsonAsync(http.Request, PasskeyJson.Default.RegistrationRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var body = read.Value!;
        if (!Base64Url.TryDecode(body.ClientDataJson ?? "", out var clientDataJson) || clientDataJson.Length == 0 ||
            !Base64Url.TryDecode(body.AttestationObject ?? "", out var attestationObject) || attestationObject.Length == 0)
        {
            return Problem.BadRequest("client_data_json and attestation_object are required, base64url");
        }
        var name = string.IsNullOrWhiteSpace(body.Name) ? "passkey" : body.Name.Trim();
        // The user is shown the name when choosing a passkey to revoke: nothing in it may hide or reorder text.
        if (Naming.NameProblem("name", name) is { } refused)
        {
            return Problem.BadRequest(refused);
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var challenge = await TakeChallengeAsync(devices, clientDataJson, ChallengePurposes.Register, now, ct);
        if (challenge is null)
        {
            return Problem.BadRequest("the registration challenge is unknown, already used or expired; start again");
        }
        var verified = await passkeys.VerifyRegistrationAsync(challenge.Value.Record.UserId ?? "", attestationObject, clientDataJson, challenge.Value.Challenge, ct);
        if (!verified.Succeeded)
        {
            return Problem.BadRequest($"the passkey registration was refused: {verified.Error.Code}: {verified.Error.Detail}");
        }
        var credential = verified.Value;
        // Every decision's assertion becomes a token's evidence, capped so that the token verifies (AccessTokenBudget):
        // an RSA key above 2048 bits signs more than that room holds, so it could register but never approve.
        if (credential.PublicKey.N is { } modulus && Base64Url.TryDecode(modulus, out var n) && n.Length > MaxRsaModulusBytes)
        {
            return Problem.BadRequest($"this passkey holds a {n.Length * 8}-bit RSA key; Assent takes RSA passkeys of at most {MaxRsaModulusBytes * 8} bits " +
                                      "(their signatures must fit a token's evidence): use an EdDSA or ES256 passkey");
        }
        if (await devices.FindByCredentialIdAsync(credential.CredentialId, ct) is not null)
        {
            return Problem.Conflict("this passkey is already registered");
        }
        var jwk = JsonSerializer.Serialize(credential.PublicKey, JwkJson.Default.Jwk);
        var deviceId = Ids.New("dev");
        DeviceRecord Device(string userId) => new(deviceId, userId, DeviceKinds.WebAuthn, name, jwk, credential.CredentialId, credential.SignCount, now, null);
        AuditEvent Audit(string userId) => new(AuditTypes.DeviceEnrolled, userId, deviceId, deviceId, new Dictionary<string, string>
        {
            ["kind"] = DeviceKinds.WebAuthn, ["name"] = name, ["alg"] = credential.Algorithm.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["attestation"] = credential.AttestationFormat, ["aaguid"] = credential.Aaguid.ToString(),
            ["attestation_trusted"] = credential.AttestationTrusted ? "true" : "false",
        });
        UserRecord? user;
        DeviceRecord device;
        if (challenge.Value.Record.InviteHash is { } inviteHash)
        {
            // The invite is spent in the same transaction that stores the passkey, as for an Ed25519 enrolment.
            device = Device(challenge.Value.Record.UserId!);
            user = await devices.TryEnrollAsync(inviteHash, now, u => Device(u.Id), (u, _) => Audit(u.Id), ct);
            if (user is null)
            {
                return Problem.BadRequest("the enrolment code is unknown, already used or expired; ask for a new invite");
            }
        }
        else
        {
            var current = (await Approver.AuthenticateAsync(http, AssentSchemes.WebSession)).Approver;
            if (current is null || current.User.Id != challenge.Value.Record.UserId)
            {
                return Problem.Unauthorized("adding a passkey needs the session that asked for the options");
            }
            user = current.User;
            device = Device(user.Id);
            await devices.AddAsync(device, Audit(user.Id), ct);
        }
        if (challenge.Value.Record.InviteHash is not null)
        {
            await sessions.OpenAsync(http.Response, device, ct);
        }
        return TypedResults.Created($"{EndpointPaths.WebAuthn}/devices/{deviceId}",
            new RegistrationResponse(deviceId, user.Id, DidWeb.ForUser(options.IssuerUri, user.Id), user.Handle));
    }

    internal static IResult SignInOptions(SignInChallenges challenges)
    {
        // Stateless: nothing is written here; the challenge carries its own expiry and MAC, and is spent when used (SignInChallenges).
        return TypedResults.Json(challenges.IssueOptions(), WebAuthnOptionsJson.Default.RequestOptions);
    }

    internal static async Task<IResult> SignInAsync(HttpContext http, IDeviceStore devices, ISessionStore store, IdentityDirectory directory, WebSessions sessions,
        SignInChallenges challenges, ApprovalService approvals, PasskeyCeremonies passkeys, AuthorizationCodes codes, AssentOptions options, TimeProvider time,
        CancellationToken ct)
    {
        var read = await RequestBodies.ReadJsonAsync(http.Request, PasskeyJson.Default.AssertionRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        if (!TryDecodeAssertion(read.Value!, out var credentialId, out var authenticatorData, out var clientDataJson, out var signature))
        {
            return Problem.BadRequest("credential_id, authenticator_data, client_data_json and signature are required, base64url");
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var challengeRefused = Problem.Unauthorized("the sign-in challenge is unknown, already used or expired; start again");
        // No signature is checked for a challenge this server is not waiting on. A stateless challenge (SignInChallenges) is
        // checked by its MAC and expiry, then looked up among the spent ones; one kept in the store (issued before stateless
        // challenges, or for another ceremony) is looked up without being spent. Either is spent in the transaction that
        // opens the session (one commit: challenge, counter, session), or below when the sign-in is refused: either way by
        // its first use. A replayed assertion is thus refused for its challenge, and never audited as a counter regression.
        if (ChallengeOf(clientDataJson) is not { } challenge)
        {
            return challengeRefused;
        }
        var challengeHash = SHA256.HashData(challenge);
        var stateless = challenges.Open(challenge, now);
        if (stateless is not null && await store.IsChallengeSpentAsync(challengeHash, ct))
        {
            return challengeRefused;
        }
        if (stateless is null)
        {
            var purpose = await store.FindLiveChallengePurposeAsync(challengeHash, now, ct);
            if (purpose is null)
            {
                return challengeRefused;
            }
            if (purpose != ChallengePurposes.SignIn)
            {
                await devices.TryTakeChallengeAsync(challengeHash, now, ct);
                return challengeRefused;
            }
        }
        Task Spend() => stateless is { } expires ? store.TrySpendChallengeAsync(challengeHash, expires, now, ct) : devices.TryTakeChallengeAsync(challengeHash, now, ct);
        var device = await devices.FindByCredentialIdAsync(credentialId, ct);
        if (device is null || !device.Active || device.Kind != DeviceKinds.WebAuthn)
        {
            await Spend();
            return Problem.Unauthorized("this passkey is not registered here, or it was revoked");
        }
        var verified = await passkeys.VerifyAssertionAsync(new StoredPasskey(credentialId, device.PublicJwk, device.SignCount),
            authenticatorData, clientDataJson, signature, challenge, ct);
        if (!verified.Succeeded)
        {
            await Spend();
            if (verified.Error.Code == WebAuthnFailures.SignCountRegression)
            {
                await approvals.AuditSignCountRegressionAsync(device, null, verified.Error.Detail, ct);
            }
            return Problem.Unauthorized($"the passkey assertion was refused: {verified.Error.Code}: {verified.Error.Detail}");
        }
        var user = await directory.FindUserAsync(device.UserId, ct);
        if (user is null)
        {
            await Spend();
            return Problem.Unauthorized("the passkey's user no longer exists");
        }
        var (outcome, session) = await sessions.SignInAsync(http.Response, device, challengeHash, stateless, verified.Value.SignCount, ct);
        switch (outcome)
        {
            case PasskeySignInOutcome.ChallengeRefused:
                // Spent meanwhile by another request with the same assertion, or expired since the look-up.
                return challengeRefused;
            case PasskeySignInOutcome.CounterRefused:
                await approvals.AuditSignCountRegressionAsync(device, null, $"signature counter {verified.Value.SignCount} did not advance", ct);
                return Problem.Unauthorized($"the passkey assertion was refused: {WebAuthnFailures.SignCountRegression}");
        }
        // From the sign-in page of an authorization request that needs nothing more: its code now, not after another round trip.
        var redirectTo = await codes.AfterSignInAsync(read.Value!.Continue, session!, user, ct);
        return TypedResults.Json(await SessionViewAsync(devices, options, user, session!, ct) with { RedirectTo = redirectTo }, PasskeyJson.Default.SessionView);
    }

    internal static async Task<IResult> SignOutAsync(HttpRequest request, HttpResponse response, WebSessions sessions, CancellationToken ct)
    {
        if (!sessions.FromOwnOrigin(request))
        {
            return Problem.Forbidden("cross-origin request refused");
        }
        await sessions.CloseAsync(request, response, ct);
        return TypedResults.NoContent();
    }

    internal static async Task<IResult> SessionAsync(HttpContext http, IDeviceStore devices, AssentOptions options, CancellationToken ct)
    {
        var current = (await Approver.AuthenticateAsync(http, AssentSchemes.WebSession)).Approver;
        http.Response.Headers.CacheControl = "no-store";
        return current is null
            ? Problem.Unauthorized("not signed in")
            : TypedResults.Json(await SessionViewAsync(devices, options, current.User, current.Session!, ct), PasskeyJson.Default.SessionView);
    }

    private static async Task<SessionView> SessionViewAsync(IDeviceStore devices, AssentOptions options, UserRecord user, WebSessionRecord session, CancellationToken ct)
    {
        var passkeys = (await devices.ListAsync(user.Id, ct))
            .Where(d => d.Active && d.Kind == DeviceKinds.WebAuthn && d.CredentialId is not null)
            .ToList();
        var credentials = passkeys.Select(d => Base64Url.Encode(d.CredentialId!)).ToList();
        var own = passkeys.FirstOrDefault(d => d.Id == session.DeviceId);
        return new SessionView(user.Id, DidWeb.ForUser(options.IssuerUri, user.Id), user.Handle, session.DeviceId, session.ExpiresAt / 1000, options.RpId, credentials,
            own is null ? null : Base64Url.Encode(own.CredentialId!));
    }

    /// <summary>Reads the challenge out of the client data and spends it; null when unknown, spent, expired or for another ceremony.</summary>
    private static async Task<(WebAuthnChallengeRecord Record, byte[] Challenge)?> TakeChallengeAsync(IDeviceStore devices, byte[] clientDataJson, string purpose,
        long now, CancellationToken ct)
    {
        if (ChallengeOf(clientDataJson) is not { } challenge)
        {
            return null;
        }
        var record = await devices.TryTakeChallengeAsync(SHA256.HashData(challenge), now, ct);
        return record is null || record.Purpose != purpose ? null : (record, challenge);
    }

    /// <summary>The challenge the client data names; null when the client data does not parse or the challenge cannot be one of ours.</summary>
    private static byte[]? ChallengeOf(byte[] clientDataJson) =>
        ClientData.TryParse(clientDataJson, out var clientData, out _) && clientData.Challenge.Length is > 0 and <= 64 ? clientData.Challenge : null;

    private static bool TryDecodeAssertion(AssertionRequest body, out byte[] credentialId, out byte[] authenticatorData, out byte[] clientDataJson, out byte[] signature)
    {
        authenticatorData = clientDataJson = signature = [];
        return Base64Url.TryDecode(body.CredentialId ?? "", out credentialId) && credentialId.Length is > 0 and <= WebAuthnVerifier.MaxCredentialIdLength &&
               Base64Url.TryDecode(body.AuthenticatorData ?? "", out authenticatorData) && authenticatorData.Length > 0 &&
               Base64Url.TryDecode(body.ClientDataJson ?? "", out clientDataJson) && clientDataJson.Length > 0 &&
               Base64Url.TryDecode(body.Signature ?? "", out signature) && signature.Length > 0;
    }
}
