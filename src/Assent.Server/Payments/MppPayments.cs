using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using System.Text.Json;
using Assent.Protocol.Approvals;
using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;
using Assent.Server.Common;
using Assent.Server.Storage;

namespace Assent.Server.Payments;

/// <summary>
/// An MPP challenge this server can pay: <see cref="Atomic"/> of <see cref="AssetId"/> (a token contract for
/// <c>evm</c>, a lowercase ISO 4217 code for <c>stripe</c>) to <see cref="PayTo"/> (an address, or the seller's Stripe
/// network id).
/// </summary>
internal sealed record MppChoice(MppChallenge Challenge, string CredentialHeader, string NetworkId, string NetworkLabel, long ChainId, string AssetId,
    string Symbol, int Decimals, string PayTo, BigInteger Atomic, string? Eip712Name, string? Eip712Version) : PaymentChoice
{
    public string Method => Challenge.Method;
}

/// <summary>
/// MPP charges (docs/payments.md §2–§5): which challenge of a 402 is paid, what the approver is asked, and — once
/// approved — the credential. Two methods, as the protocol authors' <c>mppx</c> defines them:
/// <list type="bullet">
/// <item><c>evm</c>/<c>charge</c>: request <c>{amount, currency (token), recipient, methodDetails: {chainId,
/// credentialTypes: ["authorization"]}}</c>; paid with an EIP-3009 <c>TransferWithAuthorization</c> whose nonce is the
/// challenge hash (<see cref="Mpp.ChallengeHash"/>), payload <c>{type: "authorization", from, to, value, validAfter,
/// validBefore, nonce, signature}</c> and source <c>did:pkh:eip155:{chainId}:{from}</c>;</item>
/// <item><c>stripe</c>/<c>charge</c>: request <c>{amount, currency, methodDetails: {networkId, paymentMethodTypes}}</c>;
/// paid with a Shared Payment Token minted on the operator's Stripe account for exactly that amount, currency, seller
/// (<c>networkId</c>) and validity, payload <c>{spt}</c>.</item>
/// </list>
/// </summary>
internal static class MppPayments
{
    public const string StripeNetwork = "stripe";

    private static readonly TimeSpan SigningMargin = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan ValidAfterSkew = TimeSpan.FromMinutes(10);

    /// <summary>
    /// The first challenge, in the paid server's order, this server can pay within <paramref name="max"/>; otherwise
    /// why each was not taken (<c>Why</c>) and the prices above the maximum (<c>OverMax</c>).
    /// </summary>
    public static (MppChoice? Choice, List<string> Why, List<string> OverMax) Choose(IReadOnlyList<MppChallenge> challenges, string? max,
        PaymentOptions options, DateTimeOffset now)
    {
        var why = new List<string>();
        var overMax = new List<string>();
        foreach (var c in challenges)
        {
            var (choice, reason) = c.Intent != Mpp.ChargeIntent ? (null, $"intent '{Mpp.Shorten(c.Intent)}' (this server pays {Mpp.ChargeIntent})")
                : c.Method == Mpp.EvmMethod ? Evm(c, options)
                : c.Method == Mpp.StripeMethod ? Stripe(c, options)
                : (null, $"method '{c.Method}' (this server pays {Mpp.EvmMethod} and {Mpp.StripeMethod})");
            if (choice is not null)
            {
                var human = TokenAmount.ToHuman(choice.Atomic, choice.Decimals);
                reason = choice.Atomic.IsZero ? "an amount of zero"
                    : human.Split('.')[0].Length > Money.MaxIntegerDigits ? $"an absurd amount ({Mpp.Shorten(human)} {choice.Symbol})"
                    : c.ExpiresAt is { } at && at - now < 2 * SigningMargin ? $"it expires at {c.Expires}, too soon to be approved"
                    : null;
                if (reason is null && max is not null && (TokenAmount.FromHuman(max, choice.Decimals) is not { } cap || choice.Atomic > cap))
                {
                    overMax.Add($"{human} {choice.Symbol} ({choice.NetworkLabel})");
                    continue;
                }
                if (reason is null)
                {
                    return (choice, why, overMax);
                }
            }
            why.Add($"{c.Summary}: {reason}");
        }
        return (null, why, overMax);
    }

