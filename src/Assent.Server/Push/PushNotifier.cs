using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Assent.Protocol;
using Assent.Server.Approvals;
using Assent.Server.Common;
using Assent.Server.Storage;
using Lib.Net.Http.WebPush;
using Lib.Net.Http.WebPush.Authentication;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Assent.Server.Push;

/// <summary>
/// Pushes each request created on this node to every active subscription of its user (docs/concepts.md, "Web Push"),
/// off the request path: creation only queues (a bounded queue; when it is full the request is not pushed and a line
/// is logged), and <see cref="PushOptions.Senders"/> loops send. Messages are encrypted for each subscription (RFC 8291,
/// <c>aes128gcm</c>) and signed with the server's VAPID key (RFC 8292) by Lib.Net.Http.WebPush. A subscription the push
/// service says is gone (404, 410) is removed; other failures are logged with the push service's origin and the status,
/// never the endpoint's path or the keys. Nothing is pushed when a request is decided or expires.
/// </summary>
internal sealed class PushNotifier : BackgroundService, INewRequestListener
{
    /// <summary>The notification's text is short: a lock screen shows two or three lines.</summary>
    internal const int MaxClientNameLength = 48;

    internal const int MaxMessageLength = 120;

    private readonly IPushSubscriptionStore _subscriptions;
    private readonly AssentOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<PushNotifier> _log;
    private readonly Channel<(ApprovalRecord Approval, string ClientName)> _queue;
    private readonly PushServiceClient _client;
    private readonly VapidAuthentication _vapid;
    private long _dropped;

