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

/// <summary>The x402 side of <c>POST /v1/payments</c> (docs/payments.md §3–5): choosing a requirement and drafting its EIP-3009 authorization.</summary>
internal static partial class PaymentEndpoints
{
    /// <summary>The x402 payment of a chosen offer: an EIP-3009 authorization with a random nonce, valid for the approval and the offer's timeout.</summary>
    private static PaymentDraft X402Draft(X402Choice chosen, WalletRecord wallet,
        PaymentOptions paymentOptions, DateTimeOffset now, TimeSpan expiry)
    {
        var (o, network, asset, atomic) = chosen;
        var timeout = TimeSpan.FromSeconds(Math.Min(o.MaxTimeoutSeconds, (long)paymentOptions.MaxPaymentTimeout.TotalSeconds));
        var payTo = Checksum(o.PayTo);
        var authorization = new Eip3009Authorization(wallet.Address, payTo, atomic, (now - ValidAfterSkew).ToUnixTimeSeconds(),
            (now + expiry + timeout).ToUnixTimeSeconds(), "0x" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)));
        var amount = TokenAmount.ToHuman(atomic, asset.Decimals);
        return new PaymentDraft(o.Protocol, network.Id, asset.Address, asset.Symbol, payTo, amount,
            atomic.ToString(System.Globalization.CultureInfo.InvariantCulture), o.Resource, o.Description, wallet.Address, authorization.Nonce,
            authorization.ValidAfter, authorization.ValidBefore, OfferJson(o, network, asset), Details(o, network, asset, amount, authorization),
            $"Pay {amount} {asset.Symbol} to {payTo}", expiry);
    }

    /// <summary>
    /// The first offer, in the paid server's order, that this server can pay and that is within <paramref name="max"/>
    /// (docs/payments.md §3): scheme <c>exact</c> by EIP-3009, a configured network and asset, an EIP-712 domain, a real
    /// payee, an amount above zero and below absurd. Otherwise a 422 naming every offer and why it was not taken.
    /// </summary>
    internal static (X402Choice? Chosen, List<string> Why, List<string> OverMax) ChooseX402(
        IReadOnlyList<PaymentOffer> offers, string? max, PaymentOptions options)
    {
        var why = new List<string>();
        var overMax = new List<string>();
        foreach (var o in offers)
        {
            var network = options.FindNetwork(o.Network);
            var asset = network?.Assets.FirstOrDefault(a => string.Equals(a.Address, o.Asset, StringComparison.OrdinalIgnoreCase));
            // x402 v2 names networks by CAIP-2 id, v1 by name: each version only its own.
            var reason = o.Scheme != X402.ExactScheme ? $"scheme '{o.Scheme}' (this server pays '{X402.ExactScheme}')"
                : network is null || (o.X402Version == 2 ? network.Id : network.V1Name) != o.Network ? $"network '{o.Network}' is not one this server pays on"
                : asset is null ? $"asset {o.Asset} is not one this server pays in on {network.Label}"
                : o.TransferMethod is not null && o.TransferMethod != X402.Eip3009 ? $"transfer method '{o.TransferMethod}' (this server signs {X402.Eip3009})"
                : o.X402Version == 2 && (o.Eip712Name is null || o.Eip712Version is null) ? "no EIP-712 domain (extra.name, extra.version)"
                : !X402.EvmAddress().IsMatch(o.PayTo) || o.PayTo.Trim('0', 'x').Length == 0 ? $"payTo '{X402.Shorten(o.PayTo)}' is not an EVM address"
                : null;
            if (reason is null)
            {
                var atomic = BigInteger.Parse(o.AmountAtomic, System.Globalization.CultureInfo.InvariantCulture);
                var human = TokenAmount.ToHuman(atomic, asset!.Decimals);
                if (atomic.IsZero)
                {
                    reason = "an amount of zero";
                }
                else if (human.Split('.')[0].Length > Money.MaxIntegerDigits)
                {
                    reason = $"an absurd amount ({X402.Shorten(human)} {asset.Symbol})";
                }
                else if (max is not null && (TokenAmount.FromHuman(max, asset.Decimals) is not { } cap || atomic > cap))
                {
                    overMax.Add($"{human} {asset.Symbol} on {network!.Label}");
                    continue;
                }
                else
                {
                    return (new X402Choice(o, network!, asset, atomic), why, overMax);
                }
            }
            why.Add($"{o.Summary}: {reason}");
        }
        return (null, why, overMax);
    }

    /// <summary>
    /// The request's <c>authorization_details</c> (RFC 9396): what the approver sees and signs, and every field of the
    /// EIP-3009 authorization signed once approved, so what is signed is exactly what was approved (docs/payments.md §5).
    /// </summary>
    private static string Details(PaymentOffer o, PaymentNetwork network, PaymentAsset asset, string amount, Eip3009Authorization a)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            w.WriteStartObject();
            w.WriteString(AuthorizationDetailFields.Type, "payment");
            w.WriteString("protocol", o.Protocol);
            w.WriteString("amount", amount);
            w.WriteString("currency", asset.Symbol);
            w.WriteString("asset", asset.Address);
            w.WriteString("network", network.Id);
            w.WriteString("network_name", network.Label);
            w.WriteString("pay_to", a.To);
            w.WriteString("resource", o.Resource);
            if (o.Description is { Length: > 0 } d)
            {
                w.WriteString("description", d);
            }
            w.WriteString("from", a.From);
            w.WriteString("amount_atomic", a.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
            w.WriteNumber("valid_after", a.ValidAfter);
            w.WriteNumber("valid_before", a.ValidBefore);
            w.WriteString("nonce", a.Nonce);
            w.WriteEndObject();
            w.WriteEndArray();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>What the retry header repeats from the offer and what the EIP-712 domain needs, kept with the payment.</summary>
    private static string OfferJson(PaymentOffer o, PaymentNetwork network, PaymentAsset asset)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("x402Version", o.X402Version);
            w.WriteString("scheme", o.Scheme);
            w.WriteString("network", o.Network);
            w.WriteNumber("chainId", network.ChainId);
            // x402 v1 lets an offer leave the domain out; its reference falls back to the token's own, as configured here.
            w.WriteString("name", o.Eip712Name ?? asset.Eip712Name);
            w.WriteString("version", o.Eip712Version ?? asset.Eip712Version);
            if (o.X402Version == 2)
            {
                w.WritePropertyName("resource");
                o.ResourceInfo!.Value.WriteTo(w);
                w.WritePropertyName("accepted");
                o.Requirement.WriteTo(w);
            }
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static string Checksum(string address) => new Nethereum.Util.AddressUtil().ConvertToChecksumAddress(address);
}