    private static (MppChoice?, string?) Evm(MppChallenge c, PaymentOptions options)
    {
        var r = c.Request;
        if (Str(r, "amount") is not { } amount || Str(r, "currency") is not { } currency || Str(r, "recipient") is not { } recipient ||
            !r.TryGetProperty("methodDetails", out var details) || details.ValueKind != JsonValueKind.Object ||
            !details.TryGetProperty("chainId", out var chain) || !chain.TryGetInt64(out var chainId))
        {
            return (null, "its request lacks one of amount, currency, recipient, methodDetails.chainId");
        }
        if (!IsAtomic(amount))
        {
            return (null, $"amount '{Mpp.Shorten(amount)}' is not a whole number of the token's smallest unit within uint256");
        }
        // mppx's client signs only when the challenge accepts an authorization credential, and never splits.
        if (!details.TryGetProperty("credentialTypes", out var types) || types.ValueKind != JsonValueKind.Array ||
            !types.EnumerateArray().Any(t => t.ValueKind == JsonValueKind.String && t.GetString() == Mpp.AuthorizationCredential))
        {
            return (null, $"it does not accept an '{Mpp.AuthorizationCredential}' credential (EIP-3009), the only one this server signs");
        }
        if (details.TryGetProperty("splits", out var splits) && splits.ValueKind == JsonValueKind.Array && splits.GetArrayLength() > 0)
        {
            return (null, "it splits the payment between recipients, which an EIP-3009 authorization cannot");
        }
        var network = options.FindChain(chainId);
        var asset = network?.Assets.FirstOrDefault(a => string.Equals(a.Address, currency, StringComparison.OrdinalIgnoreCase));
        if (network is null)
        {
            return (null, $"chain {chainId} is not one this server pays on");
        }
        if (asset is null)
        {
            return (null, $"currency {Mpp.Shorten(currency)} is not a token this server pays in on {network.Label}");
        }
        if (!X402.EvmAddress().IsMatch(recipient) || recipient.Trim('0', 'x').Length == 0)
        {
            return (null, $"recipient '{Mpp.Shorten(recipient)}' is not an EVM address");
        }
        if (Mpp.CredentialHeader(c) is not { } header)
        {
            return (null, $"it asks for the credential in '{Mpp.Shorten(c.Header!)}' (this server sends {Mpp.AuthorizationHeader} or {Mpp.PaymentAuthorizationHeader})");
        }
        return (new MppChoice(c, header, network.Id, network.Label, network.ChainId, asset.Address, asset.Symbol, asset.Decimals, Checksum(recipient),
            BigInteger.Parse(amount, CultureInfo.InvariantCulture), asset.Eip712Name, asset.Eip712Version), null);
    }

    private static (MppChoice?, string?) Stripe(MppChallenge c, PaymentOptions options)
    {
        if (!options.Stripe.Configured)
        {
            return (null, "Stripe charges are not configured on this server (Assent:Payments:Stripe)");
        }
        var r = c.Request;
        if (Str(r, "amount") is not { } amount || Str(r, "currency") is not { } currency || !r.TryGetProperty("methodDetails", out var details) ||
            details.ValueKind != JsonValueKind.Object || Str(details, "networkId") is not { Length: <= 255 } networkId)
        {
            return (null, "its request lacks one of amount, currency, methodDetails.networkId");
        }
        if (!IsAtomic(amount))
        {
            return (null, $"amount '{Mpp.Shorten(amount)}' is not a whole number of the currency's smallest unit");
        }
        var code = currency.ToUpperInvariant();
        if (currency.Length != 3 || !currency.All(char.IsAsciiLetter) || Money.MinorUnits(code) is not { } decimals)
        {
            return (null, $"currency '{Mpp.Shorten(currency)}' is not an ISO 4217 currency");
        }
        if (Mpp.CredentialHeader(c) is not { } header)
        {
            return (null, $"it asks for the credential in '{Mpp.Shorten(c.Header!)}' (this server sends {Mpp.AuthorizationHeader} or {Mpp.PaymentAuthorizationHeader})");
        }
        return (new MppChoice(c, header, StripeNetwork, "Stripe", 0, currency.ToLowerInvariant(), code, decimals, networkId,
            BigInteger.Parse(amount, CultureInfo.InvariantCulture), null, null), null);
    }

