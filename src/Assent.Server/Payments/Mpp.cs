using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Assent.Server.Payments;

/// <summary>
/// One MPP challenge (the <c>Payment</c> HTTP authentication scheme, docs/payments.md §2): its auth-params as sent.
/// <see cref="RequestRaw"/> is the <c>request</c> parameter exactly as offered (base64url of canonical JSON), repeated
/// unchanged in the credential because the challenge id is an HMAC over it; <see cref="Request"/> is its decoded JSON.
/// </summary>
internal sealed record MppChallenge(string Id, string Realm, string Method, string Intent, string RequestRaw, JsonElement Request, string? Description,
    string? Digest, string? Expires, DateTimeOffset? ExpiresAt, string? Opaque, string? Header)
{
    /// <summary>How the challenge reads in an error: what the agent can pass on to a human.</summary>
    public string Summary => $"MPP {Method}/{Intent} challenge {Mpp.Shorten(Id)}";
}

/// <summary>
/// The Machine Payments Protocol on the wire, as the protocol authors' reference implementation (npm <c>mppx</c>)
/// writes and reads it:
/// <list type="bullet">
/// <item>the 402 carries <c>WWW-Authenticate: Payment id="…", realm="…", method="evm", intent="charge",
/// request="base64url(JSON)", expires="RFC 3339", description="…", opaque="…"</c>, one challenge per method offered
/// (RFC 9110 §11.6.1: several challenges in one header, comma-separated);</item>
/// <item>the retry carries <c>Authorization: Payment base64url({challenge: {…the challenge's params, request as
/// sent…}, payload, source?})</c>, or the header the challenge names in <c>header</c>;</item>
/// <item>the paid answer carries <c>Payment-Receipt: base64url({method, reference, status: "success", timestamp})</c>.</item>
/// </list>
/// Everything here comes from a server the agent does not control: every size is bounded, every field checked, and a
/// problem is reported as text for a 4xx, never thrown.
/// </summary>
internal static partial class Mpp
{
    public const string Protocol = "mpp";
    public const string Scheme = "Payment";
    public const string WwwAuthenticateHeader = "WWW-Authenticate";
    public const string AuthorizationHeader = "Authorization";

    /// <summary>The credential header a server that keeps <c>Authorization</c> for its own users asks for (mppx <c>requiresAuth</c>).</summary>
    public const string PaymentAuthorizationHeader = "Payment-Authorization";

    public const string ReceiptHeader = "Payment-Receipt";
    public const string ChargeIntent = "charge";
    public const string EvmMethod = "evm";
    public const string StripeMethod = "stripe";

    /// <summary>The only EVM charge credential type (mppx <c>credentialTypes</c>): an EIP-3009 authorization.</summary>
    public const string AuthorizationCredential = "authorization";

    /// <summary>Challenges read from one 402 at most.</summary>
    public const int MaxChallenges = 16;

    /// <summary>Characters of the <c>WWW-Authenticate</c> value at most.</summary>
    public const int MaxHeaderLength = 16 * 1024;

    /// <summary>The <c>request</c> parameter's characters at most: the reference server refuses more (mppx <c>maxRequestParameterLength</c>).</summary>
    public const int MaxRequestLength = 16 * 1024;

    private const int MaxParamLength = 2048;

    [GeneratedRegex("^[a-z][a-z0-9:_-]{0,63}$", RegexOptions.CultureInvariant)]
    private static partial Regex MethodName();

    [GeneratedRegex("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$", RegexOptions.CultureInvariant)]
    private static partial Regex Token();

    [GeneratedRegex("^[A-Za-z0-9_-]*={0,2}$", RegexOptions.CultureInvariant)]
    private static partial Regex Base64Url();

    /// <summary>Whether a <c>WWW-Authenticate</c> value holds a <c>Payment</c> challenge at all.</summary>
    public static bool Offers(string wwwAuthenticate) => SchemeStarts(wwwAuthenticate).Count > 0;

    /// <summary>The <c>Payment</c> challenges of a <c>WWW-Authenticate</c> value (other schemes are passed over), or why they cannot be read.</summary>
    public static (IReadOnlyList<MppChallenge>? Challenges, string? Problem) Read(string header)
    {
        if (header.Length > MaxHeaderLength)
        {
            return (null, $"the {WwwAuthenticateHeader} header is {header.Length} characters long; at most {MaxHeaderLength} are read");
        }
        var starts = SchemeStarts(header);
        if (starts.Count == 0)
        {
            return (null, $"the {WwwAuthenticateHeader} header has no {Scheme} challenge");
        }
        if (starts.Count > MaxChallenges)
        {
            return (null, $"the 402 offers {starts.Count} MPP challenges; at most {MaxChallenges} are read");
        }
        var challenges = new List<MppChallenge>();
        for (var i = 0; i < starts.Count; i++)
        {
            var (parameters, problem) = Params(header, starts[i] + Scheme.Length);
            if (problem is not null)
            {
                return (null, $"challenge {i + 1}: {problem}");
            }
            var (challenge, invalid) = Challenge(parameters!);
            if (invalid is not null)
            {
                return (null, $"challenge {i + 1}: {invalid}");
            }
            challenges.Add(challenge!);
        }
        return (challenges, null);
    }

