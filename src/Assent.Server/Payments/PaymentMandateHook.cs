using System.Numerics;
using System.Security.Cryptography;
using System.Text.Json;
using Assent.Protocol.Approvals;
using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;
using Assent.Server.Approvals;
using Assent.Server.Authentication;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Assent.Server.Payments;

/// <summary>
/// What a payment asks of a spending mandate (docs/policies.md §6, docs/payments.md §3): its amount in the ISO currency
/// its asset is worth, exactly, and its payee (the <c>pay_to</c> address). The request it belongs to is then covered, or
/// not, by <see cref="ApprovalService"/> in the transaction that stores it.
/// </summary>
internal static class PaymentMandateHook
{
    /// <summary>
    /// The charge in the mandate currency's minor units: <paramref name="atomic"/> of an asset with <c>Decimals</c> digits,
    /// rounded up to the currency's minor unit when finer (0.001 USDC is charged 0.01 USD), so a mandate never lets more
    /// go than it states. Compared as integers, never through a float. Null when the asset is worth no ISO currency
    /// (configured without one) or the amount is beyond 64 bits: then no mandate covers it.
    /// </summary>
    public static PaymentAsk? AskOf(PaymentAsset asset, BigInteger atomic, string payTo)
    {
        if (asset.Currency is not { } currency || Money.MinorUnits(currency) is not { } minorDigits || atomic <= 0)
        {
            return null;
        }
        var charge = atomic * BigInteger.Pow(10, Math.Max(0, minorDigits - asset.Decimals));
        if (asset.Decimals > minorDigits)
        {
            var (whole, rest) = BigInteger.DivRem(atomic, BigInteger.Pow(10, asset.Decimals - minorDigits));
            charge = rest > 0 ? whole + 1 : whole;
        }
        return charge > long.MaxValue ? null : new PaymentAsk(MinorUnits.Format((long)charge, currency), (long)charge, currency, payTo);
    }
}
