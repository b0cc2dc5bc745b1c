namespace Assent.Server.Payments;

/// <summary>
/// A token this server pays in: its contract, symbol, decimals, the EIP-712 domain to use when an x402 v1 offer names
/// none, and <see cref="Currency"/>: the ISO 4217 currency one unit of the token is worth (a stablecoin's peg, e.g. USDC
/// = USD), which lets a spending mandate in that currency cover payments in it (docs/payments.md §3, docs/policies.md §6).
/// Null: a mandate never covers it, every payment in it goes to a human.
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

    public PaymentNetwork? FindNetwork(string id) =>
        Networks.FirstOrDefault(n => string.Equals(n.Id, id, StringComparison.Ordinal) || string.Equals(n.V1Name, id, StringComparison.Ordinal));
}