    /// <summary>
    /// What is stored and asked for a chosen challenge: the approval lasts at most until the challenge expires (less
    /// the signing margin), and what is signed or minted is valid until the challenge expires, or at most the approval's
    /// expiry plus <see cref="PaymentOptions.MaxPaymentTimeout"/>.
    /// </summary>
    public static PaymentDraft Draft(MppChoice c, string resource, string? wallet, PaymentOptions options, DateTimeOffset now, TimeSpan expiry)
    {
        var challenge = c.Challenge;
        if (challenge.ExpiresAt is { } at && at - SigningMargin - now < expiry)
        {
            expiry = at - SigningMargin - now;
        }
        var validBefore = (now + expiry + options.MaxPaymentTimeout).ToUnixTimeSeconds();
        if (challenge.ExpiresAt is { } until)
        {
            validBefore = Math.Min(validBefore, until.ToUnixTimeSeconds());
        }
        var evm = c.Method == Mpp.EvmMethod;
        var validAfter = (evm ? now - ValidAfterSkew : now).ToUnixTimeSeconds();
        var from = evm ? wallet! : "stripe:" + options.Stripe.PaymentMethod;
        var nonce = Mpp.ChallengeHash(challenge.Id, challenge.Realm);
        var amount = TokenAmount.ToHuman(c.Atomic, c.Decimals);
        var atomic = c.Atomic.ToString(CultureInfo.InvariantCulture);
        var description = challenge.Description ?? Str(challenge.Request, "description");
        var details = Json(w =>
        {
            w.WriteStartArray();
            w.WriteStartObject();
            w.WriteString(AuthorizationDetailFields.Type, "payment");
            w.WriteString("protocol", Mpp.Protocol);
            w.WriteString("method", c.Method);
            w.WriteString("amount", amount);
            w.WriteString("currency", c.Symbol);
            w.WriteString("asset", c.AssetId);
            w.WriteString("network", c.NetworkId);
            w.WriteString("network_name", c.NetworkLabel);
            w.WriteString("pay_to", c.PayTo);
            w.WriteString("resource", resource);
            if (description is { Length: > 0 })
            {
                w.WriteString("description", description);
            }
            w.WriteString("realm", challenge.Realm);
            w.WriteString("from", from);
            w.WriteString("amount_atomic", atomic);
            w.WriteNumber("valid_after", validAfter);
            w.WriteNumber("valid_before", validBefore);
            w.WriteString("nonce", nonce);
            w.WriteEndObject();
            w.WriteEndArray();
        });
        var offer = Json(w =>
        {
            w.WriteStartObject();
            w.WriteString("method", c.Method);
            w.WriteString("header", c.CredentialHeader);
            w.WriteNumber("chainId", c.ChainId);
            if (c.Eip712Name is not null)
            {
                w.WriteString("name", c.Eip712Name);
                w.WriteString("version", c.Eip712Version);
            }
            w.WritePropertyName("challenge");
            Mpp.WriteEcho(w, challenge);
            w.WriteEndObject();
        });
        var binding = evm ? $"Pay {amount} {c.Symbol} to {c.PayTo}" : $"Pay {amount} {c.Symbol} by card (Stripe) to {c.PayTo}";
        return new PaymentDraft(Mpp.Protocol, c.NetworkId, c.AssetId, c.Symbol, c.PayTo, amount, atomic, resource, description, from, nonce, validAfter,
            validBefore, offer, details, binding, expiry);
    }

