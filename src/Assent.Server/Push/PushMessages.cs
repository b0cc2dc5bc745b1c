using System.Text.Json.Serialization;

namespace Assent.Server.Push;

/// <summary>The Push API's subscription as <c>PushSubscription.toJSON()</c> writes it (its other members are ignored).</summary>
internal sealed record PushSubscriptionBody(string? Endpoint, PushKeysBody? Keys);

/// <summary>RFC 8291 §2: the browser's ECDH public key (<c>p256dh</c>, 65 bytes) and authentication secret (<c>auth</c>, 16 bytes), base64url.</summary>
internal sealed record PushKeysBody(string? P256dh, string? Auth);

internal sealed record UnsubscribeBody(string? Endpoint);

/// <summary>
/// One subscription as its owner sees it. <c>push_service</c> is the endpoint's origin only: the full endpoint is a
/// capability URL (RFC 8030 §8.4), served back to nobody.
/// </summary>
internal sealed record PushSubscriptionView(string Id, string DeviceId, string PushService, long CreatedAt, bool ThisDevice);

/// <summary>What the web app's notification switch needs: the key to subscribe with and the user's subscriptions.</summary>
internal sealed record PushStatus(string ApplicationServerKey, IReadOnlyList<PushSubscriptionView> Subscriptions);

/// <summary>The push message's plaintext (RFC 8291 encrypts it): only what the notification shows, and where a tap leads.</summary>
internal sealed record PushPayload(string Id, string Title, string Body, string Url);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(PushSubscriptionBody))]
[JsonSerializable(typeof(UnsubscribeBody))]
[JsonSerializable(typeof(PushSubscriptionView))]
[JsonSerializable(typeof(PushStatus))]
[JsonSerializable(typeof(PushPayload))]
internal sealed partial class PushJson : JsonSerializerContext;
