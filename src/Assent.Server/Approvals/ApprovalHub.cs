using System.Collections.Concurrent;
using System.Threading.Channels;
using Assent.Server.Storage;

namespace Assent.Server.Approvals;

/// <summary>What a device stream is told.</summary>
internal sealed record StreamEvent(string Type, string ApprovalId, ApprovalRecord? Approval);

/// <summary>
/// In-process fan-out: agents held by <c>Prefer: wait</c> are woken when their request is
/// decided or expires, and each user's open device streams hear of new and settled requests.
/// A waiter registers before it re-reads the state, so a decision landing in between is never missed.
/// </summary>
internal sealed class ApprovalHub
{
    private readonly Dictionary<string, Slot> _slots = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<Channel<StreamEvent>, byte>> _streams = new(StringComparer.Ordinal);

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

    /// <summary>Registers interest in one request; dispose when done waiting.</summary>
    public Watch Watch(string approvalId)
    {
        lock (_slots)
        {
            if (!_slots.TryGetValue(approvalId, out var slot))
            {
                slot = new Slot();
                _slots[approvalId] = slot;
            }
            slot.References++;
            return new Watch(this, approvalId, slot);
        }
    }

    /// <summary>The request changed state (decided, expired, cancelled): wake every waiter.</summary>
    public void Settled(string approvalId, string userId, string state)
    {
        Wake(approvalId);
        Publish(userId, new StreamEvent(state, approvalId, null));
    }

    /// <summary>Wakes whoever watches <paramref name="key"/> (a request id, or a device authorization that just got its request).</summary>
    public void Wake(string key)
    {
        Slot? slot;
        lock (_slots)
        {
            _slots.Remove(key, out slot);
        }
        slot?.Signal.TrySetResult();
    }

    /// <summary>Wakes every waiter so each re-reads its request (after a lost cross-node notification channel).</summary>
    public void WakeAll()
    {
        List<Slot> all;
        lock (_slots)
        {
            all = [.. _slots.Values];
            _slots.Clear();
        }
        foreach (var slot in all)
        {
            slot.Signal.TrySetResult();
        }
    }

    public void Created(ApprovalRecord approval) => Publish(approval.UserId, new StreamEvent("approval", approval.Id, approval));

    /// <summary>Opens a stream of events for one user's devices.</summary>
    public Subscription Subscribe(string userId)
    {
        var channel = Channel.CreateBounded<StreamEvent>(new BoundedChannelOptions(256) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
        _streams.GetOrAdd(userId, _ => new()).TryAdd(channel, 0);
        return new Subscription(this, userId, channel);
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
            if (--slot.References == 0 && _slots.TryGetValue(approvalId, out var current) && ReferenceEquals(current, slot))
            {
                _slots.Remove(approvalId);
            }
        }
    }

    internal void Unsubscribe(string userId, Channel<StreamEvent> channel)
    {
        if (_streams.TryGetValue(userId, out var set))
        {
            set.TryRemove(channel, out _);
            channel.Writer.TryComplete();
        }
    }

    internal sealed class Subscription(ApprovalHub hub, string userId, Channel<StreamEvent> channel) : IDisposable
    {
        public ChannelReader<StreamEvent> Reader => channel.Reader;

        public void Dispose() => hub.Unsubscribe(userId, channel);
    }
}

/// <summary>One waited-on request: a signal shared by every waiter, and how many hold it.</summary>
internal sealed class Slot
{
    public readonly TaskCompletionSource Signal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public int References;
}

internal sealed class Watch(ApprovalHub hub, string approvalId, Slot slot) : IDisposable
{
    private int _disposed;

    public Task Signaled => slot.Signal.Task;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            hub.Release(approvalId, slot);
        }
    }
}
