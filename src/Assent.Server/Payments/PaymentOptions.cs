using Microsoft.Extensions.Configuration;

namespace Assent.Server.Payments;

/// <summary>
/// A token this server pays in: its contract, symbol, decimals, its EIP-712 domain (name, version): used when an x402 v1
/// offer names none, and always for an MPP <c>evm</c> charge, whose challenge does not carry it (docs/payments.md §3); and
/// <see cref="Currency"/>: the ISO 4217 currency one unit of the token is worth (a stablecoin's peg, e.g. USDC = USD), which
/// lets a spending mandate in that currency cover payments in it (docs/policies.md §6). Null: a mandate never covers it,
/// every payment in it goes to a human.
/// </summary>
internal sealed record PaymentAsset(string Address, string Symbol, int Decimals, string Eip712Name, string Eip712Version, string? Currency = null);

/// <summary>
/// An EVM network this server pays on: its CAIP-2 id (x402 v2, e.g. <c>eip155:8453</c>), the name x402 v1 uses for it
/// (e.g. <c>base</c>), a label for the approver, and the assets it pays in there.
/// </summary>
internal sealed record PaymentNetwork(string Id, string V1Name, long ChainId, string Label, IReadOnlyList<PaymentAsset> Assets);

/// <summary>The networks and assets payments may use (docs/payments.md §3). Anything else offered in a 402 is refused.</summary>
internal sealed class PaymentOptions
{
    /// <summary>
    /// USDC on Base and Base Sepolia, as Circle deploys it (FiatTokenV2_2, which implements EIP-3009): 6 decimals,
    /// EIP-712 domain <c>USD Coin</c>/<c>2</c> on Base and <c>USDC</c>/<c>2</c> on Base Sepolia (what the x402 v1 reference uses);
    /// one USDC is one USD for mandates.
    /// </summary>
    public IReadOnlyList<PaymentNetwork> Networks { get; set; } =
    [
        new("eip155:8453", "base", 8453, "Base", [new("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "USDC", 6, "USD Coin", "2", "USD")]),
        new("eip155:84532", "base-sepolia", 84532, "Base Sepolia", [new("0x036CbD53842c5426634e7929541eC2318f3dCF7e", "USDC", 6, "USDC", "2", "USD")]),
    ];

    /// <summary>
    /// The longest validity a payment authorization may ask for beyond the approval's own expiry: a paid server's
    /// <c>maxTimeoutSeconds</c> above this is cut to it (the signed window is what the approver sees).
    /// </summary>
    public TimeSpan MaxPaymentTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Which protocol is paid when a 402 offers both x402 and MPP (docs/payments.md §3): <c>mpp</c> (the default, as the
    /// MPP reference client's <c>--protocol auto</c> prefers) or <c>x402</c>. The other is tried when nothing in the
    /// preferred one can be paid. Environment: <c>Assent__Payments__PreferredProtocol</c>.
    /// </summary>
    public string PreferredProtocol { get; set; } = Mpp.Protocol;

    /// <summary>The operator's Stripe account, for MPP <c>stripe</c> charges (docs/payments.md §5.2); unset, they are not paid.</summary>
    public StripeOptions Stripe { get; set; } = new();

    /// <summary>The payment settings from the environment (<c>Assent__Payments__…</c>, as the server's other settings), checked.</summary>
    public static PaymentOptions FromEnvironment()
    {
        var options = new PaymentOptions();
        var section = new Microsoft.Extensions.Configuration.ConfigurationBuilder().AddEnvironmentVariables().Build().GetSection("Assent:Payments");
        options.PreferredProtocol = section["PreferredProtocol"] ?? options.PreferredProtocol;
        var stripe = section.GetSection("Stripe");
        options.Stripe.SecretKey = stripe["SecretKey"];
        options.Stripe.PaymentMethod = stripe["PaymentMethod"];
        if (stripe["ApiBase"] is { } api)
        {
            options.Stripe.ApiBase = Uri.TryCreate(api, UriKind.Absolute, out var uri) ? uri
                : throw new InvalidOperationException($"Assent:Payments:Stripe:ApiBase '{api}' is not an absolute URL");
        }
        return options.Validate() is { } problem ? throw new InvalidOperationException(problem) : options;
    }

    /// <summary>What is wrong with the settings, or null.</summary>
    public string? Validate() =>
        PreferredProtocol is not (Mpp.Protocol or "x402") ? $"Assent:Payments:PreferredProtocol must be mpp or x402, not '{X402.Shorten(PreferredProtocol)}'"
        : Stripe.ApiBase.Scheme is not ("https" or "http") ? "Assent:Payments:Stripe:ApiBase must be an http(s) URL"
        : Stripe.SecretKey is { Length: > 0 } != Stripe.PaymentMethod is { Length: > 0 } ? "Assent:Payments:Stripe needs both SecretKey and PaymentMethod, or neither"
        : null;

    public PaymentNetwork? FindNetwork(string id) =>
        Networks.FirstOrDefault(n => string.Equals(n.Id, id, StringComparison.Ordinal) || string.Equals(n.V1Name, id, StringComparison.Ordinal));

    /// <summary>The network of an EVM chain id (MPP names chains by number).</summary>
    public PaymentNetwork? FindChain(long chainId) => Networks.FirstOrDefault(n => n.ChainId == chainId);
}
