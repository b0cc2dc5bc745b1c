using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Assent.Server.Payments;

/// <summary>
/// The operator's Stripe account for MPP <c>stripe</c> charges (docs/payments.md §5.2). Shared Payment Tokens are
/// minted with <see cref="SecretKey"/> on <see cref="PaymentMethod"/> (a saved card of the operator's); the key is a
/// secret: it is never logged, shown or returned. Environment: <c>Assent__Payments__Stripe__SecretKey</c>,
/// <c>…__PaymentMethod</c>, <c>…__ApiBase</c>.
/// </summary>
internal sealed class StripeOptions
{
    /// <summary>A secret or restricted key (<c>sk_live_…</c>, <c>rk_live_…</c>; <c>sk_test_…</c>/<c>rk_test_…</c> in test mode).</summary>
    public string? SecretKey { get; set; }

    /// <summary>The payment method the tokens draw on (<c>pm_…</c>).</summary>
    public string? PaymentMethod { get; set; }

    /// <summary>Stripe's API base URL; another one for a proxy or a local stand-in.</summary>
    public Uri ApiBase { get; set; } = new("https://api.stripe.com");

    /// <summary>How long one call to Stripe may take.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(15);

    public bool Configured => SecretKey is { Length: > 0 } && PaymentMethod is { Length: > 0 };

    /// <summary>Test-mode keys mint through Stripe's test helper, as the MPP reference client does.</summary>
    public bool TestMode => SecretKey is { } k && (k.StartsWith("sk_test_", StringComparison.Ordinal) || k.StartsWith("rk_test_", StringComparison.Ordinal));
}

/// <summary>A Shared Payment Token's limits: at most <see cref="MaxAmount"/> (smallest unit) of <see cref="Currency"/>, for one seller, until <see cref="ExpiresAt"/> (Unix seconds).</summary>
internal sealed record SptLimits(string PaymentMethod, string Currency, string MaxAmount, long ExpiresAt, string SellerNetworkId);

/// <summary>Stripe refused or could not be reached; the message is Stripe's (shortened) and holds no secret.</summary>
internal sealed class StripeException(string message) : Exception(message);

/// <summary>
/// Mints Shared Payment Tokens (Stripe's agentic-commerce API, in preview): exactly the request the MPP reference
/// client (<c>mppx</c>'s Stripe plugin) sends, against <see cref="StripeOptions.ApiBase"/>:
/// live keys <c>POST /v1/shared_payment/issued_tokens</c> with <c>seller_details[network_business_profile]</c>, test
/// keys <c>POST /v1/test_helpers/shared_payment/granted_tokens</c> with <c>seller_details[network_id]</c>; form fields
/// <c>payment_method</c>, <c>usage_limits[currency|max_amount|expires_at]</c>, and the preview <c>Stripe-Version</c>.
/// An <c>Idempotency-Key</c> makes minting for one payment return the same token however often it is asked.
/// </summary>
internal sealed partial class StripeClient(PaymentOptions options)
{
    /// <summary>The preview API version Shared Payment Tokens need (mppx <c>stripePreviewVersion</c>).</summary>
    public const string PreviewVersion = "2026-07-29.preview";

    private const int MaxAnswerBytes = 64 * 1024;

    [GeneratedRegex("^spt_[A-Za-z0-9_]{1,250}$", RegexOptions.CultureInvariant)]
    private static partial Regex TokenId();

    private readonly Lazy<HttpClient> _http = new(() => new HttpClient { Timeout = options.Stripe.Timeout });

    public async Task<string> MintAsync(SptLimits limits, string idempotencyKey, CancellationToken ct)
    {
        var stripe = options.Stripe;
        if (!stripe.Configured)
        {
            throw new StripeException("no Stripe account is configured (Assent:Payments:Stripe)");
        }
        var path = stripe.TestMode ? "v1/test_helpers/shared_payment/granted_tokens" : "v1/shared_payment/issued_tokens";
        var form = new Dictionary<string, string>
        {
            ["payment_method"] = limits.PaymentMethod,
            ["usage_limits[currency]"] = limits.Currency,
            ["usage_limits[max_amount]"] = limits.MaxAmount,
            ["usage_limits[expires_at]"] = limits.ExpiresAt.ToString(CultureInfo.InvariantCulture),
            [stripe.TestMode ? "seller_details[network_id]" : "seller_details[network_business_profile]"] = limits.SellerNetworkId,
        };
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(new Uri(stripe.ApiBase.AbsoluteUri.TrimEnd('/') + "/"), path))
        {
            Content = new FormUrlEncodedContent(form),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(stripe.SecretKey + ":")));
        request.Headers.Add("Stripe-Version", PreviewVersion);
        request.Headers.Add("Idempotency-Key", idempotencyKey);
        HttpResponseMessage response;
        try
        {
            response = await _http.Value.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            throw new StripeException($"Stripe is unreachable at {stripe.ApiBase.GetLeftPart(UriPartial.Authority)}");
        }
        using (response)
        {
            var body = await ReadBoundedAsync(response.Content, ct);
            string? id = null, message = null;
            try
            {
                using var doc = JsonDocument.Parse(body);
                var root = doc.RootElement;
                if (root.ValueKind == JsonValueKind.Object)
                {
                    id = root.TryGetProperty("id", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString() : null;
                    message = root.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.Object && e.TryGetProperty("message", out var m) &&
                        m.ValueKind == JsonValueKind.String ? m.GetString() : null;
                }
            }
            catch (JsonException)
            {
            }
            if (!response.IsSuccessStatusCode)
            {
                throw new StripeException($"Stripe refused to mint a Shared Payment Token ({(int)response.StatusCode}): {X402.Shorten(message ?? "no reason given")}");
            }
            return id is not null && TokenId().IsMatch(id) ? id : throw new StripeException("Stripe answered without a Shared Payment Token id");
        }
    }

    private static async Task<byte[]> ReadBoundedAsync(HttpContent content, CancellationToken ct)
    {
        await using var stream = await content.ReadAsStreamAsync(ct);
        using var copy = new MemoryStream();
        var buffer = new byte[8192];
        int read;
        while ((read = await stream.ReadAsync(buffer, ct)) > 0)
        {
            if (copy.Length + read > MaxAnswerBytes)
            {
                throw new StripeException($"Stripe's answer is larger than {MaxAnswerBytes} bytes");
            }
            copy.Write(buffer, 0, read);
        }
        return copy.ToArray();
    }
}
