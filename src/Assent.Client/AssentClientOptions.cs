namespace Assent.Client;

/// <summary>How an <see cref="AssentClient"/> reaches its server and authenticates as an agent (docs/sdk.md §2).</summary>
public sealed class AssentClientOptions
{
    /// <summary>docs/sdk.md §2: the server's base URL.</summary>
    public const string ServerVariable = "ASSENT_SERVER";

    /// <summary>docs/sdk.md §2: the agent's client_id.</summary>
    public const string ClientIdVariable = "ASSENT_CLIENT_ID";

    /// <summary>docs/sdk.md §2: the agent's client_secret.</summary>
    public const string ClientSecretVariable = "ASSENT_CLIENT_SECRET";

    /// <summary>docs/sdk.md §2: the DID (or handle) of the user to ask by default.</summary>
    public const string UserDidVariable = "ASSENT_USER_DID";

    /// <summary>The server's base URL, which is also its issuer (e.g. <c>http://localhost:8400</c>).</summary>
    public Uri? Server { get; set; }

    /// <summary>The agent's <c>client_id</c> (<c>agt_…</c>).</summary>
    public string? ClientId { get; set; }

    /// <summary>The agent's <c>client_secret</c> (<c>sec_…</c>), sent with <c>client_secret_basic</c>.</summary>
    public string? ClientSecret { get; set; }

    /// <summary>Whom to ask when <see cref="ApproveOptions.User"/> is not given: a user DID.</summary>
    public string? UserDid { get; set; }

    /// <summary>Whom to ask, as a handle (<c>alice</c>), when neither <see cref="ApproveOptions.User"/> nor <see cref="UserDid"/> is set.</summary>
    public string? LoginHint { get; set; }

    /// <summary>An HttpClient to use (its timeout must exceed 60 s for <c>Prefer: wait</c>); when null the client owns one.</summary>
    public HttpClient? HttpClient { get; set; }

    /// <summary>How long <see cref="AssentClient.ApproveAsync"/> waits for a decision when the call gives no timeout.</summary>
    public TimeSpan DefaultTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The longest single held token request (RFC 7240 <c>Prefer: wait</c>); docs/http-api.md §6.5 caps it at 60 s.</summary>
    public TimeSpan MaxWait { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>The clock for polling delays and timeouts.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Reads <c>ASSENT_SERVER</c>, <c>ASSENT_CLIENT_ID</c>, <c>ASSENT_CLIENT_SECRET</c> and <c>ASSENT_USER_DID</c>.</summary>
    /// <exception cref="ArgumentException">ASSENT_SERVER is set but is not an absolute http(s) URL.</exception>
    public static AssentClientOptions FromEnvironment()
    {
        var options = new AssentClientOptions
        {
            ClientId = Variable(ClientIdVariable),
            ClientSecret = Variable(ClientSecretVariable),
            UserDid = Variable(UserDidVariable),
        };
        if (Variable(ServerVariable) is { } server)
        {
            if (!Uri.TryCreate(server, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            {
                throw new ArgumentException($"{ServerVariable} must be an absolute http(s) URL (got '{server}')");
            }
            options.Server = uri;
        }
        return options;
    }

    private static string? Variable(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value.Trim() : null;
}

/// <summary>What one <see cref="AssentClient.ApproveAsync"/> call asks for.</summary>
public sealed class ApproveOptions
{
    /// <summary>Space-separated scopes besides <c>openid</c>, which is always added (CIBA Core §7.1).</summary>
    public string? Scope { get; set; }

    /// <summary>
    /// RFC 9396 <c>authorization_details</c>: a <see cref="System.Text.Json.JsonElement"/>, a JSON string, or any
    /// object System.Text.Json can serialise. A single object is sent as a one-element array.
    /// </summary>
    public object? Details { get; set; }

    /// <summary>Whom to ask (DID or handle); defaults to the client's configured user.</summary>
    public string? User { get; set; }

    /// <summary>How long to wait for the decision; defaults to <see cref="AssentClientOptions.DefaultTimeout"/>.</summary>
    public TimeSpan? Timeout { get; set; }

    /// <summary>
    /// <c>requested_expiry</c>: how long the request stays decidable. Defaults to <see cref="Timeout"/>
    /// when that is set, so nobody approves something the agent stopped waiting for; else the server default.
    /// </summary>
    public TimeSpan? Expiry { get; set; }

    /// <summary>RFC 8707 <c>resource</c>: becomes the token's <c>aud</c> instead of the client_id.</summary>
    public string? Resource { get; set; }
}
