using System.Numerics;

namespace Assent.Server.Payments;

/// <summary>What a 402 offers: x402 requirements, MPP challenges, or both (docs/payments.md §2).</summary>
internal sealed record DetectedOffers(IReadOnlyList<PaymentOffer>? X402, IReadOnlyList<MppChallenge>? Mpp);

/// <summary>The offer chosen to be paid: an x402 requirement (<see cref="X402Choice"/>) or an MPP challenge (<see cref="MppChoice"/>).</summary>
internal abstract record PaymentChoice;

/// <summary>An x402 requirement this server can pay: <see cref="Atomic"/> of <see cref="Asset"/> on <see cref="Network"/>.</summary>
internal sealed record X402Choice(PaymentOffer Offer, PaymentNetwork Network, PaymentAsset Asset, BigInteger Atomic) : PaymentChoice;