    private static string Json(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            write(w);
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static bool IsAtomic(string amount) => amount.Length is > 0 and <= 78 && amount.All(char.IsAsciiDigit);

    private static string? Str(JsonElement o, string name) =>
        o.ValueKind == JsonValueKind.Object && o.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String && p.GetString() is { Length: > 0 and <= 2048 } s
            ? s
            : null;

    private static string Checksum(string address) => new Nethereum.Util.AddressUtil().ConvertToChecksumAddress(address);
}

/// <summary>
/// Signs (evm) or mints (stripe) the credential of an approved MPP payment, after checking the payment is field for
/// field what the approval's payload holds; the first one redeems the request and is audited with it.
/// </summary>
internal sealed class MppSigner(Wallets wallets, StripeClient stripe)
{
    public async Task<PaymentHeader> SignAsync(PaymentView view, IApprovalStore approvals, DateTimeOffset now, CancellationToken ct)
    {
        var (p, a) = view;
        if (!PaymentEndpoints.Approved(a, p))
        {
            throw new InvalidOperationException($"payment {p.Id} differs from what its approval holds; nothing is signed");
        }
        using var offer = JsonDocument.Parse(p.Offer);
        var o = offer.RootElement;
        var method = o.GetProperty("method").GetString();
        var audit = new Dictionary<string, string>
        {
            ["approval"] = a.Id, ["protocol"] = Mpp.Protocol, ["method"] = method!, ["amount"] = p.Amount, ["currency"] = p.Symbol, ["asset"] = p.Asset,
            ["network"] = p.Network, ["pay_to"] = p.PayTo, ["nonce"] = p.Nonce, ["valid_before"] = p.ValidBefore.ToString(CultureInfo.InvariantCulture),
        };
        string credential;
        if (method == Mpp.EvmMethod)
        {
            var wallet = await wallets.FindAsync(p.UserId, ct) ?? throw new InvalidOperationException($"the wallet of payment {p.Id} is gone");
            if (!string.Equals(wallet.Address, p.Wallet, StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"payment {p.Id} was approved for another wallet");
            }
            var authorization = new Eip3009Authorization(p.Wallet, p.PayTo, BigInteger.Parse(p.AmountAtomic, CultureInfo.InvariantCulture), p.ValidAfter,
                p.ValidBefore, p.Nonce);
            var chainId = o.GetProperty("chainId").GetInt64();
            var signature = wallets.SignTransferWithAuthorization(wallet, o.GetProperty("name").GetString()!, o.GetProperty("version").GetString()!,
                chainId, p.Asset, authorization);
            audit["signature_sha256"] = Protocol.Base64Url.Encode(SHA256.HashData(System.Text.Encoding.ASCII.GetBytes(signature)));
            // mppx evm AuthorizationPayloadSchema: numbers as decimal strings, addresses EIP-55.
            credential = Mpp.Credential(o.GetProperty("challenge"), w =>
            {
                w.WriteStartObject();
                w.WriteString("type", Mpp.AuthorizationCredential);
                w.WriteString("from", authorization.From);
                w.WriteString("to", authorization.To);
                w.WriteString("value", p.AmountAtomic);
                w.WriteString("validAfter", p.ValidAfter.ToString(CultureInfo.InvariantCulture));
                w.WriteString("validBefore", p.ValidBefore.ToString(CultureInfo.InvariantCulture));
                w.WriteString("nonce", p.Nonce);
                w.WriteString("signature", signature);
                w.WriteEndObject();
            }, $"did:pkh:eip155:{chainId}:{p.Wallet}");
        }
        else
        {
            // The token is minted for this payment only: the idempotency key makes a later read get the same token, not a second one.
            var paymentMethod = p.Wallet["stripe:".Length..];
            var spt = await stripe.MintAsync(new SptLimits(paymentMethod, p.Asset, p.AmountAtomic, p.ValidBefore, p.PayTo), "assent-" + p.Id, ct);
            audit["spt_sha256"] = Protocol.Base64Url.Encode(SHA256.HashData(System.Text.Encoding.ASCII.GetBytes(spt)));
            credential = Mpp.Credential(o.GetProperty("challenge"), w =>
            {
                w.WriteStartObject();
                w.WriteString("spt", spt);
                w.WriteEndObject();
            }, null);
        }
        if (a.State == ApprovalState.Approved)
        {
            // The first credential redeems the request, audited with it; a read racing it makes the same credential and records nothing.
            await approvals.TryRedeemAsync(a.Id, now.ToUnixTimeMilliseconds(), new AuditEvent(PaymentAuditTypes.PaymentSigned, p.UserId, p.ClientId, a.Id, audit), ct);
        }
        return new PaymentHeader(o.GetProperty("header").GetString()!, credential);
    }
}

/// <summary>What a payment request stores and asks, whichever protocol it pays (the payment's fields, the approval's details and binding message, its expiry).</summary>
internal sealed record PaymentDraft(string Protocol, string Network, string Asset, string Symbol, string PayTo, string Amount, string AmountAtomic,
    string Resource, string? Description, string Wallet, string Nonce, long ValidAfter, long ValidBefore, string Offer, string Details, string Binding,
    TimeSpan Expiry);
