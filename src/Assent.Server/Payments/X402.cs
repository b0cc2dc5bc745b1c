using System.Numerics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Assent.Server.Payments;

/// <summary>
/// One payment requirement a paid server offered in its 402, as x402 writes it. <see cref="Requirement"/> is the
/// requirement's JSON exactly as offered (x402 v2 repeats it as <c>accepted</c> in the payment), <see cref="ResourceInfo"/>
/// the v2 <c>resource</c> object; <see cref="AmountAtomic"/> is the amount in the token's smallest unit, as sent.
/// </summary>
internal sealed record PaymentOffer(int X402Version, string Scheme, string Network, string AmountAtomic, string Asset, string PayTo, long MaxTimeoutSeconds,
    string? Eip712Name, string? Eip712Version, string? TransferMethod, string Resource, string? Description, JsonElement Requirement, JsonElement? ResourceInfo)
{
    public string Protocol => X402Version == 2 ? X402.ProtocolV2 : X402.ProtocolV1;

    /// <summary>How the offer reads in an error: what the agent can pass on to a human.</summary>
    public string Summary => $"{Scheme} {AmountAtomic} of {Asset} on {Network}";
}

/// <summary>
/// Reads the x402 payment requirements out of an HTTP 402 (docs/payments.md §2), exactly as the protocol's
/// specifications and reference packages (<c>x402</c> 1.x, <c>@x402/core</c> 2.x) write them:
/// <list type="bullet">
/// <item>v2: the <c>PAYMENT-REQUIRED</c> header, base64 of the JSON <c>{x402Version: 2, resource: {url, description?,
/// mimeType?}, accepts: [{scheme, network (CAIP-2), amount, asset, payTo, maxTimeoutSeconds, extra}]}</c>; the
/// payment goes back in <c>PAYMENT-SIGNATURE</c>.</item>
/// <item>v1: the response body <c>{x402Version: 1, accepts: [{scheme, network, maxAmountRequired, resource,
/// description, mimeType, payTo, maxTimeoutSeconds, asset, extra}]}</c>; the payment goes back in <c>X-PAYMENT</c>.</item>
/// </list>
/// Everything here comes from a server the agent does not control: every size is bounded and every field checked,
/// and a problem is reported as text for a 4xx, never thrown.
/// </summary>
internal static partial class X402
{
    public const string ProtocolV1 = "x402/v1";
    public const string ProtocolV2 = "x402/v2";
    public const string PaymentRequiredHeader = "PAYMENT-REQUIRED";
    public const string PaymentSignatureHeader = "PAYMENT-SIGNATURE";
    public const string PaymentResponseHeader = "PAYMENT-RESPONSE";
    public const string XPaymentHeader = "X-PAYMENT";
    public const string XPaymentResponseHeader = "X-PAYMENT-RESPONSE";
    public const string ExactScheme = "exact";

    /// <summary>EIP-3009 <c>transferWithAuthorization</c>, the x402 <c>exact</c> EVM default (<c>extra.assetTransferMethod</c> absent or this).</summary>
    public const string Eip3009 = "eip3009";

    /// <summary>Requirements read from one 402 at most: more is no offer anyone needs.</summary>
    public const int MaxOffers = 16;

    /// <summary>Characters of the <c>PAYMENT-REQUIRED</c> header at most (the reference servers' are well under 2 KiB).</summary>
    public const int MaxHeaderLength = 16 * 1024;

    /// <summary>A uint256 has at most 78 decimal digits.</summary>
    private const int MaxUint256Digits = 78;

    private const int MaxStringLength = 2048;

    [GeneratedRegex("^0x[0-9a-fA-F]{40}$", RegexOptions.CultureInvariant)]
    public static partial Regex EvmAddress();

    [GeneratedRegex("^[0-9]+$", RegexOptions.CultureInvariant)]
    private static partial Regex Digits();

    [GeneratedRegex("^[A-Za-z0-9+/]+={0,2}$", RegexOptions.CultureInvariant)]
    private static partial Regex Base64();

