using System.Collections.Concurrent;
using System.Threading.Channels;
using Assent.Protocol;
using Assent.Server.Storage;

namespace Assent.Server.Approvals;

/// <summary>What a device stream is told.</summary>
internal sealed record StreamEvent(string Type, string ApprovalId, ApprovalRecord? Approval)
{
    /// <summary>Wakes a stream's reader to look at <see cref="ApprovalHub.Subscription.TakeResync"/>; never sent to the client.</summary>
    public static readonly StreamEvent Resync = new("resync", "", null);
}

/// <summary>
/// In-process fan-out: agents held by <c>Prefer: wait</c> are woken when their request is
/// decided or expires, and each user's open device streams hear of new and settled requests.
/// A waiter that read the state before registering passes the <see cref="Version"/> it read at:
/// a request settled in between is remembered (briefly), so its watch starts signalled and no
/// decision is missed without a second read.
/// </summary>
internal sealed class ApprovalHub : IApprovalEvents
{
    /// <summary>How many recent wakes are remembered for waiters that read before they registered.</summary>
    internal const int RememberedWakes = 16_384;

    /// <summary>How many recently announced requests are kept for the decisions that follow.</summary>
    internal const int RememberedAnnouncements = 4_096;

    private readonly Dictionary<string, Slot> _slots = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _recentWakes = new(StringComparer.Ordinal);
    private readonly Queue<(string Key, long Version)> _wakeOrder = new();
    private long _version;
    private long _forgottenBefore;

    // Requests announced here recently (created here, or told by another node), by id: their
    // immutable parts (user, payload) spare a decision a database read. Bounded like the wakes.
    private readonly ConcurrentDictionary<string, ApprovalRecord> _announced = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ApprovalRecord> _announcedByHandle = new(StringComparer.Ordinal);
    private readonly Queue<string> _announcedOrder = new(); // under the _slots lock, like the wakes
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<Channel<StreamEvent>, byte>> _streams = new(StringComparer.Ordinal);

    // Each device's streams on this node, oldest first (under their own lock).
    private readonly Dictionary<string, LinkedList<Subscription>> _deviceStreams = new(StringComparer.Ordinal);

    public int WaiterCount
    {
        get
        {
            lock (_slots)
            {
                return _slots.Count;
            }
        }
    }

    /// <summary>Counts wakes; read it before reading a request's state, and pass it to <see cref="Watch"/>.</summary>
    public long Version => Interlocked.Read(ref _version);

    /// <summary>
    /// Registers interest in one request; dispose when done waiting. The watch starts signalled when the
    /// request was woken after <paramref name="readAtVersion"/> (or when that is too long ago to tell).
    /// </summary>
    public Watch Watch(string approvalId, long readAtVersion)
    {
        lock (_slots)
        {
            if (readAtVersion < _forgottenBefore || (_recentWakes.TryGetValue(approvalId, out var wokenAt) && wokenAt > readAtVersion))
            {
                return new Watch(this, approvalId, Slot.Signalled);
            }
            if (!_slots.TryGetValue(approvalId, out var slot))
            {
                slot = new Slot();
                _slots[approvalId] = slot;
            }
            slot.References++;
            return new Watch(this, approvalId, slot);
        }
    }

    /// <summary>The request changed state (decided, expired, cancelled): wake every waiter, telling them the new state.</summary>
    public void Settled(string approvalId, string userId, string state)
    {
        Wake(approvalId, state);
        Publish(userId, new StreamEvent(state, approvalId, null));
    }

    /// <summary>
    /// <paramref name="approval"/> settled: its user hears of it and, when it was read with its approvers (a shared
    /// request, <see cref="IApprovalStore.WithApproversAsync"/>), each of them.
    /// </summary>
    public void Settled(ApprovalRecord approval, string state)
    {
        if (approval.EligibleUsers is { Count: > 0 } eligible)
        {
            Settled(approval.Id, eligible.Prepend(approval.UserId).Distinct(StringComparer.Ordinal), state);
        }
        else
        {
            Settled(approval.Id, approval.UserId, state);
        }
    }

    /// <summary>A quorum request changed state: every eligible approver's streams hear of it (docs/policies.md §3).</summary>
    public void Settled(string approvalId, IEnumerable<string> userIds, string state)
    {
        Wake(approvalId, state);
        foreach (var userId in userIds)
        {
            Publish(userId, new StreamEvent(state, approvalId, null));
        }
    }

