using System.Net;
using System.Security.Cryptography;
using System.Text;
using Assent.Protocol;
using Microsoft.AspNetCore.Http;

namespace Assent.Server.Authorize;

/// <summary>
/// The pages of the sign-in flow, written by the server: small, no CDN, one inline script and style allowed by a
/// per-response CSP nonce. Every value from a request is HTML-encoded.
/// </summary>
internal static class AuthorizePages
{
    private const string Style = """
        body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#111}
        main{max-width:420px;margin:8vh auto;padding:24px;background:#fff;border-radius:12px;box-shadow:0 1px 4px #0002}
        h1{font-size:1.3rem;margin:0 0 12px}input{width:100%;box-sizing:border-box;padding:12px;font-size:1rem;margin:8px 0}
        button{width:100%;padding:12px;font-size:1rem;border:0;border-radius:8px;background:#1f5fd6;color:#fff;margin:6px 0;cursor:pointer}
        button.secondary{background:#e6e8ec;color:#111}.err{color:#b00020}.muted{color:#555;font-size:.9rem}ul{padding-left:20px}
        @media (prefers-color-scheme:dark){body{background:#111;color:#eee}main{background:#1c1c1e}.muted{color:#aaa}button.secondary{background:#333;color:#eee}}
        """;

    /// <summary>
    /// The passkey sign-in: conditional mediation (WebAuthn L3 §5.1.4.1, autofill on an input with
    /// <c>autocomplete="username webauthn"</c>) started at once, and a button for the modal prompt. Each
    /// navigator.credentials call gets an AbortSignal: the button aborts the pending conditional request first.
    /// The first request's options come with the page (<paramref name="first"/>: a stateless challenge, nothing written), a
    /// later one fetches its own. The assertion is posted with <paramref name="continueUrl"/>, the same authorization
    /// request: the sign-in answers the client's redirect with the code when nothing more is needed (docs/http-api.md
    /// §17.2), and the page goes there, or else on to <paramref name="continueUrl"/>.
    /// </summary>
    public static IResult SignIn(HttpResponse response, string clientName, string continueUrl, string? loginHint, Identity.RequestOptions first, string formAction)
    {
        var nonce = Nonce();
        var body = $$"""
            <h1>Sign in to {{E(clientName)}}</h1>
            <p class="muted">with your Assent passkey</p>
            <form id="signin" data-continue="{{E(continueUrl)}}" data-challenge="{{E(first.Challenge)}}" data-rp-id="{{E(first.RpId)}}" data-timeout="{{first.Timeout}}">
              <input id="username" name="username" autocomplete="username webauthn" placeholder="Your passkey" value="{{E(loginHint ?? "")}}" aria-label="Your passkey">
              <button type="submit" id="passkey">Sign in with a passkey</button>
            </form>
            <p id="error" class="err" role="alert"></p>
            <p class="muted">No passkey yet? Ask your Assent administrator for an invite, then enrol a device at <a href="{{EndpointPaths.App}}">/app</a>.</p>
            <script nonce="{{nonce}}">
            (() => {
              const b64d = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4)), (c) => c.charCodeAt(0));
              const b64e = (buf) => { let s = ''; for (const x of new Uint8Array(buf)) s += String.fromCharCode(x);
                return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''); };
              const form = document.getElementById('signin');
              const error = document.getElementById('error');
              let pending = null;
              let first = { challenge: form.dataset.challenge, rpId: form.dataset.rpId, timeout: Number(form.dataset.timeout) };
              async function options() {
                let o = first;
                first = null;
                if (!o) {
                  const r = await fetch('{{EndpointPaths.WebAuthn}}/signin/options', { method: 'POST', credentials: 'same-origin' });
                  if (!r.ok) throw new Error('could not start the sign-in (' + r.status + ')');
                  o = await r.json();
                }
                return { challenge: b64d(o.challenge), rpId: o.rpId, timeout: o.timeout, userVerification: 'required', allowCredentials: [] };
              }
              async function signIn(mediation) {
                if (pending) pending.abort();
                const controller = new AbortController();
                pending = controller;
                const publicKey = await options();
                const request = { publicKey, signal: controller.signal };
                if (mediation) request.mediation = mediation;
                const cred = await navigator.credentials.get(request);
                if (!cred) return;
                const r = cred.response;
                const answer = await fetch('{{EndpointPaths.WebAuthn}}/signin', { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' },
                  body: JSON.stringify({ credential_id: b64e(cred.rawId), authenticator_data: b64e(r.authenticatorData),
                    client_data_json: b64e(r.clientDataJSON), signature: b64e(r.signature), continue: form.dataset.continue }) });
                const p = await answer.json().catch(() => ({}));
                if (!answer.ok) throw new Error(p.detail || p.title || 'the passkey was not accepted');
                location.assign(p.redirect_to || form.dataset.continue);
              }
              const report = (e) => { if (e && e.name !== 'AbortError') error.textContent = e.message || String(e); };
              form.addEventListener('submit', (ev) => { ev.preventDefault(); error.textContent = ''; signIn(null).catch(report); });
              if (window.PublicKeyCredential && PublicKeyCredential.isConditionalMediationAvailable) {
                PublicKeyCredential.isConditionalMediationAvailable().then((yes) => { if (yes) signIn('conditional').catch(report); });
              }
            })();
            </script>
            """;
        return Html(response, "Sign in", body, nonce, formAction, StatusCodes.Status200OK);
    }

