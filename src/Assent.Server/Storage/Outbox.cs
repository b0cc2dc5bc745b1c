using System.Collections.Concurrent;
using System.Threading.Channels;

namespace Assent.Server.Storage;

/// <summary>The events webhooks subscribe to (docs/webhooks.md §2); stored in subscriptions and deliveries, so never renamed.</summary>
internal static class EventTypes
{
    public const string ChallengeApproved = "challenge.approved";
    public const string ChallengeDenied = "challenge.denied";
    public const string ChallengeExpired = "challenge.expired";
    public const string ChallengeCancelled = "challenge.cancelled";
    public const string ApprovalApproved = "approval.approved";
    public const string ApprovalDenied = "approval.denied";
    public const string ApprovalExpired = "approval.expired";
    public const string ApprovalCancelled = "approval.cancelled";
    public const string DeviceEnrolled = "device.enrolled";
    public const string DeviceRevoked = "device.revoked";

    /// <summary>A user approved a spending mandate (docs/policies.md §6); its subject is the mandate.</summary>
    public const string MandateApproved = "mandate.approved";

    /// <summary>A user revoked a mandate; its subject is the mandate.</summary>
    public const string MandateRevoked = "mandate.revoked";

    /// <summary>A mandate approved a payment with no human; its subject is the payment's request.</summary>
    public const string MandateSpent = "mandate.spent";

    /// <summary>A payment left nothing of the mandate's total for its period; its subject is the mandate.</summary>
    public const string MandateExhausted = "mandate.exhausted";

    /// <summary>Sent to an endpoint by <c>POST /v1/webhooks/{id}/test</c> only; nothing subscribes to it.</summary>
    public const string Ping = "webhook.ping";

    public static readonly IReadOnlyList<string> All =
    [
        ChallengeApproved, ChallengeDenied, ChallengeExpired, ChallengeCancelled, ApprovalApproved, ApprovalDenied, ApprovalExpired, ApprovalCancelled,
        DeviceEnrolled, DeviceRevoked, MandateApproved, MandateRevoked, MandateSpent, MandateExhausted,
    ];

    /// <summary>Families a subscription may name as <c>family.*</c>, and <c>*</c> for everything.</summary>
    public static readonly IReadOnlyList<string> Families = ["challenge", "approval", "device", "mandate", "payment"];

    /// <summary>Whether a subscription pattern names events: one of <see cref="All"/>, <c>family.*</c>, or <c>*</c>.</summary>
    public static bool IsPattern(string pattern) =>
        pattern == "*" || All.Contains(pattern) || (pattern.EndsWith(".*", StringComparison.Ordinal) && Families.Contains(pattern[..^2]));

    /// <summary>The event a settled request announces, or null for a state no event names (pending, redeemed).</summary>
    public static string? ForApproval(string kind, ApprovalState state)
    {
        var family = kind == ApprovalKinds.Challenge ? "challenge." : "approval.";
        return state switch
        {
            ApprovalState.Approved or ApprovalState.Denied or ApprovalState.Expired or ApprovalState.Cancelled => family + StateNames.Of(state),
            _ => null,
        };
    }
}

/// <summary>Where a delivery goes: a webhook endpoint, or an agent's CIBA notification endpoint (CIBA Core §10.2 ping, §10.3 push).</summary>
internal static class DeliveryKinds
{
    public const string Webhook = "webhook";
    public const string Ping = "ping";
    public const string Push = "push";
}

/// <summary>A delivery's state (stored; never renumber).</summary>
internal enum DeliveryState
{
    Pending = 0,
    Delivered = 1,

    /// <summary>Every attempt of the schedule failed, or its endpoint was removed or disabled.</summary>
    Failed = 2,
}

/// <summary>
/// One event to announce: <see cref="Subject"/> is what it is about (a request, a device); webhooks of the users it
/// concerns receive it: <see cref="UserId"/> and the owner of <see cref="ClientId"/> (the agent or API key that asked).
/// <see cref="Ciba"/> also queues the agent's CIBA notification when the agent asked for ping or push.
/// </summary>
internal sealed record OutboxEvent(string Id, string Type, string Subject, string UserId, string? ClientId, long At, bool Ciba)
{
    public static OutboxEvent? ForApproval(ApprovalRecord request, ApprovalState state, long at) =>
        EventTypes.ForApproval(request.Kind, state) is { } type
            ? new(NewId(at), type, request.Id, request.UserId, request.ClientId, at, request.Kind == ApprovalKinds.Ciba)
            : null;

    public static OutboxEvent ForDevice(string type, DeviceRecord device, long at) => new(NewId(at), type, device.Id, device.UserId, null, at, false);

    /// <summary>A <c>mandate.*</c> event: to the mandate's user and the owner of the agent or API key that holds it.</summary>
    public static OutboxEvent ForMandate(string type, string subject, string userId, string clientId, long at) => new(NewId(at), type, subject, userId, clientId, at, false);