    public PushNotifier(IPushSubscriptionStore subscriptions, VapidKeys keys, AssentOptions options, TimeProvider time, ILogger<PushNotifier> log)
    {
        _subscriptions = subscriptions;
        _options = options;
        _time = time;
        _log = log;
        _queue = Channel.CreateBounded<(ApprovalRecord, string)>(new BoundedChannelOptions(options.Push.QueueCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait, // with TryWrite: a full queue refuses at once, it never waits
            SingleWriter = false,
            SingleReader = options.Push.Senders == 1,
        });
        var push = options.Push;
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = (context, ct) => PushTargets.ConnectAsync(context, push, ct),
            AllowAutoRedirect = false,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        };
        var subject = options.IssuerUri.Scheme == Uri.UriSchemeHttps ? options.IssuerString : null;
        _client = new PushServiceClient(new HttpClient(new OriginAudience(keys, subject, time) { InnerHandler = handler }) { Timeout = push.Timeout })
        {
            // A 429 is logged like any failure: retrying here would hold a sender every other user is waiting for.
            AutoRetryAfter = false,
        };
        _vapid = new VapidAuthentication(keys.PublicKey, keys.PrivateKey)
        {
            // RFC 8292 §2: exp no more than 24 hours ahead; §2.1: sub, a contact, must be mailto: or https:.
            Expiration = (int)TimeSpan.FromHours(12).TotalSeconds,
            TokenCache = new TokenCache(time),
        };
        if (subject is not null)
        {
            _vapid.Subject = subject;
        }
    }

    /// <summary>Queues the request; never waits. Called right after the request is stored.</summary>
    public void Created(ApprovalRecord approval, string clientName)
    {
        if (!_queue.Writer.TryWrite((approval, clientName)))
        {
            // Logged for the first drop and every 1000th after: a flood must not become a flood of lines.
            if (Interlocked.Increment(ref _dropped) % 1000 == 1)
            {
                _log.LogWarning("web push queue full ({Capacity}): request {ApprovalId} was not pushed ({Dropped} not pushed so far)",
                    _options.Push.QueueCapacity, approval.Id, Interlocked.Read(ref _dropped));
            }
        }
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(Enumerable.Range(0, _options.Push.Senders).Select(_ => SendLoopAsync(stoppingToken)));

    private async Task SendLoopAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var (approval, clientName) in _queue.Reader.ReadAllAsync(ct))
            {
                try
                {
                    await PushAsync(approval, clientName, ct);
                }
                catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    // Storage down, most likely: this request is not pushed; the next ones try again.
                    _log.LogWarning("web push of request {ApprovalId} failed: {Error}", approval.Id, e.GetType().Name);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private async Task PushAsync(ApprovalRecord approval, string clientName, CancellationToken ct)
    {
        // RFC 8030 §5.2: TTL is how long the push service may keep the message: no longer than the request can be answered.
        var ttl = (approval.ExpiresAt - _time.GetUtcNow().ToUnixTimeMilliseconds()) / 1000;
        if (ttl <= 0)
        {
            return;
        }
        var subscriptions = await _subscriptions.ListActiveAsync(approval.UserId, ct);
        if (subscriptions.Count == 0)
        {
            return;
        }
        var content = JsonSerializer.Serialize(Payload(approval, clientName), PushJson.Default.PushPayload);
        await Task.WhenAll(subscriptions.Select(s => SendAsync(s, approval, content, (int)Math.Min(ttl, int.MaxValue), ct)));
    }

    private async Task SendAsync(PushSubscriptionRecord s, ApprovalRecord approval, string content, int ttl, CancellationToken ct)
    {
        var subscription = new PushSubscription { Endpoint = s.Endpoint };
        subscription.SetKey(PushEncryptionKeyName.P256DH, Base64Url.Encode(s.P256dh));
        subscription.SetKey(PushEncryptionKeyName.Auth, Base64Url.Encode(s.Auth));
        // RFC 8030 §5.3: high urgency, so a phone in power saving still wakes for a request a human must answer now.
        var message = new PushMessage(content) { TimeToLive = ttl, Urgency = PushMessageUrgency.High };
        try
        {
            await _client.RequestPushMessageDeliveryAsync(subscription, message, _vapid, VapidAuthenticationScheme.Vapid, ct);
        }
        catch (PushServiceClientException e) when (e.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Gone)
        {
            // RFC 8030 §7.3: the subscription expired or was removed at the push service: it will never deliver again.
            var dropped = await _subscriptions.TryDropAsync(s.Id, s.Endpoint, s.Auth,
                new AuditEvent(AuditTypes.PushDropped, s.UserId, "system", s.Id, new Dictionary<string, string>
                {
                    ["status"] = ((int)e.StatusCode).ToString(CultureInfo.InvariantCulture),
                    ["push_service"] = PushTargets.Origin(s.Endpoint),
                }), CancellationToken.None);
            _log.LogInformation("web push subscription {SubscriptionId} at {PushService} is gone ({Status}){Removed}", s.Id, PushTargets.Origin(s.Endpoint),
                (int)e.StatusCode, dropped ? ": removed" : "");
        }
        catch (PushServiceClientException e)
        {
            _log.LogWarning("web push of request {ApprovalId} to subscription {SubscriptionId} at {PushService} refused: {Status}", approval.Id, s.Id,
                PushTargets.Origin(s.Endpoint), (int)e.StatusCode);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            _log.LogWarning("web push of request {ApprovalId} to subscription {SubscriptionId} at {PushService} failed: {Error}", approval.Id, s.Id,
                PushTargets.Origin(s.Endpoint), e is TaskCanceledException ? "timed out" : e.GetType().Name);
        }
    }

    /// <summary>
    /// Only what the notification shows (the push service and the phone's lock screen see no more): who asks, the
    /// amount when a payment asks one, the message cut short, and the app's address of the request. The approver reads
    /// the whole request, and decides, in the app.
    /// </summary>
    internal static PushPayload Payload(ApprovalRecord approval, string clientName)
    {
        var title = approval.Kind switch
        {
            ApprovalKinds.DeviceLogin => "Sign-in request from ",
            ApprovalKinds.AgentConsent => "Consent request from ",
            ApprovalKinds.AgentRegistration => "New agent: ",
            _ => "Approval request from ",
        } + Cut(clientName, MaxClientNameLength);
        var body = new StringBuilder();
        if (Amount(approval.AuthorizationDetails) is { } amount)
        {
            body.Append(amount).Append('\n');
        }
        body.Append(Cut(approval.BindingMessage ?? "Open Assent to review it.", MaxMessageLength));
        return new PushPayload(approval.Id, title, body.ToString(), $"{EndpointPaths.App}#/requests/{approval.Id}");
    }

    /// <summary>The first <c>authorization_details</c> entry's amount and currency, as sent (never reformatted).</summary>
    private static string? Amount(string? details)
    {
        if (details is null)
        {
            return null;
        }
        try
        {
            using var doc = JsonDocument.Parse(details);
            foreach (var d in doc.RootElement.EnumerateArray())
            {
                if (d.ValueKind == JsonValueKind.Object && d.TryGetProperty("amount", out var amount) && amount.ValueKind is JsonValueKind.String or JsonValueKind.Number)
                {
                    var currency = d.TryGetProperty("currency", out var c) && c.ValueKind == JsonValueKind.String ? " " + Cut(c.GetString()!, 8) : "";
                    return Cut((amount.ValueKind == JsonValueKind.String ? amount.GetString()! : amount.GetRawText()) + currency, 40);
                }
            }
        }
        catch (JsonException)
        {
        }
        return null;
    }

    /// <summary>At most <paramref name="max"/> characters, an ellipsis when cut, never half a surrogate pair.</summary>
    internal static string Cut(string text, int max)
    {
        if (text.Length <= max)
        {
            return text;
        }
        var end = max - 1;
        if (char.IsHighSurrogate(text[end - 1]))
        {
            end--;
        }
        return text[..end] + "…";
    }

    public override void Dispose()
    {
        _vapid.Dispose();
        base.Dispose();
    }

    /// <summary>
    /// Lib.Net.Http.WebPush 3.3.1 writes the VAPID token's <c>aud</c> as scheme://host, leaving out a port that is not
    /// the scheme's default; RFC 8292 §2 asks for the origin (RFC 6454 §6.1), which keeps it, and a push service checks
    /// it. Push services listen on 443, where the two agree; for an endpoint with another port (a local push service,
    /// the tests' stand-in) the token is signed again here with the origin.
    /// </summary>
    private sealed class OriginAudience(VapidKeys keys, string? subject, TimeProvider time) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            if (request.RequestUri is { IsDefaultPort: false } uri)
            {
                var token = keys.Token(uri.GetLeftPart(UriPartial.Authority), time.GetUtcNow() + TimeSpan.FromHours(12), subject);
                request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("vapid", $"t={token}, k={keys.PublicKey}");
            }
            return base.SendAsync(request, ct);
        }
    }

    /// <summary>One VAPID token per push service origin (the JWT's aud), reused until an hour before it expires.</summary>
    private sealed class TokenCache(TimeProvider time) : IVapidTokenCache
    {
        private readonly ConcurrentDictionary<string, (string Token, DateTimeOffset Expiration)> _tokens = new(StringComparer.Ordinal);

        public void Put(string audience, DateTimeOffset expiration, string token) => _tokens[audience] = (token, expiration);

        public string? Get(string audience) =>
            _tokens.TryGetValue(audience, out var t) && t.Expiration - TimeSpan.FromHours(1) > time.GetUtcNow() ? t.Token : null;
    }
}
