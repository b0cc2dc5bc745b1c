using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Threading.Channels;
using System.Threading.RateLimiting;
using Assent.Server.Common;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StandardWebhooks;

namespace Assent.Server.Webhooks;

/// <summary>
/// Sends what the outbox holds (docs/webhooks.md §4): woken the moment a commit on this node queues deliveries, and
/// every second for deliveries queued elsewhere, due for a retry, or whose lease ran out (their node died). Each
/// delivery is leased before it is attempted, so it is attempted by one node at a time: claimed in batches, or leased to
/// this node by the very transaction that queued it and handed over in memory (no claim between a decision and its
/// webhook). Its outcome is recorded in batches. At-least-once: an attempt whose outcome was not recorded is attempted again.
/// </summary>
internal sealed class DeliveryWorker(IWebhookStore store, AssentStore assent, OutboxSignal signal, EventBodies bodies, TargetGuard guard, MasterKey master, AssentOptions options,
    TimeProvider time, ILogger<DeliveryWorker> log) : BackgroundService
{
    /// <summary>
    /// After attempt n fails, attempt n + 1 comes this long after (the Standard Webhooks schedule), each ±20 % jitter;
    /// after the last, the delivery has failed: 8 attempts over about 27.5 hours.
    /// </summary>
    internal static readonly TimeSpan[] Schedule =
    [
        TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(30), TimeSpan.FromHours(2), TimeSpan.FromHours(5), TimeSpan.FromHours(10),
        TimeSpan.FromHours(10),
    ];

    /// <summary>While an endpoint fails, it is probed with one delivery at a time, 1 s, 2 s, 4 s, … apart, at most this far.</summary>
    internal static readonly TimeSpan MaxProbeInterval = TimeSpan.FromSeconds(15);

    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(1);

    /// <summary>How often the backlog's budget (<see cref="WebhookOptions.BacklogPerSecond"/>) is looked at again when spent.</summary>
    private static readonly TimeSpan PaceStep = TimeSpan.FromMilliseconds(20);

    private readonly Channel<DeliveryOutcome> _outcomes = Channel.CreateUnbounded<DeliveryOutcome>(new UnboundedChannelOptions { SingleReader = true });

    // Leased deliveries waiting for one of the MaxInFlight senders.
    private readonly Channel<DeliveryRecord> _ready = Channel.CreateUnbounded<DeliveryRecord>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly ConcurrentDictionary<string, (long Until, int Failures)> _failing = new();
    private readonly ConcurrentDictionary<string, (WebhookEndpointRecord Endpoint, StandardWebhook Signer, long ReadAt)> _endpoints = new();
    private HttpClient? _http;

    // Deliveries queued in _ready or being attempted, and whether the last claim was cut short for want of room.
    private int _outstanding;
    private volatile bool _more;

    // Whether the last claim stopped because the backlog's budget for now was spent.
    private bool _paced;

    /// <summary>
    /// How long a claim or a hand-over leases a delivery: it may wait in the queue behind at most one round of attempts
    /// (each cut at the timeout), then take one attempt itself, and the margin covers clocks and the recording.
    /// </summary>
    private TimeSpan Lease => 2 * options.Webhooks.Timeout + TimeSpan.FromSeconds(30);

    protected override async Task ExecuteAsync(CancellationToken stop)
    {
        using var http = new HttpClient(guard.CreateHandler()) { Timeout = options.Webhooks.Timeout };
        http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("Assent-Webhooks", "1"));
        _http = http;
        var max = options.Webhooks.MaxInFlight;
        if (assent.Engine == "sqlite")
        {
            // SQLite has one server process: leases left in the database were this process's own before it died, so they
            // are released now rather than when they run out (docs/webhooks.md §4); PostgreSQL's may belong to live nodes.
            try
            {
                await store.ReleaseLeasesAsync(stop);
            }
            catch (Exception e) when (StorageFaults.IsUnavailable(e))
            {
                log.LogWarning("webhook leases left by an earlier run wait to run out: the database is unavailable ({Message})", e.Message);
            }
        }
        // The backlog is paced; hand-overs (this node's fresh deliveries) are not. Real time, as it shares the machine's CPU.
        // Topped up every pace step, or once per permit when the rate is below one per step.
        var rate = options.Webhooks.BacklogPerSecond;
        var perStep = Math.Max(1, (int)(rate * PaceStep.TotalSeconds));
        using var backlog = new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
        {
            TokenLimit = Math.Max(perStep, Math.Min(2 * max, rate)),
            TokensPerPeriod = perStep,
            ReplenishmentPeriod = TimeSpan.FromSeconds((double)perStep / rate),
            AutoReplenishment = true,
            QueueLimit = 0,
        });
        var recorder = RecordLoopAsync();
        var senders = Enumerable.Range(0, max).Select(_ => Task.Run(() => SendLoopAsync(max, stop), CancellationToken.None)).ToArray();
        signal.HandOffLease = Lease;
        var lastClaim = time.GetTimestamp();
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var woken = await signal.WaitAsync(_paced ? PaceStep : Poll, stop);
                await TakeHandedOffAsync(stop);
                // A poll (at least every second, however busy: retries come due and leases run out), commits that queued
                // deliveries nobody handed over (another node's engine path, a manual retry, a release), or room again
                // after a claim that filled it: only these need a claim (a write).
                if (woken && !signal.ClaimWanted() && !_more && !_paced && time.GetElapsedTime(lastClaim) < Poll)
                {
                    continue;
                }
                _more = false;
                _paced = false;
                lastClaim = time.GetTimestamp();
                while (!stop.IsCancellationRequested)
                {
                    // Up to twice MaxInFlight leased here at once: the senders never wait for a claim, and the rest stays
                    // unleased for this or another node. A claim waits for room for at least a full round.
                    var room = 2 * max - Volatile.Read(ref _outstanding);
                    if (room < max)
                    {
                        // The sender that makes room wakes us, or (if it made room before it could see this) we look again.
                        _more = true;
                        if (2 * max - Volatile.Read(ref _outstanding) < max)
                        {
                            break;
                        }
                        _more = false;
                        continue;
                    }
                    var allowed = (int)Math.Min(room, backlog.GetStatistics()?.CurrentAvailablePermits ?? room);
                    using var permits = allowed > 0 ? backlog.AttemptAcquire(allowed) : null;
                    if (permits is not { IsAcquired: true })
                    {
                        // Spent for now: looked at again in a pace step, hand-overs still taken the moment they come.
                        _paced = true;
                        break;
                    }
                    IReadOnlyList<DeliveryRecord> due;
                    try
                    {
                        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
                        due = await store.ClaimAsync(now, now + (long)Lease.TotalMilliseconds, allowed, stop);
                    }
                    catch (Exception e) when (e is not OperationCanceledException && StorageFaults.IsUnavailable(e))
                    {
                        log.LogWarning("webhook deliveries wait: the database is unavailable ({Message})", e.Message);
                        break;
                    }
                    foreach (var d in due)
                    {
                        Queue(d);
                    }
                    if (due.Count < allowed)
                    {
                        break;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        finally
        {
            signal.HandOffLease = null;
            // Attempts in flight finish or are cut by the stop; their outcomes are recorded if the database still answers,
            // otherwise their leases run out and another start attempts them again, as do those still queued.
            _ready.Writer.TryComplete();
            await Task.WhenAny(Task.WhenAll(senders), Task.Delay(TimeSpan.FromSeconds(5), CancellationToken.None));
            _outcomes.Writer.TryComplete();
            await recorder;
        }
    }

    private void Queue(DeliveryRecord d)
    {
        Interlocked.Increment(ref _outstanding);
        _ready.Writer.TryWrite(d);
    }

    /// <summary>One of MaxInFlight senders: attempts queued deliveries one after another.</summary>
    private async Task SendLoopAsync(int max, CancellationToken stop)
    {
        try
        {
            await foreach (var d in _ready.Reader.ReadAllAsync(stop))
            {
                try
                {
                    _outcomes.Writer.TryWrite(await AttemptAsync(d, stop));
                }
                finally
                {
                    // Room for a full round again: the claimer, if it stopped for want of room, claims more.
                    if (Interlocked.Decrement(ref _outstanding) == max && _more)
                    {
                        signal.Wake();
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Queues the deliveries this node leased to itself as their transactions inserted them, once committed; those of
    /// an endpoint held back are handed back unattempted. Those not committed yet are kept for the next wake (their
    /// commit rings it), and given up after a few seconds: rolled back, or else their lease runs out and a claim takes them.
    /// </summary>
    private async Task TakeHandedOffAsync(CancellationToken stop)
    {
        var taken = signal.TakeHandedOff();
        if (taken.Count == 0)
        {
            return;
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        IReadOnlyList<(string Id, bool HeldBack)> found;
        try
        {
            found = await store.FindHandedOffAsync([.. taken.Select(h => h.Delivery.Id)], now, stop);
        }
        catch (Exception e) when (e is not OperationCanceledException && StorageFaults.IsUnavailable(e))
        {
            signal.Return(taken);
            return;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Given up here, not lost: their leases run out and a claim takes them.
            log.LogError("{Count} handed-over webhook deliveries wait for their lease to run out: {Message}", taken.Count, e.Message);
            return;
        }
        var committed = found.ToDictionary(f => f.Id, f => f.HeldBack, StringComparer.Ordinal);
        // Real elapsed time, not the protocol clock: how long a commit may take to become visible.
        var giveUpBefore = System.Diagnostics.Stopwatch.GetTimestamp() - 5 * System.Diagnostics.Stopwatch.Frequency;
        var notYet = new List<OutboxSignal.HandedOff>();
        foreach (var h in taken)
        {
            if (!committed.TryGetValue(h.Delivery.Id, out var heldBack))
            {
                if (h.At > giveUpBefore)
                {
                    notYet.Add(h);
                }
            }
            else if (heldBack)
            {
                _outcomes.Writer.TryWrite(new DeliveryOutcome(h.Delivery, false, false, null, null, null, now, null, null));
            }
            else
            {
                Queue(h.Delivery);
            }
        }
        signal.Return(notYet);
    }

    private async Task RecordLoopAsync()
    {
        var batch = new List<DeliveryOutcome>(256);
        while (await _outcomes.Reader.WaitToReadAsync(CancellationToken.None))
        {
            batch.Clear();
            while (batch.Count < 256 && _outcomes.Reader.TryRead(out var o))
            {
                batch.Add(o);
            }
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    foreach (var off in await store.RecordAsync(batch, (long)options.Webhooks.DisableAfter.TotalMilliseconds, CancellationToken.None))
                    {
                        _endpoints.TryRemove(off.Id, out _);
                        log.LogWarning("webhook endpoint {Id} of user {Owner} disabled: every delivery failed for {Days} days",
                            off.Id, off.OwnerUserId, options.Webhooks.DisableAfter.TotalDays);
                    }
                    break;
                }
                catch (Exception e) when (attempt < 5)
                {
                    log.LogWarning("recording {Count} webhook outcomes failed, retrying: {Message}", batch.Count, e.Message);
                    await Task.Delay(TimeSpan.FromMilliseconds(200 << attempt), CancellationToken.None);
                }
                catch (Exception e)
                {
                    // The leases run out and the deliveries are attempted again: at-least-once holds.
                    log.LogError("could not record {Count} webhook outcomes; they will be attempted again: {Message}", batch.Count, e.Message);
                    break;
                }
            }
        }
    }

    private async Task<DeliveryOutcome> AttemptAsync(DeliveryRecord d, CancellationToken stop)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (_failing.TryGetValue(d.TargetId, out var failing) && failing.Until > now)
        {
            // Its endpoint failed a moment ago: hand it back unattempted; the endpoint's probe decides when it goes.
            return new DeliveryOutcome(d, false, false, null, null, null, now, null, null);
        }
        byte[] body;
        byte[]? keep;
        HttpRequestMessage request;
        try
        {
            if (d.Kind == DeliveryKinds.Webhook)
            {
                var target = await EndpointAsync(d.TargetId, now, stop);
                if (target is null)
                {
                    return new DeliveryOutcome(d, true, false, null, "endpoint removed or disabled", null, now, null, null);
                }
                body = keep = d.Body ?? await bodies.WebhookAsync(d, stop);
                request = new HttpRequestMessage(HttpMethod.Post, target.Value.Endpoint.Url) { Content = new ByteArrayContent(body) };
                var at = time.GetUtcNow();
                // Standard Webhooks: webhook-id (the same on every attempt), webhook-timestamp (this attempt), and v1 HMAC-SHA256 over both and the body.
                request.Headers.Add("webhook-id", d.EventId);
                request.Headers.Add("webhook-timestamp", at.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture));
                request.Headers.Add("webhook-signature", target.Value.Signer.Sign(d.EventId, at, System.Text.Encoding.UTF8.GetString(body)));
            }
            else
            {
                var settings = await store.FindCibaClientAsync(d.TargetId, stop);
                var rendered = settings?.NotificationEndpoint is null ? null : await bodies.CibaAsync(d, stop);
                if (rendered is null)
                {
                    return new DeliveryOutcome(d, true, false, null, "the agent has no notification endpoint or the request no notification token", null, now, null,
                        null);
                }
                body = rendered.Value.Body;
                keep = d.Kind == DeliveryKinds.Push ? master.Seal(body, EventBodies.BodyContext(d.Id)) : body;
                request = new HttpRequestMessage(HttpMethod.Post, settings!.NotificationEndpoint) { Content = new ByteArrayContent(body) };
                // CIBA Core §10.2 / §10.3: the client_notification_token as a bearer token.
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", rendered.Value.Notification.Token);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException || !stop.IsCancellationRequested)
        {
            log.LogWarning("delivery {Id} could not be prepared: {Message}", d.Id, e.Message);
            return Failed(d, null, "could not be prepared: " + e.Message, null, now);
        }
        request.Content!.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        try
        {
            using (request)
            using (var response = await _http!.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stop))
            {
                var status = (int)response.StatusCode;
                var done = time.GetUtcNow().ToUnixTimeMilliseconds();
                if (response.IsSuccessStatusCode)
                {
                    _failing.TryRemove(d.TargetId, out _);
                    return new DeliveryOutcome(d, true, true, status, null, keep, done, null, null);
                }
                var error = status is >= 300 and < 400 ? $"answered {status}: redirects are not followed" : $"answered {status}";
                return Failed(d, status, error, keep, done);
            }
        }
        catch (TaskCanceledException) when (!stop.IsCancellationRequested)
        {
            return Failed(d, null, $"no answer within {options.Webhooks.Timeout.TotalSeconds:0.#} s", keep, time.GetUtcNow().ToUnixTimeMilliseconds());
        }
        catch (HttpRequestException e)
        {
            return Failed(d, null, Reason(e), keep, time.GetUtcNow().ToUnixTimeMilliseconds());
        }
    }

    // The delivery log's words for a transport failure. HttpClient says only "An error occurred while sending the
    // request." when the receiver hangs up without an answer; the cause is in its error code and inner exception.
    private static string Reason(HttpRequestException e) => e.HttpRequestError switch
    {
        HttpRequestError.ResponseEnded => "the receiver closed the connection without an answer",
        _ when e.InnerException is { } inner && !e.Message.Contains(inner.Message, StringComparison.Ordinal) => $"{e.Message} ({inner.Message})",
        _ => e.Message,
    };

    private DeliveryOutcome Failed(DeliveryRecord d, int? status, string error, byte[]? body, long at)
    {
        var jitter = 0.8 + RandomNumberGenerator.GetInt32(401) / 1000.0;
        long? next = d.Attempts < Schedule.Length ? at + (long)(Schedule[d.Attempts].TotalMilliseconds * jitter) : null;
        long retryAt;
        if (_failing.TryGetValue(d.TargetId, out var f) && f.Until > at)
        {
            // Attempts that were in flight together when the endpoint went down fail together: one probe round, not one
            // step of back-off each, so a burst of them does not jump straight to the longest interval.
            retryAt = f.Until;
        }
        else
        {
            var failures = f.Failures + 1;
            var probe = Math.Min(1000L << Math.Min(failures - 1, 20), (long)MaxProbeInterval.TotalMilliseconds);
            retryAt = at + (long)(probe * jitter);
            _failing[d.TargetId] = (retryAt, failures);
        }
        log.LogInformation("delivery {Id} ({Type}) failed: {Error}", d.Id, d.Type, error);
        return new DeliveryOutcome(d, true, false, status, error.Length > 500 ? error[..500] : error, body, at, next, retryAt);
    }

    /// <summary>An endpoint and its signer, read at most every 10 s: removals and disablements are also checked at claim time.</summary>
    private async Task<(WebhookEndpointRecord Endpoint, StandardWebhook Signer)?> EndpointAsync(string id, long now, CancellationToken ct)
    {
        if (_endpoints.TryGetValue(id, out var cached) && cached.ReadAt > now - 10_000)
        {
            return (cached.Endpoint, cached.Signer);
        }
        var endpoint = await store.FindEndpointAsync(id, ct);
        if (endpoint is not { Active: true })
        {
            _endpoints.TryRemove(id, out _);
            return null;
        }
        var secret = System.Text.Encoding.UTF8.GetString(master.Open(endpoint.SealedSecret, WebhookEndpoints.SealContext(id)));
        var signer = new StandardWebhook(secret);
        _endpoints[id] = (endpoint, signer, now);
        return (endpoint, signer);
    }
}