    /// <summary>The Standard Webhooks <c>webhook-id</c>: one per event, the same on every attempt.</summary>
    private static string NewId(long at) => Common.Ids.Ordered("msg", DateTimeOffset.FromUnixTimeMilliseconds(at));
}

/// <summary>
/// The transactional outbox (docs/storage.md §9): an event's deliveries are inserted by the transition's own
/// transaction, one row per subscribed webhook endpoint and one for the agent's CIBA notification, so the state
/// change and its announcements commit together or not at all. Written once for both engines.
/// </summary>
internal static class OutboxSql
{
    /// <summary>
    /// The fan-out: $1 event id, $2 type, $3 the type's family pattern (<c>challenge.*</c>), $4 subject, $5 user,
    /// $6 the asking agent or API key (may be null), $7 time, $8 whether a CIBA notification is due, and when
    /// <paramref name="leased"/> $9 the lease this node takes on the new rows (see <see cref="OutboxSignal.HandOff"/>).
    /// <paramref name="guard"/> names a one-row table of a pipelined statement that must have matched (PostgreSQL).
    /// </summary>
    public static string FanOut(string? guard = null, int first = 1, bool leased = false)
    {
        string P(int n) => "$" + (first + n - 1);
        var from = guard is null ? "" : guard + ", ";
        var (leaseColumn, lease) = leased ? (", lease_until", ", " + P(9)) : ("", "");
        return
            $"INSERT INTO deliveries(id, event_id, target_id, kind, type, subject, created_at, next_attempt_at{leaseColumn}) " +
            $"SELECT {P(1)} || '.' || w.id, {P(1)}, w.id, '{DeliveryKinds.Webhook}', {P(2)}, {P(4)}, {P(7)}, {P(7)}{lease} FROM {from}webhook_endpoints w " +
            $"WHERE w.deleted_at IS NULL AND w.disabled_at IS NULL AND w.owner_user_id IN ({P(5)}, " +
            $"(SELECT owner_user_id FROM clients WHERE id = {P(6)}), (SELECT owner_user_id FROM api_keys WHERE id = {P(6)})) " +
            $"AND EXISTS (SELECT 1 FROM webhook_events v WHERE v.endpoint_id = w.id AND v.event IN ({P(2)}, {P(3)}, '*')) " +
            $"UNION ALL SELECT {P(1)} || '.' || c.id, {P(1)}, c.id, c.delivery_mode, {P(2)}, {P(4)}, {P(7)}, {P(7)}{lease} FROM {from}clients c " +
            $"WHERE {P(8)} AND c.id = {P(6)} AND c.delivery_mode <> '{Protocol.OAuth.DeliveryModes.Poll}' " +
            $"AND EXISTS (SELECT 1 FROM ciba_notifications n WHERE n.approval_id = {P(4)})";
    }

    public static readonly string FanOutSql = FanOut();

    /// <summary>
    /// A row when some event may have a delivery: a live webhook endpoint exists, or an agent notified by ping or push
    /// (what each branch of <see cref="FanOut"/> needs at the least). Without a row every fan-out inserts nothing.
    /// </summary>
    public static readonly string ListeningSql = "SELECT 1 WHERE " + ListeningCondition();

    /// <summary><see cref="ListeningSql"/>'s condition, as a boolean expression a statement can hold.</summary>
    public static string ListeningCondition() =>
        "(EXISTS (SELECT 1 FROM webhook_endpoints WHERE deleted_at IS NULL AND disabled_at IS NULL) " +
        $"OR EXISTS (SELECT 1 FROM clients WHERE delivery_mode <> '{Protocol.OAuth.DeliveryModes.Poll}'))";

    /// <summary>
    /// Migration 19: the agents notified by ping or push, so that <see cref="ListeningSql"/> finds one, or that there is
    /// none, without reading every agent.
    /// </summary>
    public static readonly string NotifiedClientsIndex =
        $"CREATE INDEX clients_notified ON clients(id) WHERE delivery_mode <> '{Protocol.OAuth.DeliveryModes.Poll}'";

