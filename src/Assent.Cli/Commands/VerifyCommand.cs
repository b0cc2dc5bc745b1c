using System.CommandLine;
using Assent.Cli.Devices;
using Assent.Cli.Output;
using Assent.Client;
using Assent.Client.Verification;

namespace Assent.Cli.Commands;

/// <summary>
/// <c>assent verify TOKEN</c>: every check of docs/tokens.md, as a relying party would run them; only an
/// approval passes, and its device evidence is checked unless <c>--no-evidence</c> says otherwise (docs/cli.md).
/// </summary>
internal static class VerifyCommand
{
    public static Command Build()
    {
        var token = new Argument<string>("TOKEN") { Description = "The approval's access token (as assent approve prints it), or - to read it from stdin" };
        var issuer = new Option<string?>("--issuer") { Description = "The issuer to trust, exactly as in iss (default: $ASSENT_SERVER)" };
        var scope = new Option<string?>("--scope") { Description = "Scopes the token must carry, space-separated" };
        var audience = new Option<string?>("--audience") { Description = "The audience the token must name" };
        var evidence = new Option<bool>("--evidence") { Description = "Check the device's signature against the approver's DID document (the default)" };
        var noEvidence = new Option<bool>("--no-evidence") { Description = "Skip the device signature check and trust the issuer's signature alone" };
        var json = StoreOptions.Json();
        var command = new Command("verify", """
            Verify an approval token: signature, issuer, type, time, that a human decided it (txn, act, approver DID), audience/scope, and the device's signature against the approver's DID document (skip it with --no-evidence). A token issued without a human decision (client_credentials, a CLI session) is invalid. Exit 0 valid, 1 invalid (the reason is printed), 69 issuer or DID document unreachable.
            Example: assent approve "Deploy" --scope approve:action | assent verify - --issuer http://localhost:8400 --scope approve:action
            """)
        {
            token, issuer, scope, audience, evidence, noEvidence, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var trusted = parse.GetValue(issuer) ?? Environment.GetEnvironmentVariable(AssentClientOptions.ServerVariable)
                ?? throw CliException.Usage($"which issuer do you trust? pass --issuer URL or set {AssentClientOptions.ServerVariable}");
            var issuerUrl = ServerUrl.Format(ServerUrl.Parse(trusted, "--issuer"));
            var (wantScope, wantAudience) = (parse.GetValue(scope), parse.GetValue(audience));
            if (wantScope is null && wantAudience is null)
            {
                throw CliException.Usage("say what the token must be good for: --scope S and/or --audience A");
            }
            if (parse.GetValue(evidence) && parse.GetValue(noEvidence))
            {
                throw CliException.Usage("--evidence and --no-evidence contradict each other; the evidence is checked by default");
            }
            var checkEvidence = !parse.GetValue(noEvidence);
            var text = parse.GetValue(token)!;
            if (text == "-")
            {
                text = await Console.In.ReadToEndAsync(ct);
            }
            text = text.Trim();
            var asJson = parse.GetValue(json);
            using var verifier = new TokenVerifier(issuerUrl);
            try
            {
                var verified = await verifier.VerifyAsync(text, new VerifyOptions
                {
                    Scope = wantScope,
                    Audience = wantAudience,
                    CheckEvidence = checkEvidence,
                }, ct);
                if (asJson)
                {
                    await Terminal.WriteJsonAsync(new VerifyOutput(true, Sub: verified.Subject, ClientId: verified.ClientId, Scope: verified.Scope,
                        Aud: verified.Audiences, BindingMessage: verified.BindingMessage, AuthorizationDetails: verified.AuthorizationDetails,
                        Txn: verified.Transaction, Jti: verified.JwtId, Exp: verified.ExpiresAt.ToUnixTimeSeconds(), EvidenceDevice: verified.EvidenceDevice),
                        CliJson.Default.VerifyOutput);
                    return ExitCodes.Success;
                }
                await Console.Out.WriteLineAsync($"""
                    valid
                      approver: {verified.Subject}
                      agent:    {verified.ClientId}
                      scope:    {verified.Scope}
                      message:  {Terminal.Visible(verified.BindingMessage ?? "(none)")}
                      expires:  {verified.ExpiresAt:u}
                    """ + (verified.EvidenceDevice is { } device ? $"\n  evidence: signed by {device}" : "\n  evidence: not checked (--no-evidence)"));
                return ExitCodes.Success;
            }
            catch (TokenVerificationException e)
            {
                if (asJson)
                {
                    await Terminal.WriteJsonAsync(new VerifyOutput(false, e.Code, e.Message), CliJson.Default.VerifyOutput);
                }
                await Console.Error.WriteLineAsync($"invalid: {e.Code}: {e.Message}");
                return e.Code == TokenErrors.JwksUnavailable ? ExitCodes.Unavailable : ExitCodes.DeniedOrInvalid;
            }
        }));
        return command;
    }
}
