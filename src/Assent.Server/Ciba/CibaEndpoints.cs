using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Assent.Protocol.Approvals;
using Assent.Protocol.Did;
using Assent.Protocol.OAuth;
using Assent.Server.Approvals;
using Assent.Server.Clients;
using Assent.Server.Hosting;
using Assent.Server.Http;
using Assent.Server.Storage;
using Assent.Server.Tokens;
using Assent.Server.Users;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Ciba;

/// <summary>CIBA Core §7: the backchannel authentication endpoint, read top to bottom as one flow.</summary>
internal static class CibaEndpoints
{
    public const string Path = "/oauth/bc-authorize";

    public static IEndpointRouteBuilder MapCiba(this IEndpointRouteBuilder app)
    {
        app.MapPost(Path, BackchannelAuthorizeAsync)
            .DisableAntiforgery()
            .WithSummary("CIBA backchannel authentication request (CIBA Core 1.0 §7)")
            .WithTags("OAuth");
        return app;
    }

    internal static async Task<Results<Ok<BcAuthorizeResponse>, OAuthError>> BackchannelAuthorizeAsync(
        HttpContext http, ClientAuthenticator clients, IdentityDirectory directory, ApprovalService approvals, AssentOptions options, CancellationToken ct)
    {
        var (read, client, error) = await clients.ReadFormAsync(http.Request, _ => false, ct);
        if (error is not null)
        {
            return error;
        }
        var form = read!;

        // §7.1: scope is required and, this being OpenID, must contain openid.
        var scope = form.Value(OAuthParameters.Scope);
        var requested = scope?.Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [];
        if (!requested.Contains(Scopes.OpenId))
        {
            return new OAuthError(OAuthErrors.InvalidScope, "scope must contain 'openid'");
        }
        var allowed = client!.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var notAllowed = requested.Where(s => s != Scopes.OpenId && !allowed.Contains(s)).ToList();
        if (notAllowed.Count > 0)
        {
            return new OAuthError(OAuthErrors.InvalidScope, $"this client may not ask for: {string.Join(' ', notAllowed)}");
        }
        var grantedScope = string.Join(' ', requested.Distinct());
        if (grantedScope.Length > AccessTokenBudget.MaxScopeLength)
        {
            return new OAuthError(OAuthErrors.InvalidScope, $"scope may be at most {AccessTokenBudget.MaxScopeLength} characters");
        }

        // §7.1: exactly one hint. Assent takes login_hint (a handle or a user DID).
        if (form.Value("login_hint_token") is not null || form.Value("id_token_hint") is not null)
        {
            return new OAuthError(OAuthErrors.InvalidRequest, "only login_hint is supported (a user handle or DID)");
        }
        var hint = form.Value(OAuthParameters.LoginHint);
        if (hint is null)
        {
            return new OAuthError(OAuthErrors.InvalidRequest, "login_hint is required: the approver's handle or DID");
        }
        var user = await FindUserAsync(hint, directory, options, ct);
        if (user is null)
        {
            // §13: the hint names no user this server knows.
            return new OAuthError(OAuthErrors.UnknownUserId, "login_hint names no user of this server");
        }

        var bindingMessage = form.Value(OAuthParameters.BindingMessage);
        if (bindingMessage is not null && BindingMessageProblem(bindingMessage) is { } refused)
        {
            return new OAuthError(OAuthErrors.InvalidBindingMessage, refused);
        }

        string? details = null;
        if (form.Value(OAuthParameters.AuthorizationDetails) is { } rawDetails)
        {
            if (!TryNormalizeDetails(rawDetails, options, out details, out var why))
            {
                return new OAuthError(OAuthErrors.InvalidAuthorizationDetails, why);
            }
        }

        var expiry = options.DefaultRequestExpiry;
        if (form.Value(OAuthParameters.RequestedExpiry) is { } rawExpiry)
        {
            if (!int.TryParse(rawExpiry, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || seconds < 1 ||
                seconds > options.MaxRequestExpiry.TotalSeconds)
            {
                return new OAuthError(OAuthErrors.InvalidRequest, $"requested_expiry must be a whole number of seconds from 1 to {(int)options.MaxRequestExpiry.TotalSeconds}");
            }
            expiry = TimeSpan.FromSeconds(seconds);
        }

        if (form.Value(OAuthParameters.ClientNotificationToken) is not null)
        {
            // §7.1: only ping and push clients send it; every Assent client is registered for poll.
            return new OAuthError(OAuthErrors.InvalidRequest, "client_notification_token is only for ping or push clients; this client uses poll");
        }

        var resource = form.Value(OAuthParameters.Resource);
        if (resource is not null && (resource.Length > AccessTokenBudget.MaxResourceLength || !Uri.TryCreate(resource, UriKind.Absolute, out var r) || r.Fragment.Length > 0))
        {
            // RFC 8707 §2: an absolute URI without a fragment. It becomes the token's aud.
            return new OAuthError("invalid_target", $"resource must be an absolute URI without a fragment, at most {AccessTokenBudget.MaxResourceLength} characters");
        }

        var created = await approvals.CreateAsync(ApprovalKinds.Ciba, client.Id, client.Name, user, grantedScope, bindingMessage, details, resource, expiry, ct);
        return TypedResults.Ok(new BcAuthorizeResponse(created.Handle, (int)expiry.TotalSeconds, (int)Math.Ceiling(options.PollInterval.TotalSeconds)));
    }

    internal static async Task<UserRecord?> FindUserAsync(string hint, IdentityDirectory directory, AssentOptions options, CancellationToken ct)
    {
        if (hint.StartsWith(DidWeb.Prefix, StringComparison.Ordinal))
        {
            return DidWeb.TryGetUserId(hint, out var userId) && DidWeb.ForUser(options.IssuerUri, userId) == hint
                ? await directory.FindUserAsync(userId, ct)
                : null;
        }
        return hint.Length <= 48 ? await directory.FindUserByHandleAsync(hint, ct) : null;
    }

    /// <summary>
    /// docs/concepts.md: at most 256 characters, shown verbatim, so nothing that could hide or reorder
    /// what the approver reads (<see cref="DisplayText"/>). Null when it may be shown, else why not.
    /// </summary>
    internal static string? BindingMessageProblem(string text) =>
        text.Length is 0 or > AccessTokenBudget.MaxBindingMessageLength
            ? $"binding_message must be 1 to {AccessTokenBudget.MaxBindingMessageLength} characters"
            : DisplayText.Problem(OAuthParameters.BindingMessage, text);

    internal static bool IsDisplayable(string text) => BindingMessageProblem(text) is null;

    /// <summary>JsonDocument's own limit; deeper input is refused as not JSON before the configured depth is measured.</summary>
    private const int MaxParseDepth = 64;

    /// <summary>
    /// RFC 9396 §2: a JSON array of objects, each with a string <c>type</c> this server knows. Within the
    /// configured entries, depth and normalized bytes, so that every token carrying it verifies
    /// (<see cref="AccessTokenBudget"/>), and with no member name or string that could hide or reorder
    /// what the approver reads (<see cref="DisplayText"/>).
    /// </summary>
    internal static bool TryNormalizeDetails(string raw, AssentOptions options, out string? normalized, out string why)
    {
        normalized = null;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(raw, new JsonDocumentOptions { MaxDepth = MaxParseDepth });
        }
        catch (JsonException)
        {
            why = $"authorization_details is not valid JSON (or nests deeper than {MaxParseDepth} levels)";
            return false;
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Array || root.GetArrayLength() == 0)
            {
                why = "authorization_details must be a non-empty JSON array";
                return false;
            }
            if (root.GetArrayLength() > options.MaxAuthorizationDetailsEntries)
            {
                why = $"authorization_details has {root.GetArrayLength()} entries; at most {options.MaxAuthorizationDetailsEntries} are allowed";
                return false;
            }
            if (Depth(root) is var depth && depth > options.MaxAuthorizationDetailsDepth)
            {
                why = $"authorization_details nests {depth} levels deep; at most {options.MaxAuthorizationDetailsDepth} are allowed (the outer array is level 1)";
                return false;
            }
            if (DisplayText.Problem(OAuthParameters.AuthorizationDetails, root) is { } hidden)
            {
                why = hidden;
                return false;
            }
            var buffer = new ArrayBufferWriter<byte>(raw.Length);
            using (var w = new Utf8JsonWriter(buffer))
            {
                root.WriteTo(w);
            }
            if (buffer.WrittenCount > options.MaxAuthorizationDetailsBytes)
            {
                why = $"authorization_details is {buffer.WrittenCount} bytes once normalized; at most {options.MaxAuthorizationDetailsBytes} are allowed";
                return false;
            }
            foreach (var item in root.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String)
                {
                    why = "every authorization_details entry must be an object with a string 'type'";
                    return false;
                }
                if (!options.AuthorizationDetailsTypes.Contains(type.GetString()!))
                {
                    why = $"unknown authorization_details type '{type.GetString()}'; supported: {string.Join(", ", options.AuthorizationDetailsTypes)}";
                    return false;
                }
            }
            normalized = System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
            why = "";
            return true;
        }
    }

    /// <summary>Nesting depth: an array or object is one level more than its deepest member; a scalar is none.</summary>
    private static int Depth(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Array => 1 + element.EnumerateArray().Select(Depth).DefaultIfEmpty(0).Max(),
        JsonValueKind.Object => 1 + element.EnumerateObject().Select(m => Depth(m.Value)).DefaultIfEmpty(0).Max(),
        _ => 0,
    };
}