    /// <summary>First-use consent (OpenID Connect Core §3.1.2.4): the client, the user, the scopes; allow or deny.</summary>
    public static IResult Consent(HttpResponse response, string clientName, string handle, IEnumerable<string> scopes,
        IEnumerable<KeyValuePair<string, string>> carried, string csrf, string formAction)
    {
        var nonce = Nonce();
        var hidden = new StringBuilder();
        foreach (var (key, value) in carried)
        {
            hidden.Append(CultureInvariant($"<input type=\"hidden\" name=\"{E(key)}\" value=\"{E(value)}\">"));
        }
        var items = string.Join("", scopes.Select(s => $"<li>{E(Describe(s))}</li>"));
        var body = $"""
            <h1>{E(clientName)} wants to sign you in</h1>
            <p>Signed in as <strong>{E(handle)}</strong>. It will receive:</p>
            <ul>{items}</ul>
            <form method="post" action="{AuthorizePaths.Consent}">
              {hidden}
              <input type="hidden" name="{AuthorizeParameters.Csrf}" value="{E(csrf)}">
              <button type="submit" name="{AuthorizeParameters.Decision}" value="allow">Allow</button>
              <button type="submit" name="{AuthorizeParameters.Decision}" value="deny" class="secondary">Deny</button>
            </form>
            """;
        return Html(response, "Allow sign-in", body, nonce, formAction, StatusCodes.Status200OK);
    }

    /// <summary>RP-Initiated Logout 1.0 §2: without a valid id_token_hint the user confirms the logout.</summary>
    public static IResult ConfirmLogout(HttpResponse response, IEnumerable<KeyValuePair<string, string>> carried, string csrf, string formAction)
    {
        var hidden = string.Join("", carried.Select(p => $"<input type=\"hidden\" name=\"{E(p.Key)}\" value=\"{E(p.Value)}\">"));
        var body = $"""
            <h1>Sign out of Assent?</h1>
            <form method="post" action="{AuthorizePaths.EndSession}">
              {hidden}
              <input type="hidden" name="{AuthorizeParameters.Csrf}" value="{E(csrf)}">
              <button type="submit">Sign out</button>
            </form>
            """;
        return Html(response, "Sign out", body, Nonce(), formAction, StatusCodes.Status200OK);
    }

    public static IResult Message(HttpResponse response, string title, string text, int status = StatusCodes.Status200OK) =>
        Html(response, title, $"<h1>{E(title)}</h1><p>{E(text)}</p>", Nonce(), "'none'", status);

    /// <summary>An error that must not go to the client's redirect URI (RFC 6749 §4.1.2.1): shown here, with the code for support.</summary>
    public static IResult Error(HttpResponse response, string error, string description) =>
        Html(response, "Sign-in request refused",
            $"<h1>This sign-in request cannot be completed</h1><p class=\"err\">{E(description)}</p><p class=\"muted\">error: {E(error)}. Go back to the application and try again.</p>",
            Nonce(), "'none'", StatusCodes.Status400BadRequest);

    private static string Describe(string scope) => scope switch
    {
        "openid" => "who you are: your Assent user id (a DID)",
        "profile" => "your handle",
        SignInScopes.OfflineAccess => "to keep you signed in while you are away, until you revoke it in Assent",
        _ => scope,
    };

    /// <summary>
    /// OAuth 2.0 Form Post Response Mode §2: the response parameters as hidden fields of a form posted to the redirect
    /// URI by the page's one script (allowed by the CSP nonce), or by the button when scripts are off.
    /// </summary>
    public static IResult FormPost(HttpResponse response, string redirectUri, IEnumerable<KeyValuePair<string, string>> parameters, string formAction)
    {
        var nonce = Nonce();
        var fields = string.Concat(parameters.Select(p => $"<input type=\"hidden\" name=\"{E(p.Key)}\" value=\"{E(p.Value)}\">"));
        var body = $"""
            <h1>Returning to the application…</h1>
            <form method="post" action="{E(redirectUri)}">{fields}<noscript><button type="submit">Continue</button></noscript></form>
            <script nonce="{nonce}">document.forms[0].submit();</script>
            """;
        return Html(response, "Returning", body, nonce, formAction, StatusCodes.Status200OK);
    }

    private static IResult Html(HttpResponse response, string title, string body, string nonce, string formAction, int status)
    {
        // The page's own inline script and style only; fetches to ourselves; forms to ourselves and, for the
        // consent form whose answer redirects, the client's origin (browsers apply form-action to that redirect).
        response.Headers.ContentSecurityPolicy =
            $"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; img-src 'self'; base-uri 'none'; " +
            $"form-action {formAction}; frame-ancestors 'none'";
        response.Headers.CacheControl = "no-store";
        // The page's URL carries the request's state and nonce: no Referer to other origins. Not no-referrer: under it
        // browsers send "Origin: null" with the page's own form posts, which the Origin check must be able to read.
        response.Headers["Referrer-Policy"] = "same-origin";
        response.Headers.XContentTypeOptions = "nosniff";
        var html = $"""
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
            <title>{E(title)} · Assent</title><style nonce="{nonce}">{Style}</style></head>
            <body><main>
            {body}
            </main></body></html>
            """;
        return TypedResults.Content(html, "text/html; charset=utf-8", Encoding.UTF8, status);
    }

    private static string CultureInvariant(FormattableString s) => FormattableString.Invariant(s);

    private static string Nonce() => Base64Url.Encode(RandomNumberGenerator.GetBytes(16));

    private static string E(string s) => WebUtility.HtmlEncode(s);
}
