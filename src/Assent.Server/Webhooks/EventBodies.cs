using System.Buffers;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.OAuth;
using Assent.Server.Approvals;
using Assent.Server.Common;
using Assent.Server.Keys;
using Assent.Server.Storage;

namespace Assent.Server.Webhooks;

/// <summary>
/// What a delivery sends, rendered at its first attempt and then kept, so every retry sends the same bytes
/// (docs/webhooks.md §3). Webhook bodies follow the Standard Webhooks payload shape <c>{type, timestamp, data}</c>
/// and carry no secrets: an approved challenge's attestation is fetched from <c>GET /v1/challenges/{id}</c>.
/// </summary>
internal sealed class EventBodies(IChallengeStore challenges, IApprovalStore approvals, IDeviceStore devices, IWebhookStore webhooks, TokenIssuer tokens, Approvals.MandateBook mandates,
    MasterKey master, AssentOptions options, TimeProvider time)
{
    private readonly Uri _issuer = options.IssuerUri;

    public async Task<byte[]> WebhookAsync(DeliveryRecord d, CancellationToken ct)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("type", d.Type);
            w.WriteString("timestamp", WireTime.Of(d.CreatedAt));
            w.WriteStartObject("data");
            var state = d.Type[(d.Type.IndexOf('.') + 1)..];
            if (d.Type.StartsWith("challenge.", StringComparison.Ordinal) && await challenges.FindAsync(d.Subject, ct) is { } view)
            {
                var (c, a) = view;
                w.WriteString("challengeId", c.Id);
                w.WriteString("status", state);
                w.WriteString("action", c.Action);
                w.WriteString("userId", a.UserId);
                WriteOptional(w, "amount", c.Amount);
                WriteOptional(w, "currency", c.Currency);
                WriteOptional(w, "message", a.BindingMessage);
                if (c.Metadata is not null)
                {
                    w.WritePropertyName("metadata");
                    w.WriteRawValue(c.Metadata, skipInputValidation: true);
                }
                w.WriteString("decidedAt", WireTime.Of(d.CreatedAt));
            }
            else if (d.Type.StartsWith("approval.", StringComparison.Ordinal) && await approvals.FindAsync(d.Subject, ct) is { } a)
            {
                w.WriteString("approvalId", a.Id);
                w.WriteString("status", state);
                w.WriteString("kind", a.Kind);
                w.WriteString("clientId", a.ClientId);
                w.WriteString("userId", a.UserId);
                w.WriteString("scope", a.Scope);
                WriteOptional(w, "bindingMessage", a.BindingMessage);
                w.WriteString("decidedAt", WireTime.Of(d.CreatedAt));
            }
            else if (d.Type.StartsWith("device.", StringComparison.Ordinal) && await devices.FindAsync(d.Subject, ct) is { } device)
            {
                w.WriteString("deviceId", device.Id);
                w.WriteString("userId", device.UserId);
                w.WriteString("did", Protocol.Did.DidWeb.ForUser(_issuer, device.UserId) + "#" + device.Id);
                w.WriteString("kind", device.Kind);
                w.WriteString("name", device.Name);
            }
            else if (d.Type.StartsWith("mandate.", StringComparison.Ordinal) && await mandates.EventSubjectAsync(d.Subject, ct) is { } m)
            {
                // docs/webhooks.md §3: the mandate's limits; for mandate.spent also the payment and what it left (as it was then).
                var (row, payment) = m;
                var mandate = row.Mandate;
                w.WriteString("mandateId", mandate.Id);
                w.WriteString("status", state);
                w.WriteString("clientId", mandate.ClientId);
                w.WriteString("userId", mandate.UserId);
                w.WriteString("currency", mandate.Currency);
                w.WriteString("perPayment", mandate.PerPayment);
                w.WriteString("total", mandate.Total);
                w.WriteString("period", mandate.Period);
                w.WriteString("expiresAt", WireTime.Of(mandate.ExpiresAt));
                if (payment is not null)
                {
                    w.WriteStartObject("payment");
                    w.WriteString("approvalId", payment.ApprovalId);
                    w.WriteString("amount", payment.Amount);
                    WriteOptional(w, "payee", payment.Payee);
                    w.WriteString("remaining", payment.Remaining);
                    w.WriteEndObject();
                }
                w.WriteString("at", WireTime.Of(d.CreatedAt));
            }
            else
            {
                w.WriteString("id", d.Subject);
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>
    /// A CIBA notification (CIBA Core §10.2 ping: <c>{auth_req_id}</c>; §10.3 push: the token response, or §12 the
    /// error). Null when the request has no notification stored (it was not asked for one). A push of an approved
    /// request redeems it here, once; its tokens are kept sealed so a retry sends the same ones.
    /// </summary>
    public async Task<(CibaNotification Notification, byte[] Body)?> CibaAsync(DeliveryRecord d, CancellationToken ct)
    {
        if (await webhooks.FindCibaNotificationAsync(d.Subject, ct) is not { } sealedNote)
        {
            return null;
        }
        var note = CibaNotification.Open(master, d.Subject, sealedNote);
        if (d.Body is not null)
        {
            return (note, d.Kind == DeliveryKinds.Push ? master.Open(d.Body, BodyContext(d.Id)) : d.Body);
        }
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString(OAuthParameters.AuthReqId, note.AuthReqId);
            if (d.Kind == DeliveryKinds.Push)
            {
                if (d.Type == EventTypes.ApprovalApproved &&
                    await approvals.TryRedeemAsync(d.Subject, time.GetUtcNow().ToUnixTimeMilliseconds(),
                        new AuditEvent(AuditTypes.ApprovalRedeemed, null, "ciba-push", d.Subject), ct) is { } decided)
                {
                    var issued = tokens.ForApproval(decided, note.AuthReqId, includeIdToken: true, withAtHash: true,
                        mandate: await mandates.GrantOfAsync(decided, ct));
                    w.WriteString("access_token", issued.AccessToken);
                    w.WriteString("token_type", "Bearer");
                    w.WriteNumber("expires_in", issued.ExpiresIn);
                    w.WriteString("id_token", issued.IdToken);
                }
                else
                {
                    // CIBA Core §12: an error to the notification endpoint names the request and the error.
                    var (error, description) = d.Type switch
                    {
                        EventTypes.ApprovalDenied or EventTypes.ApprovalCancelled => (OAuthErrors.AccessDenied, "the user denied the request"),
                        EventTypes.ApprovalExpired => (OAuthErrors.ExpiredToken, "the request expired before the user decided"),
                        _ => (OAuthErrors.InvalidGrant, "the tokens of this request were already issued"),
                    };
                    w.WriteString("error", error);
                    w.WriteString("error_description", description);
                }
            }
            w.WriteEndObject();
        }
        return (note, buffer.WrittenSpan.ToArray());
    }

    /// <summary>A push body holds tokens: it is kept sealed, bound to its delivery.</summary>
    public static string BodyContext(string deliveryId) => "delivery:" + deliveryId;

    private static void WriteOptional(Utf8JsonWriter w, string name, string? value)
    {
        if (value is not null)
        {
            w.WriteString(name, value);
        }
    }
}