    // A statement that writes a table ListeningSql reads (its name as a word: not web_clients).
    private static readonly System.Text.RegularExpressions.Regex ListenersTable =
        new(@"\b(webhook_endpoints|clients)\b", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    /// <summary>Whether <paramref name="sql"/> may change the answer of <see cref="ListeningSql"/>: anything but a read that names its tables.</summary>
    public static bool DecidesListening(string sql) =>
        !sql.TrimStart().StartsWith("SELECT", StringComparison.OrdinalIgnoreCase) && ListenersTable.IsMatch(sql);

    private static readonly string LeasedFanOutSql = FanOut(leased: true) + " RETURNING " + WebhookStore.DeliveryColumns;

    public static object?[] Args(OutboxEvent e) =>
        [e.Id, e.Type, e.Type[..(e.Type.IndexOf('.') + 1)] + "*", e.Subject, e.UserId, e.ClientId, e.At, e.Ciba];

    /// <summary>
    /// Queues the event's deliveries in this transaction; returns how many (zero when nobody listens). While this
    /// process runs a delivery worker, the rows are leased to it at once and handed to it in memory, so it sends them
    /// the moment they commit instead of claiming them first (one write less per event, and no wait behind the writer).
    /// </summary>
    public static async ValueTask<int> EmitAsync(this IWriteSession w, OutboxSignal outbox, OutboxEvent? e)
    {
        if (e is null || !await w.ListeningAsync())
        {
            return 0;
        }
        if (outbox.HandOffLease is not { } lease)
        {
            return await w.ExecAsync(FanOutSql, Args(e));
        }
        var rows = await w.AllAsync(LeasedFanOutSql, WebhookStore.ReadDelivery, [.. Args(e), e.At + (long)lease.TotalMilliseconds]);
        outbox.HandOff(rows);
        return rows.Count;
    }
}

/// <summary>
/// Wakes this node's delivery worker the moment a commit queued deliveries, so a decision reaches its webhook in
/// milliseconds; other nodes find due deliveries on their next poll. Coalesces: many signals, one wake. Also carries
/// the deliveries this node leased to itself as it inserted them (<see cref="OutboxSql.EmitAsync"/>): they are handed
/// over before their transaction commits, so the worker sends only those it finds committed.
/// </summary>
internal sealed class OutboxSignal
{
    /// <summary>Handed-over deliveries held at most this many; beyond it they wait for their lease to run out and a claim.</summary>
    private const int MaxHandedOff = 100_000;

    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly ConcurrentQueue<HandedOff> _handedOff = new();
    private long _enqueued;
    private long _handedOffCount;
    private (long Enqueued, long HandedOff) _seen;

    /// <summary>
    /// Set while a delivery worker runs in this process: how long it leases the deliveries handed to it. Null: no
    /// worker here (an offline admin command), so new deliveries stay unleased for whichever node claims them.
    /// </summary>
    public TimeSpan? HandOffLease { get; set; }

    /// <summary>A delivery handed over at <see cref="At"/> (<see cref="System.Diagnostics.Stopwatch"/> ticks).</summary>
    internal readonly record struct HandedOff(DeliveryRecord Delivery, long At);

    /// <summary>Called once a commit queued deliveries (after the commit).</summary>
    public void Enqueued(int deliveries)
    {
        if (deliveries > 0)
        {
            Interlocked.Add(ref _enqueued, deliveries);
            _wake.Writer.TryWrite(true);
        }
    }

    /// <summary>Deliveries a transaction inserted already leased to this node; not yet committed, and may never be.</summary>
    public void HandOff(IReadOnlyList<DeliveryRecord> deliveries)
    {
        var at = System.Diagnostics.Stopwatch.GetTimestamp();
        foreach (var d in deliveries)
        {
            if (_handedOff.Count >= MaxHandedOff)
            {
                break;
            }
            _handedOff.Enqueue(new HandedOff(d, at));
        }
        Interlocked.Add(ref _handedOffCount, deliveries.Count);
    }

    /// <summary>Takes what was handed over so far.</summary>
    public List<HandedOff> TakeHandedOff()
    {
        var taken = new List<HandedOff>();
        while (taken.Count < 4096 && _handedOff.TryDequeue(out var h))
        {
            taken.Add(h);
        }
        return taken;
    }

    /// <summary>Puts back handed-over deliveries whose transaction has not committed yet.</summary>
    public void Return(IEnumerable<HandedOff> notYet)
    {
        foreach (var h in notYet)
        {
            _handedOff.Enqueue(h);
        }
    }

    /// <summary>
    /// Whether commits since the last call queued deliveries that were not handed over (another engine path, a manual
    /// retry, a release): only those need a claim. Called by the worker alone.
    /// </summary>
    public bool ClaimWanted()
    {
        var now = (Interlocked.Read(ref _enqueued), Interlocked.Read(ref _handedOffCount));
        var wanted = now.Item1 - _seen.Enqueued > now.Item2 - _seen.HandedOff;
        _seen = now;
        return wanted;
    }

    /// <summary>Wakes the worker with nothing new committed (room for more deliveries).</summary>
    public void Wake() => _wake.Writer.TryWrite(true);

    /// <summary>Waits for a wake or <paramref name="timeout"/>; true when woken.</summary>
    public async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken ct)
    {
        if (_wake.Reader.TryRead(out _))
        {
            return true;
        }
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            await _wake.Reader.ReadAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return false;
        }
    }
}