    /// <summary>Wakes whoever watches <paramref name="key"/> (a request id, or a device authorization that just got its request).</summary>
    public void Wake(string key, string? state = null)
    {
        Slot? slot;
        lock (_slots)
        {
            // Forgotten with the wake, under one lock: whoever found it announced after taking Version is woken,
            // and an announcement arriving after this (see Created) is refused.
            Forget(key);
            _slots.Remove(key, out slot);
            var version = ++_version;
            _recentWakes[key] = version;
            _wakeOrder.Enqueue((key, version));
            if (_wakeOrder.Count > RememberedWakes)
            {
                var (old, oldVersion) = _wakeOrder.Dequeue();
                if (_recentWakes.TryGetValue(old, out var latest) && latest == oldVersion)
                {
                    _recentWakes.Remove(old);
                }
                _forgottenBefore = oldVersion;
            }
        }
        slot?.Signal.TrySetResult(state);
    }

    /// <summary>Wakes every waiter so each re-reads its request (after a lost cross-node notification channel).</summary>
    public void WakeAll()
    {
        List<Slot> all;
        lock (_slots)
        {
            all = [.. _slots.Values];
            _slots.Clear();
            // Whatever read before now may have missed a wake: their watches start signalled.
            _forgottenBefore = ++_version;
            // And what this node believed pending may have been settled unheard: ask the database again.
            _announced.Clear();
            _announcedByHandle.Clear();
        }

        foreach (var slot in all)
        {
            slot.Signal.TrySetResult(null);
        }
    }

    public void Created(ApprovalRecord approval)
    {
        lock (_slots)
        {
            if (_recentWakes.ContainsKey(approval.Id))
            {
                // Settled before this announcement got here (another node was quicker than this thread): nothing to announce.
                return;
            }
            _announced[approval.Id] = approval;
            if (approval.HandleHash.Length > 0)
            {
                _announcedByHandle[Convert.ToHexString(approval.HandleHash)] = approval;
            }
            _announcedOrder.Enqueue(approval.Id);
            if (_announcedOrder.Count > RememberedAnnouncements)
            {
                Forget(_announcedOrder.Dequeue());
            }
        }
        // A quorum request goes to every eligible approver's devices (docs/policies.md §3), not to its user's.
        foreach (var userId in approval.EligibleUsers is { Count: > 0 } eligible ? eligible : [approval.UserId])
        {
            Publish(userId, new StreamEvent(StreamEvents.Approval, approval.Id, approval));
        }
    }

    /// <summary>
    /// A request announced here and not yet settled as far as this node has heard. Only its immutable
    /// parts (user, client, payload, expiry) may be relied on: its state is checked where it changes.
    /// </summary>
    public ApprovalRecord? Announced(string approvalId) => _announced.GetValueOrDefault(approvalId);

    /// <summary>
    /// A request created on this node, by its handle's hash, while no settlement of it has reached this
    /// node: still pending as far as this node knows. Take <see cref="Version"/> before asking, as
    /// before a read: a settlement arriving after this answer wakes a watch from that version.
    /// </summary>
    public ApprovalRecord? AnnouncedByHandle(byte[] handleHash) => _announcedByHandle.GetValueOrDefault(Convert.ToHexString(handleHash));

    private void Forget(string approvalId)
    {
        if (_announced.TryRemove(approvalId, out var gone) && gone.HandleHash.Length > 0)
        {
            _announcedByHandle.TryRemove(Convert.ToHexString(gone.HandleHash), out _);
        }
    }

    /// <summary>Whether any of this user's devices has a stream open here.</summary>
    public bool HasStreams(string userId) => _streams.TryGetValue(userId, out var set) && !set.IsEmpty;

    bool IApprovalEvents.Wants(string userId) => HasStreams(userId);

    void IApprovalEvents.Resync()
    {
        WakeAll();
        ResyncStreams();
    }

    /// <summary>
    /// Every open device stream on this node may have missed news (the cross-node notification channel was lost, or a
    /// stream's buffer overflowed): each is told to read the user's requests again and send what it lacks
    /// (docs/http-api.md §11). A stream that cannot read yet (the database is down too) tries again at the next resync.
    /// </summary>
    public void ResyncStreams()
    {
        List<Subscription> all = [];
        lock (_deviceStreams)
        {
            foreach (var held in _deviceStreams.Values)
            {
                all.AddRange(held);
            }
        }
        foreach (var subscription in all)
        {
            subscription.OweResync();
        }
    }

