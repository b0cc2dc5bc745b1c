using System.IO.Compression;
using System.Reflection;
using System.Security.Cryptography;
using Assent.Protocol;
using Assent.Server.Common;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Net.Http.Headers;
using QRCoder;

namespace Assent.Server.App;

/// <summary>
/// The approver web app (docs/http-api.md §12.1, <c>/app</c>): one page, one script, one stylesheet, embedded in
/// the server assembly; no CDN and no build step. <c>/app</c>, <c>/app/enroll</c> and
/// <c>/device</c> serve the same page, which picks its view from the path.
/// </summary>
internal static class AppEndpoints
{
    // Nothing but our own origin: scripts, styles, images (the QR, the icon), fetch and EventSource, the manifest
    // and the service worker.
    private const string ContentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; manifest-src 'self'; worker-src 'self'; " +
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    /// <summary>An embedded file, with its Brotli and gzip forms made once at start (each with its own ETag, RFC 9110 §8.8.3).</summary>
    private sealed record Asset(byte[] Bytes, string ContentType, string ETag, byte[] Brotli, byte[] Gzip);

    private static readonly Asset Page = Load("app.html", "text/html; charset=utf-8");
    private static readonly Asset Landing = Load("index.html", "text/html; charset=utf-8");
    private static readonly Asset Script = Load("app.js", "text/javascript; charset=utf-8");
    // The vault's code (docs/vault.md §7), fetched by app.js only when the vault is used: not part of the first load.
    private static readonly Asset VaultScript = Load("vault.js", "text/javascript; charset=utf-8");
    private static readonly Asset Style = Load("app.css", "text/css; charset=utf-8");
    private static readonly Asset Manifest = Load("manifest.webmanifest", "application/manifest+json; charset=utf-8");
    private static readonly Asset Icon = Load("icon.svg", "image/svg+xml; charset=utf-8");
    private static readonly Asset Worker = Load("sw.js", "text/javascript; charset=utf-8");

    public static IEndpointRouteBuilder MapApp(this IEndpointRouteBuilder app, AssentOptions options)
    {
        // The server's root: what this is, and links to the app, discovery and the API (docs/http-api.md §12.1).
        app.MapGet("/", (HttpContext http) => Serve(http, Landing)).ExcludeFromDescription();
        app.MapGet(EndpointPaths.App, (HttpContext http) => Serve(http, Page)).ExcludeFromDescription();
        app.MapGet(EndpointPaths.Enroll, (HttpContext http) => Serve(http, Page)).ExcludeFromDescription();
        app.MapGet(EndpointPaths.Verification, (HttpContext http) => Serve(http, Page)).WithSummary("RFC 8628 verification page: enter the CLI's user code").WithTags("Web app");
        app.MapGet(EndpointPaths.App + "/app.js", (HttpContext http) => Serve(http, Script)).ExcludeFromDescription();
        app.MapGet(EndpointPaths.App + "/app.css", (HttpContext http) => Serve(http, Style)).ExcludeFromDescription();
        app.MapGet(EndpointPaths.App + "/vault.js", (HttpContext http) => Serve(http, VaultScript)).ExcludeFromDescription();
        // Installable (Web App Manifest): the manifest, its icon (also the site's favicon) and a service worker that
        // keeps the shell for offline starts. The worker lives under /app/ but controls /app itself, which the
        // Service-Worker-Allowed header permits (Service Workers §4.1, "max scope").
        app.MapGet(EndpointPaths.App + "/manifest.webmanifest", (HttpContext http) => Serve(http, Manifest)).ExcludeFromDescription();
        app.MapGet(EndpointPaths.App + "/icon.svg", (HttpContext http) => Serve(http, Icon)).ExcludeFromDescription();
        app.MapGet("/favicon.ico", (HttpContext http) => Serve(http, Icon)).ExcludeFromDescription();
        app.MapGet(EndpointPaths.App + "/sw.js", (HttpContext http) =>
        {
            http.Response.Headers["Service-Worker-Allowed"] = EndpointPaths.App;
            return Serve(http, Worker);
        }).ExcludeFromDescription();
        app.MapGet(EndpointPaths.Enroll + "/qr.svg", (string? code) => EnrollQr(options, code))
            .WithSummary("The invite link as a QR code (SVG), to scan with a phone").WithTags("Web app");
        return app;
    }

    /// <summary>The QR encodes the enrolment link itself, so a phone camera opens the page with the code filled in.</summary>
    private static IResult EnrollQr(AssentOptions options, string? code)
    {
        if (string.IsNullOrWhiteSpace(code) || code.Length > 64 || !code.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
        {
            return Problem.BadRequest("code must be an invite code");
        }
        var link = Admin.AdminOperations.EnrollLink(options, code);
        using var generator = new QRCodeGenerator();
        using var data = generator.CreateQrCode(link, QRCodeGenerator.ECCLevel.M);
        var svg = new SvgQRCode(data).GetGraphic(4);
        return Results.Text(svg, "image/svg+xml; charset=utf-8");
    }

    private static IResult Serve(HttpContext http, Asset asset)
    {
        var headers = http.Response.Headers;
        var (bytes, coding) = Choose(http.Request, asset);
        var etag = coding is null ? asset.ETag : asset.ETag.Insert(asset.ETag.Length - 1, "-" + coding);
        headers.CacheControl = "no-cache";
        headers.Vary = HeaderNames.AcceptEncoding;
        headers.ETag = etag;
        headers.XContentTypeOptions = "nosniff";
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers["Referrer-Policy"] = "no-referrer";
        if (http.Request.Headers.IfNoneMatch.ToString() == etag)
        {
            return Results.StatusCode(StatusCodes.Status304NotModified);
        }
        if (coding is not null)
        {
            headers.ContentEncoding = coding;
        }
        return Results.Bytes(bytes, asset.ContentType);
    }

    /// <summary>Brotli, else gzip, when the client accepts it (RFC 9110 §12.5.3; q=0 refuses); else the bytes as they are.</summary>
    private static (byte[] Bytes, string? Coding) Choose(HttpRequest request, Asset asset)
    {
        var accepted = request.GetTypedHeaders().AcceptEncoding
            .Where(e => e.Quality is null or > 0).Select(e => e.Value.Value).ToHashSet(StringComparer.OrdinalIgnoreCase);
        return accepted.Contains("br") ? (asset.Brotli, "br") : accepted.Contains("gzip") ? (asset.Gzip, "gzip") : (asset.Bytes, null);
    }

    private static Asset Load(string name, string contentType)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Assent.App." + name)
            ?? throw new InvalidOperationException($"embedded web asset {name} is missing");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        var bytes = copy.ToArray();
        return new Asset(bytes, contentType, new EntityTagHeaderValue("\"" + Base64Url.Encode(SHA256.HashData(bytes)[..12]) + "\"").ToString(),
            Compress(bytes, s => new BrotliStream(s, CompressionLevel.SmallestSize)), Compress(bytes, s => new GZipStream(s, CompressionLevel.SmallestSize)));
    }

    private static byte[] Compress(byte[] bytes, Func<Stream, Stream> encoder)
    {
        using var output = new MemoryStream();
        using (var stream = encoder(output))
        {
            stream.Write(bytes);
        }
        return output.ToArray();
    }
}