    /// <summary>The offers of an x402 v2 <c>PAYMENT-REQUIRED</c> header value, or why it cannot be read.</summary>
    public static (IReadOnlyList<PaymentOffer>? Offers, string? Problem) ReadV2(string header)
    {
        if (header.Length > MaxHeaderLength)
        {
            return (null, $"the {PaymentRequiredHeader} header is {header.Length} characters long; at most {MaxHeaderLength} are read");
        }
        header = header.Trim();
        if (header.Length == 0 || !Base64().IsMatch(header))
        {
            return (null, $"the {PaymentRequiredHeader} header is not base64 (x402 v2 sends base64 of a JSON object)");
        }
        byte[] json;
        try
        {
            json = Convert.FromBase64String(header);
        }
        catch (FormatException)
        {
            return (null, $"the {PaymentRequiredHeader} header is not valid base64");
        }
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException)
        {
            return (null, $"the {PaymentRequiredHeader} header is base64 of something that is not JSON");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("x402Version", out var v) || v.ValueKind != JsonValueKind.Number || v.GetRawText() != "2")
            {
                return (null, $"the {PaymentRequiredHeader} header does not hold an x402 v2 object (x402Version 2)");
            }
            if (!root.TryGetProperty("resource", out var resource) || resource.ValueKind != JsonValueKind.Object ||
                Str(resource, "url") is not { } url)
            {
                return (null, $"the {PaymentRequiredHeader} header has no resource.url");
            }
            return ReadAccepts(root, 2, resource.Clone(), url, Str(resource, "description"));
        }
    }

    /// <summary>The offers of an x402 v1 402 body, null with no problem when the body is no x402 v1 answer at all.</summary>
    public static (IReadOnlyList<PaymentOffer>? Offers, string? Problem) ReadV1(string? body)
    {
        if (string.IsNullOrWhiteSpace(body))
        {
            return (null, null);
        }
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException)
        {
            return (null, null);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("accepts", out _))
            {
                return (null, null);
            }
            if (!root.TryGetProperty("x402Version", out var v) || v.ValueKind != JsonValueKind.Number || v.GetRawText() != "1")
            {
                return (null, "the 402 body has accepts but is not x402 version 1 (x402Version 1)");
            }
            return ReadAccepts(root, 1, null, null, null);
        }
    }

    private static (IReadOnlyList<PaymentOffer>? Offers, string? Problem) ReadAccepts(JsonElement root, int version, JsonElement? resourceInfo, string? url,
        string? description)
    {
        if (!root.TryGetProperty("accepts", out var accepts) || accepts.ValueKind != JsonValueKind.Array || accepts.GetArrayLength() == 0)
        {
            return (null, "the 402 offers nothing: accepts must be a non-empty array");
        }
        if (accepts.GetArrayLength() > MaxOffers)
        {
            return (null, $"the 402 offers {accepts.GetArrayLength()} payment requirements; at most {MaxOffers} are read");
        }
        var offers = new List<PaymentOffer>();
        var i = 0;
        foreach (var a in accepts.EnumerateArray())
        {
            var where = $"accepts[{i++}]";
            if (a.ValueKind != JsonValueKind.Object)
            {
                return (null, $"{where} is not an object");
            }
            var amountField = version == 2 ? "amount" : "maxAmountRequired";
            string? scheme = Str(a, "scheme"), network = Str(a, "network"), amount = Str(a, amountField), asset = Str(a, "asset"), payTo = Str(a, "payTo");
            if (scheme is null || network is null || amount is null || asset is null || payTo is null)
            {
                return (null, $"{where} lacks one of scheme, network, {amountField}, asset, payTo (strings of at most {MaxStringLength} characters)");
            }
            if (!Digits().IsMatch(amount) || amount.Length > MaxUint256Digits)
            {
                return (null, $"{where}.{amountField} '{Shorten(amount)}' is not a whole number of the token's smallest unit within uint256");
            }
            if (!a.TryGetProperty("maxTimeoutSeconds", out var timeout) || !timeout.TryGetInt64(out var seconds) || seconds <= 0)
            {
                return (null, $"{where}.maxTimeoutSeconds must be a positive whole number of seconds");
            }
            string? name = null, ver = null, method = null;
            if (a.TryGetProperty("extra", out var extra) && extra.ValueKind == JsonValueKind.Object)
            {
                (name, ver, method) = (Str(extra, "name"), Str(extra, "version"), Str(extra, "assetTransferMethod"));
            }
            var resource = version == 2 ? url! : Str(a, "resource");
            if (resource is null)
            {
                return (null, $"{where} has no resource URL");
            }
            offers.Add(new PaymentOffer(version, scheme, network, amount, asset, payTo, seconds, name, ver, method, resource,
                version == 2 ? description : Str(a, "description"), a.Clone(), resourceInfo));
        }
        return (offers, null);
    }

    private static string? Str(JsonElement o, string name) =>
        o.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String && p.GetString() is { Length: > 0 and <= MaxStringLength } s ? s : null;

    internal static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "…";

    /// <summary>The header the paid request is retried with, for the offer's version.</summary>
    public static string RetryHeader(int version) => version == 2 ? PaymentSignatureHeader : XPaymentHeader;

    /// <summary>
    /// The x402 payment payload for a signed EIP-3009 authorization, base64 of its JSON as the reference client
    /// encodes it: v2 <c>{x402Version, payload, resource, accepted}</c> with the requirement repeated exactly as offered;
    /// v1 <c>{x402Version, scheme, network, payload}</c>. Numbers in the authorization are decimal strings.
    /// </summary>
    public static string PaymentHeaderValue(int version, JsonElement offer, Eip3009Authorization auth, string signature)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("x402Version", version);
            if (version == 1)
            {
                w.WriteString("scheme", offer.GetProperty("scheme").GetString());
                w.WriteString("network", offer.GetProperty("network").GetString());
            }
            w.WritePropertyName("payload");
            w.WriteStartObject();
            w.WriteString("signature", signature);
            w.WritePropertyName("authorization");
            w.WriteStartObject();
            w.WriteString("from", auth.From);
            w.WriteString("to", auth.To);
            w.WriteString("value", auth.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
            w.WriteString("validAfter", auth.ValidAfter.ToString(System.Globalization.CultureInfo.InvariantCulture));
            w.WriteString("validBefore", auth.ValidBefore.ToString(System.Globalization.CultureInfo.InvariantCulture));
            w.WriteString("nonce", auth.Nonce);
            w.WriteEndObject();
            w.WriteEndObject();
            if (version == 2)
            {
                w.WritePropertyName("resource");
                offer.GetProperty("resource").WriteTo(w);
                w.WritePropertyName("accepted");
                offer.GetProperty("accepted").WriteTo(w);
            }
            w.WriteEndObject();
        }
        return Convert.ToBase64String(buffer.ToArray());
    }
}