    /// <summary>
    /// Opens a stream of events for one user's devices, held by <paramref name="deviceId"/>. A device keeps at most
    /// <paramref name="maxPerDevice"/> streams on this node: a new one ends the oldest (docs/http-api.md §11), so
    /// streams a device leaves half-open behind a network change never keep it from a live one.
    /// </summary>
    public Subscription Subscribe(string userId, string deviceId, int maxPerDevice)
    {
        Subscription? owner = null;
        // An event dropped from a full buffer is news the stream missed: it reads the user's requests again instead.
        var channel = Channel.CreateBounded<StreamEvent>(new BoundedChannelOptions(256) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true },
            dropped => owner?.OweResync(wake: false));
        var subscription = owner = new Subscription(this, userId, deviceId, channel);
        List<Subscription>? superseded = null;
        lock (_deviceStreams)
        {
            if (!_deviceStreams.TryGetValue(deviceId, out var held))
            {
                held = new LinkedList<Subscription>();
                _deviceStreams[deviceId] = held;
            }
            subscription.Node = held.AddLast(subscription);
            while (held.Count > maxPerDevice)
            {
                var oldest = held.First!.Value;
                held.RemoveFirst();
                oldest.Node = null;
                (superseded ??= []).Add(oldest);
            }
        }
        _streams.GetOrAdd(userId, _ => new()).TryAdd(channel, 0);
        foreach (var oldest in superseded ?? [])
        {
            oldest.Supersede();
        }
        subscription.EndedOthers = superseded?.Count ?? 0;
        return subscription;
    }

    /// <summary>How many streams <paramref name="deviceId"/> holds on this node.</summary>
    public int StreamCount(string deviceId)
    {
        lock (_deviceStreams)
        {
            return _deviceStreams.TryGetValue(deviceId, out var held) ? held.Count : 0;
        }
    }

    private void Publish(string userId, StreamEvent e)
    {
        if (_streams.TryGetValue(userId, out var set))
        {
            foreach (var channel in set.Keys)
            {
                channel.Writer.TryWrite(e);
            }
        }
    }

    internal void Release(string approvalId, Slot slot)
    {
        lock (_slots)
        {
            // A settled slot was already removed; only the live slot for this id is dropped when its last waiter leaves.
            if (!ReferenceEquals(slot, Slot.Signalled) && --slot.References == 0 && _slots.TryGetValue(approvalId, out var current) && ReferenceEquals(current, slot))
            {
                _slots.Remove(approvalId);
            }
        }
    }

    internal void Unsubscribe(Subscription subscription)
    {
        lock (_deviceStreams)
        {
            if (subscription.Node is { } node && _deviceStreams.TryGetValue(subscription.DeviceId, out var held))
            {
                held.Remove(node);
                subscription.Node = null;
                if (held.Count == 0)
                {
                    _deviceStreams.Remove(subscription.DeviceId);
                }
            }
        }
        if (_streams.TryGetValue(subscription.UserId, out var set))
        {
            set.TryRemove(subscription.Channel, out _);
        }
        subscription.Channel.Writer.TryComplete();
    }

    internal sealed class Subscription(ApprovalHub hub, string userId, string deviceId, Channel<StreamEvent> channel) : IDisposable
    {
        private volatile bool _superseded;
        private int _resyncOwed;

        public ChannelReader<StreamEvent> Reader => channel.Reader;

        /// <summary>Ended because a newer stream of the same device took its place; its reader then completes.</summary>
        public bool Superseded => _superseded;

        /// <summary>How many older streams of the device this one ended.</summary>
        public int EndedOthers { get; internal set; }

        internal string UserId => userId;

        internal string DeviceId => deviceId;

        internal Channel<StreamEvent> Channel => channel;

        /// <summary>Its place in the device's streams (under the hub's lock); null once it left them.</summary>
        internal LinkedListNode<Subscription>? Node { get; set; }

        /// <summary>
        /// Whether the stream must read the user's requests again (it may have missed news); taking it clears it. The
        /// flag is set before the reader is woken, so a reader woken by <see cref="StreamEvent.Resync"/> always finds it.
        /// </summary>
        public bool TakeResync() => Interlocked.Exchange(ref _resyncOwed, 0) == 1;

        /// <summary>Marks the stream as having missed news; wakes its reader unless a write into the channel is already doing so.</summary>
        internal void OweResync(bool wake = true)
        {
            Volatile.Write(ref _resyncOwed, 1);
            if (wake)
            {
                channel.Writer.TryWrite(StreamEvent.Resync);
            }
        }

        /// <summary>Keeps the resync owed without waking the reader: it is retried at the next wake (another resync, an event).</summary>
        public void OweResyncLater() => Volatile.Write(ref _resyncOwed, 1);

        internal void Supersede()
        {
            _superseded = true;
            hub.Unsubscribe(this);
        }

        public void Dispose() => hub.Unsubscribe(this);
    }
}

/// <summary>One waited-on request: a signal shared by every waiter, and how many hold it.</summary>
internal sealed class Slot
{
    /// <summary>Shared by watches that start signalled (with no state told); never stored in the hub.</summary>
    public static readonly Slot Signalled = CreateSignalled();

    /// <summary>Completes with the state the request moved to, when the waker knew it ("approved", "denied", "expired"), else null.</summary>
    public readonly TaskCompletionSource<string?> Signal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public int References;

    private static Slot CreateSignalled()
    {
        var slot = new Slot();
        slot.Signal.SetResult(null);
        return slot;
    }
}

internal sealed class Watch(ApprovalHub hub, string approvalId, Slot slot) : IDisposable
{
    private int _disposed;

    public Task<string?> Signaled => slot.Signal.Task;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            hub.Release(approvalId, slot);
        }
    }
}