    private static (MppChallenge? Challenge, string? Problem) Challenge(Dictionary<string, string> p)
    {
        string? P(string name) => p.TryGetValue(name, out var v) ? v : null;
        string? id = P("id"), realm = P("realm"), method = P("method"), intent = P("intent"), request = P("request");
        if (id is not { Length: > 0 and <= 256 } || realm is not { Length: <= 256 } || method is null || intent is null || request is null)
        {
            return (null, "it lacks one of id, realm, method, intent, request (id and realm of at most 256 characters)");
        }
        if (!MethodName().IsMatch(method))
        {
            return (null, $"method '{Shorten(method)}' is not a lowercase method name");
        }
        if (!Token().IsMatch(intent))
        {
            return (null, $"intent '{Shorten(intent)}' is not a token");
        }
        if (request.Length > MaxRequestLength)
        {
            return (null, $"its request is {request.Length} characters long; at most {MaxRequestLength} are read");
        }
        if (request.Length == 0 || !Base64Url().IsMatch(request) || DecodeBase64Url(request) is not { } json)
        {
            return (null, "its request is not base64url (MPP sends base64url of a JSON object)");
        }
        JsonElement decoded;
        try
        {
            using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
            decoded = doc.RootElement.Clone();
        }
        catch (JsonException)
        {
            return (null, "its request is base64url of something that is not JSON");
        }
        if (decoded.ValueKind != JsonValueKind.Object)
        {
            return (null, "its request is not a JSON object");
        }
        string? description = P("description"), digest = P("digest"), expires = P("expires"), opaque = P("opaque"), header = P("header");
        foreach (var (name, value) in new[] { ("description", description), ("digest", digest), ("expires", expires), ("opaque", opaque) })
        {
            if (value is { Length: > MaxParamLength })
            {
                return (null, $"its {name} is longer than {MaxParamLength} characters");
            }
        }
        DateTimeOffset? expiresAt = null;
        if (expires is not null)
        {
            // RFC 3339 date-time, as the reference writes it (ISO 8601 with a zone).
            if (!DateTimeOffset.TryParse(expires, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at) ||
                !expires.Contains('T', StringComparison.Ordinal))
            {
                return (null, $"its expires '{Shorten(expires)}' is not an RFC 3339 date-time");
            }
            expiresAt = at;
        }
        if (header is not null && !Token().IsMatch(header))
        {
            return (null, $"its header '{Shorten(header)}' is not an HTTP field name");
        }
        if (opaque is not null && !Base64Url().IsMatch(opaque))
        {
            return (null, "its opaque is not base64url");
        }
        return (new MppChallenge(id, realm, method, intent, request, decoded, description, digest, expires, expiresAt, opaque, header), null);
    }

    /// <summary>
    /// Where each <c>Payment</c> challenge starts: the scheme name outside any quoted-string, at the start of the value or
    /// after a comma (RFC 9110 §11.6.1), followed by whitespace.
    /// </summary>
    private static List<int> SchemeStarts(string value)
    {
        var starts = new List<int>();
        var quoted = false;
        var escaped = false;
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (quoted)
            {
                if (escaped)
                {
                    escaped = false;
                }
                else if (c == '\\')
                {
                    escaped = true;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                continue;
            }
            if (c == '"')
            {
                quoted = true;
                continue;
            }
            if (i + Scheme.Length >= value.Length || !value.AsSpan(i, Scheme.Length).Equals(Scheme, StringComparison.OrdinalIgnoreCase) ||
                !char.IsWhiteSpace(value[i + Scheme.Length]))
            {
                continue;
            }
            var before = i - 1;
            while (before >= 0 && char.IsWhiteSpace(value[before]))
            {
                before--;
            }
            if (before < 0 || value[before] == ',')
            {
                starts.Add(i);
            }
        }
        return starts;
    }

