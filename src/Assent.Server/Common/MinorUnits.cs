using System.Globalization;

namespace Assent.Server.Common;

/// <summary>
/// Canonical amounts (<see cref="Money.Parse"/>) as whole minor units and back: <c>"12.50"</c> USD is 1250. The text always
/// carries exactly the currency's digits, so dropping the point is exact; storage compares and adds these integers
/// (docs/policies.md §6), never floats.
/// </summary>
internal static class MinorUnits
{
    /// <summary>The amount in minor units; null when it does not fit a 64-bit integer.</summary>
    public static long? Of(string canonical, string currency) =>
        long.TryParse(canonical.Replace(".", "", StringComparison.Ordinal), NumberStyles.None, CultureInfo.InvariantCulture, out var minor) ? minor : null;

    /// <summary>Minor units as canonical decimal text of <paramref name="currency"/>.</summary>
    public static string Format(long minor, string currency)
    {
        var digits = Money.MinorUnits(currency) ?? 0;
        var text = Math.Abs(minor).ToString(CultureInfo.InvariantCulture).PadLeft(digits + 1, '0');
        var sign = minor < 0 ? "-" : "";
        return digits == 0 ? sign + text : sign + text[..^digits] + "." + text[^digits..];
    }
}