/// <summary>EIP-3009 <c>TransferWithAuthorization</c>: <see cref="Value"/> in the token's smallest unit; times in Unix seconds; a 32-byte hex nonce.</summary>
internal sealed record Eip3009Authorization(string From, string To, BigInteger Value, long ValidAfter, long ValidBefore, string Nonce);

/// <summary>Token amounts between the smallest unit a contract counts and the decimal a human reads, exactly (never through a float).</summary>
internal static class TokenAmount
{
    /// <summary><paramref name="atomic"/> as a decimal with the token's digits, trailing zeros cut down to two: 10000 with 6 decimals is "0.01".</summary>
    public static string ToHuman(BigInteger atomic, int decimals)
    {
        var digits = atomic.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(decimals + 1, '0');
        var whole = digits[..^decimals];
        var fraction = decimals == 0 ? "" : digits[^decimals..].TrimEnd('0');
        if (fraction.Length < Math.Min(2, decimals))
        {
            fraction = fraction.PadRight(Math.Min(2, decimals), '0');
        }
        return fraction.Length == 0 ? whole : whole + "." + fraction;
    }

    /// <summary>A decimal a human wrote (<c>0.50</c>) in the token's smallest unit, or null when it is no plain decimal within the token's digits.</summary>
    public static BigInteger? FromHuman(string text, int decimals)
    {
        text = text.Trim();
        var dot = text.IndexOf('.');
        var whole = dot < 0 ? text : text[..dot];
        var fraction = dot < 0 ? "" : text[(dot + 1)..];
        if (whole.Length == 0 && fraction.Length == 0 || whole.Length > Common.Money.MaxIntegerDigits || fraction.Length > decimals ||
            !whole.All(char.IsAsciiDigit) || !fraction.All(char.IsAsciiDigit) || (dot >= 0 && fraction.Length == 0))
        {
            return null;
        }
        return BigInteger.Parse((whole.Length == 0 ? "0" : whole) + fraction.PadRight(decimals, '0'), System.Globalization.CultureInfo.InvariantCulture);
    }
}
