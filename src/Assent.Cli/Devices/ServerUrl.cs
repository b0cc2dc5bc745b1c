namespace Assent.Cli.Devices;

internal static class ServerUrl
{
    /// <summary>An absolute http(s) URL without query or fragment, or a usage error.</summary>
    public static Uri Parse(string text, string option)
    {
        if (!Uri.TryCreate(text.Trim(), UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") ||
            uri.Query.Length > 0 || uri.Fragment.Length > 0)
        {
            throw CliException.Usage($"{option} must be an http(s) URL such as http://localhost:8400 (got '{text}')");
        }
        return uri;
    }

    public static string Format(Uri uri) => uri.AbsoluteUri.TrimEnd('/');

    public static bool SameServer(string stored, Uri server) =>
        Uri.TryCreate(stored, UriKind.Absolute, out var s) && Uri.Compare(s, server, UriComponents.SchemeAndServer | UriComponents.Path,
            UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;
}
