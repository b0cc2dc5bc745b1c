namespace Assent.Protocol.Did;

/// <summary>did:web identifiers for Assent users (did:web method spec §3.2, port colon as %3A).</summary>
public static class DidWeb
{
    public const string Prefix = "did:web:";

    /// <summary><c>did:web:{host}[%3A{port}][:{path segments}]:users:{userId}</c> for an issuer URL.</summary>
    public static string ForUser(Uri issuer, string userId)
    {
        var host = issuer.IsDefaultPort ? issuer.Host : $"{issuer.Host}%3A{issuer.Port}";
        var segments = issuer.AbsolutePath.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var path = segments.Length == 0 ? "" : ":" + string.Join(':', segments);
        return $"{Prefix}{host}{path}:users:{userId}";
    }

    /// <summary>The URL the DID document is served at: every ':' becomes '/', then <c>/did.json</c>.</summary>
    /// <remarks>did:web requires https; plain http is used only for localhost so local setups resolve.</remarks>
    public static bool TryGetDocumentUrl(string did, out Uri? url)
    {
        url = null;
        if (!did.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }
        var parts = did[Prefix.Length..].Split(':');
        if (parts.Length < 1 || parts.Any(string.IsNullOrEmpty))
        {
            return false;
        }
        // did:web §3.2: a host name and an optional %3A port. Anything else ('/', '@', '\\', '?',
        // '#', dot segments) would make the URL name another host or path than the DID does.
        var host = Uri.UnescapeDataString(parts[0]);
        var colon = host.IndexOf(':');
        var hostName = colon < 0 ? host : host[..colon];
        var port = colon < 0 ? "0" : host[(colon + 1)..];
        if (hostName.Length == 0 || !hostName.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-') ||
            port.Length is 0 or > 5 || !port.All(char.IsAsciiDigit) || parts.Any(p => p is "." or ".."))
        {
            return false;
        }
        var scheme = hostName is "localhost" or "127.0.0.1" ? "http" : "https";
        var path = parts.Length == 1 ? "/.well-known" : "/" + string.Join('/', parts[1..].Select(Uri.EscapeDataString));
        return Uri.TryCreate($"{scheme}://{host}{path}/did.json", UriKind.Absolute, out url);
    }

    /// <summary>The user id of an Assent user DID (the last segment after <c>:users:</c>).</summary>
    public static bool TryGetUserId(string did, out string userId)
    {
        userId = "";
        var marker = did.LastIndexOf(":users:", StringComparison.Ordinal);
        if (!did.StartsWith(Prefix, StringComparison.Ordinal) || marker < 0)
        {
            return false;
        }
        userId = did[(marker + ":users:".Length)..];
        return userId.Length > 0 && !userId.Contains(':');
    }
}
