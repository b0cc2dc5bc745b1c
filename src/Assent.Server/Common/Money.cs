using System.Collections.Frozen;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Assent.Server.Common;

/// <summary>
/// Exact amounts in ISO 4217 currencies (docs/challenges.md §2.1, docs/policies.md §2). An amount is kept as the decimal text it was
/// given, checked and written with exactly the currency's minor-unit digits, and never passes through a float:
/// <c>12500</c> USD is twelve thousand five hundred dollars, <c>"125.00"</c> USD one hundred and twenty-five.
/// </summary>
/// <remarks>
/// The table is written here because .NET carries no ISO 4217 minor-unit data (RegionInfo knows symbols, not
/// exponents). Codes with no minor unit defined (precious metals, testing, "no currency") are not amounts and are refused.
/// </remarks>
internal static partial class Money
{
    /// <summary>The largest integer part accepted: 15 digits, beyond any real payment and within every ledger's range.</summary>
    public const int MaxIntegerDigits = 15;

    private static readonly FrozenSet<string> NoMinorUnits = FrozenSet.Create(
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF");

    private static readonly FrozenSet<string> ThreeMinorUnits = FrozenSet.Create("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND");

    private static readonly FrozenSet<string> FourMinorUnits = FrozenSet.Create("CLF", "UYW");

    /// <summary>ISO 4217 active codes with two minor-unit digits.</summary>
    private static readonly FrozenSet<string> TwoMinorUnits = FrozenSet.Create(
        "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN",
        "BWP", "BYN", "BZD", "CAD", "CDF", "CHE", "CHF", "CHW", "CNY", "COP", "COU", "CRC", "CUP", "CVE", "CZK", "DKK", "DOP", "DZD", "EGP", "ERN",
        "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IRR", "JMD",
        "KES", "KGS", "KHR", "KPW", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR",
        "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "QAR", "RON",
        "RSD", "RUB", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT",
        "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "USD", "USN", "UYU", "UZS", "VED", "VES", "WST", "XCD", "XCG", "YER", "ZAR", "ZMW", "ZWG");

    /// <summary>The currency's minor-unit digits, or null when it is not an ISO 4217 currency code.</summary>
    public static int? MinorUnits(string code) =>
        TwoMinorUnits.Contains(code) ? 2 : NoMinorUnits.Contains(code) ? 0 : ThreeMinorUnits.Contains(code) ? 3 : FourMinorUnits.Contains(code) ? 4 : null;

    [GeneratedRegex("^(?<int>[0-9]+)(\\.(?<frac>[0-9]+))?$", RegexOptions.CultureInvariant)]
    private static partial Regex Decimal();

    /// <summary>
    /// The amount as canonical text with the currency's digits (<c>"12500.00"</c>), or a message saying what is wrong.
    /// <paramref name="amount"/> is a JSON number (its text as sent) or a string.
    /// </summary>
    public static (string? Amount, string? Problem) Parse(JsonElement amount, string? currency)
    {
        if (currency is null)
        {
            return (null, "currency is required with an amount: an ISO 4217 code such as USD");
        }
        if (MinorUnits(currency) is not { } digits)
        {
            return (null, $"currency '{currency}' is not an ISO 4217 currency code (e.g. USD, EUR, JPY)");
        }
        var text = amount.ValueKind switch
        {
            JsonValueKind.Number => amount.GetRawText(),
            JsonValueKind.String => amount.GetString()!.Trim(),
            _ => null,
        };
        if (text is null)
        {
            return (null, "amount must be a decimal number or a string holding one, e.g. \"125.00\"");
        }
        if (text.StartsWith('-'))
        {
            return (null, "amount must not be negative");
        }
        var m = Decimal().Match(text);
        if (!m.Success)
        {
            return (null, $"amount '{Shorten(text)}' is not a plain decimal: write digits with an optional '.' and fraction, e.g. 125.00 (no exponent, sign or separators)");
        }
        var integer = m.Groups["int"].Value.TrimStart('0');
        var fraction = m.Groups["frac"].Value.TrimEnd('0');
        if (integer.Length > MaxIntegerDigits)
        {
            return (null, $"amount is too large: at most {MaxIntegerDigits} digits before the decimal point");
        }
        if (fraction.Length > digits)
        {
            return (null, digits == 0
                ? $"{currency} has no minor unit: the amount must be a whole number"
                : $"{currency} has {digits} decimal places: '{Shorten(text)}' has more");
        }
        var whole = integer.Length == 0 ? "0" : integer;
        return (digits == 0 ? whole : whole + "." + fraction.PadRight(digits, '0'), null);
    }

    /// <summary>
    /// Orders two canonical amounts (as <see cref="Parse"/> writes them) exactly: as <see cref="decimal"/>, which holds
    /// every amount of at most 15 + 4 digits without rounding; never as a float (docs/policies.md §2).
    /// </summary>
    public static int Compare(string canonicalA, string canonicalB) =>
        decimal.Parse(canonicalA, System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture)
            .CompareTo(decimal.Parse(canonicalB, System.Globalization.NumberStyles.AllowDecimalPoint, System.Globalization.CultureInfo.InvariantCulture));

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "…";
}