    /// <summary>The auth-params after a scheme name (RFC 9110 §11.2), up to the next challenge; a parameter named twice is refused.</summary>
    private static (Dictionary<string, string>? Params, string? Problem) Params(string input, int i)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        while (i < input.Length)
        {
            while (i < input.Length && (char.IsWhiteSpace(input[i]) || input[i] == ','))
            {
                i++;
            }
            var start = i;
            while (i < input.Length && (char.IsAsciiLetterOrDigit(input[i]) || input[i] is '_' or '-'))
            {
                i++;
            }
            var key = input[start..i].ToLowerInvariant();
            while (i < input.Length && char.IsWhiteSpace(input[i]))
            {
                i++;
            }
            if (key.Length == 0 || i >= input.Length || input[i] != '=')
            {
                // The next challenge's scheme (or the end).
                break;
            }
            i++;
            while (i < input.Length && char.IsWhiteSpace(input[i]))
            {
                i++;
            }
            string value;
            if (i < input.Length && input[i] == '"')
            {
                var (text, next) = Quoted(input, i + 1);
                if (text is null)
                {
                    return (null, "an unterminated quoted-string");
                }
                (value, i) = (text, next);
            }
            else
            {
                var end = input.IndexOf(',', i);
                end = end < 0 ? input.Length : end;
                (value, i) = (input[i..end].Trim(), end);
            }
            if (!result.TryAdd(key, value))
            {
                return (null, $"the parameter {Shorten(key)} is given twice");
            }
        }
        return (result, null);
    }

    /// <summary>
    /// A quoted-string (RFC 9110 §5.6.4) from just after its opening quote. A backslash escapes the next character;
    /// <c>\uXXXX</c> is a character above Latin-1, as the reference serializer escapes them to keep the header a ByteString.
    /// </summary>
    private static (string? Text, int Next) Quoted(string input, int i)
    {
        var text = new StringBuilder();
        while (i < input.Length)
        {
            var c = input[i++];
            if (c == '"')
            {
                return (text.ToString(), i);
            }
            if (c != '\\')
            {
                text.Append(c);
                continue;
            }
            if (i >= input.Length)
            {
                break;
            }
            var escaped = input[i++];
            if (escaped == 'u' && i + 4 <= input.Length &&
                int.TryParse(input.AsSpan(i, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code))
            {
                text.Append((char)code);
                i += 4;
            }
            else
            {
                text.Append(escaped);
            }
        }
        return (null, i);
    }

    /// <summary>The bytes of base64url text (RFC 4648 §5, padding optional), or null.</summary>
    public static byte[]? DecodeBase64Url(string text)
    {
        var s = text.TrimEnd('=').Replace('-', '+').Replace('_', '/');
        if (s.Length % 4 == 1)
        {
            return null;
        }
        s = s.PadRight(s.Length + ((4 - (s.Length % 4)) % 4), '=');
        try
        {
            return Convert.FromBase64String(s);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>
    /// The EIP-3009 nonce of an MPP EVM charge: Keccak-256 of the UTF-8 of the challenge id followed by its realm, as
    /// lowercase 0x-hex (mppx <c>evm</c> <c>challengeHash</c>). The paid server recomputes it, so one challenge pays once.
    /// </summary>
    public static string ChallengeHash(string id, string realm) =>
        "0x" + Convert.ToHexStringLower(new Nethereum.Util.Sha3Keccack().CalculateHash(Encoding.UTF8.GetBytes(id + realm)));

    /// <summary>The challenge as the credential repeats it: every param as offered, <c>request</c> as the raw base64url text.</summary>
    public static void WriteEcho(Utf8JsonWriter w, MppChallenge c)
    {
        w.WriteStartObject();
        w.WriteString("id", c.Id);
        w.WriteString("realm", c.Realm);
        w.WriteString("method", c.Method);
        w.WriteString("intent", c.Intent);
        w.WriteString("request", c.RequestRaw);
        foreach (var (name, value) in new[] { ("description", c.Description), ("digest", c.Digest), ("expires", c.Expires), ("header", c.Header), ("opaque", c.Opaque) })
        {
            if (value is not null)
            {
                w.WriteString(name, value);
            }
        }
        w.WriteEndObject();
    }

    /// <summary>
    /// The credential header value: <c>Payment </c> and base64url (unpadded) of <c>{challenge, payload, source?}</c>,
    /// <paramref name="echo"/> being the challenge as <see cref="WriteEcho"/> wrote it.
    /// </summary>
    public static string Credential(JsonElement echo, Action<Utf8JsonWriter> payload, string? source)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WritePropertyName("challenge");
            echo.WriteTo(w);
            w.WritePropertyName("payload");
            payload(w);
            if (source is not null)
            {
                w.WriteString("source", source);
            }
            w.WriteEndObject();
        }
        return Scheme + " " + global::Assent.Protocol.Base64Url.Encode(buffer.ToArray());
    }

    /// <summary>The credential header a challenge asks for: <c>Authorization</c> unless it names <c>Payment-Authorization</c>; any other name is refused.</summary>
    public static string? CredentialHeader(MppChallenge c) =>
        c.Header is null || string.Equals(c.Header, AuthorizationHeader, StringComparison.OrdinalIgnoreCase) ? AuthorizationHeader
        : string.Equals(c.Header, PaymentAuthorizationHeader, StringComparison.OrdinalIgnoreCase) ? PaymentAuthorizationHeader
        : null;

    /// <summary>The fields of a <c>Payment-Receipt</c> value worth auditing, or null when it is no base64url JSON object.</summary>
    public static Dictionary<string, string>? ReadReceipt(string value)
    {
        if (!Base64Url().IsMatch(value) || DecodeBase64Url(value) is not { } json)
        {
            return null;
        }
        try
        {
            using var doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 8 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                return null;
            }
            var data = new Dictionary<string, string>();
            foreach (var field in new[] { "method", "reference", "status", "timestamp", "externalId" })
            {
                if (doc.RootElement.TryGetProperty(field, out var f) && f.ValueKind == JsonValueKind.String && f.GetString() is { Length: <= 128 } s)
                {
                    data[field] = s;
                }
            }
            return data;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    internal static string Shorten(string text) => X402.Shorten(text);
}
