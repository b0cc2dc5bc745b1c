using Assent.Server.Approvals;
using Assent.Server.Common;
using Assent.Server.Storage;

namespace Assent.Server.Tests;

/// <summary>The in-process fan-out: wakes are never missed between a read and a watch, and stale knowledge is never served.</summary>
public sealed class ApprovalHubTests
{
    private static ApprovalRecord Pending(string id, byte[]? handleHash = null) =>
        new(id, handleHash ?? Ids.Hash(id + "-handle"), ApprovalKinds.Ciba, "agt_1", "usr_1", "openid", "hello", null, null, [1, 2, 3],
            ApprovalState.Pending, 0, DateTimeOffset.UtcNow.AddMinutes(5).ToUnixTimeMilliseconds());

    private static async Task WaiterAsync(ApprovalHub hub)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (hub.WaiterCount == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the hold never started waiting");
            await Task.Delay(5);
        }
    }

    [Fact]
    public void A_wake_after_the_read_signals_the_watch_registered_later()
    {
        var hub = new ApprovalHub();
        var readAt = hub.Version;
        hub.Settled("apr_1", "usr_1", "approved");
        using var watch = hub.Watch("apr_1", readAt);
        Assert.True(watch.Signaled.IsCompleted);
    }

    [Fact]
    public async Task A_wake_before_the_read_does_not_signal_and_a_later_one_does_with_its_state()
    {
        var hub = new ApprovalHub();
        hub.Wake("apr_1");
        var readAt = hub.Version;
        using var watch = hub.Watch("apr_1", readAt);
        Assert.False(watch.Signaled.IsCompleted);
        hub.Wake("apr_2");
        Assert.False(watch.Signaled.IsCompleted);
        hub.Settled("apr_1", "usr_1", "denied");
        Assert.True(watch.Signaled.IsCompletedSuccessfully);
        Assert.Equal("denied", await watch.Signaled);
    }

    [Fact]
    public void Wakes_too_old_to_remember_make_every_older_read_stale()
    {
        var hub = new ApprovalHub();
        var readAt = hub.Version;
        for (var i = 0; i <= ApprovalHub.RememberedWakes; i++)
        {
            hub.Wake("apr_" + i);
        }
        using var stale = hub.Watch("apr_never_woken", readAt);
        Assert.True(stale.Signaled.IsCompleted);
        using var fresh = hub.Watch("apr_never_woken", hub.Version);
        Assert.False(fresh.Signaled.IsCompleted);
    }

    [Fact]
    public async Task Waking_everyone_signals_watches_and_forgets_what_was_announced()
    {
        var hub = new ApprovalHub();
        var a = Pending("apr_1");
        hub.Created(a);
        Assert.Same(a, hub.Announced("apr_1"));
        Assert.Same(a, hub.AnnouncedByHandle(a.HandleHash));
        var readAt = hub.Version;
        using var watch = hub.Watch("apr_9", readAt);
        hub.WakeAll();
        Assert.True(watch.Signaled.IsCompleted);
        Assert.Null(await watch.Signaled);
        Assert.Null(hub.Announced("apr_1"));
        Assert.Null(hub.AnnouncedByHandle(a.HandleHash));
        using var afterwards = hub.Watch("apr_9", readAt);
        Assert.True(afterwards.Signaled.IsCompleted);
    }

    [Fact]
    public void A_settled_request_is_no_longer_announced_and_an_announcement_arriving_late_is_refused()
    {
        var hub = new ApprovalHub();
        var a = Pending("apr_1");
        hub.Created(a);
        hub.Settled("apr_1", "usr_1", "approved");
        Assert.Null(hub.Announced("apr_1"));
        Assert.Null(hub.AnnouncedByHandle(a.HandleHash));

        // Another node decided before this node's own announcement ran.
        var b = Pending("apr_2");
        hub.Settled("apr_2", "usr_1", "approved");
        using var sub = hub.Subscribe("usr_1", "dev_1", 4);
        hub.Created(b);
        Assert.Null(hub.AnnouncedByHandle(b.HandleHash));
        Assert.False(sub.Reader.TryRead(out _));
    }

    [Fact]
    public void Announcements_are_bounded()
    {
        var hub = new ApprovalHub();
        for (var i = 0; i <= ApprovalHub.RememberedAnnouncements + 10; i++)
        {
            hub.Created(Pending("apr_" + i));
        }
        Assert.Null(hub.Announced("apr_0"));
        Assert.NotNull(hub.Announced("apr_" + (ApprovalHub.RememberedAnnouncements + 10)));
    }

    [Fact]
    public async Task A_hold_ends_on_an_approved_wake_without_reading_when_the_caller_redeems_the_row_itself()
    {
        var hub = new ApprovalHub();
        var a = Pending("apr_1");
        var reads = 0;
        var readAt = hub.Version;
        var hold = PreferWait.HoldAsync(hub, a.Id, a, readAt, a.ExpiresAt, _ =>
        {
            Interlocked.Increment(ref reads);
            return Task.FromResult<ApprovalRecord?>(a);
        }, TimeSpan.FromSeconds(30), TimeProvider.System, default, approvedWithoutReading: true);
        await WaiterAsync(hub);
        hub.Settled(a.Id, a.UserId, "approved");
        var held = await hold.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(ApprovalState.Approved, held!.State);
        Assert.Equal(0, reads);
    }

    [Fact]
    public async Task A_hold_reads_again_after_a_wake_that_does_not_say_approved()
    {
        var hub = new ApprovalHub();
        var a = Pending("apr_1");
        var denied = a with { State = ApprovalState.Denied };
        var reads = 0;
        var hold = PreferWait.HoldAsync(hub, a.Id, a, hub.Version, a.ExpiresAt, _ =>
        {
            Interlocked.Increment(ref reads);
            return Task.FromResult<ApprovalRecord?>(denied);
        }, TimeSpan.FromSeconds(30), TimeProvider.System, default, approvedWithoutReading: true);
        await WaiterAsync(hub);
        hub.Settled(a.Id, a.UserId, "denied");
        Assert.Equal(ApprovalState.Denied, (await hold.WaitAsync(TimeSpan.FromSeconds(10)))!.State);
        Assert.Equal(1, reads);
    }

    [Fact]
    public void A_resync_wakes_every_open_stream_and_tells_it_once_to_read_again()
    {
        var hub = new ApprovalHub();
        using var first = hub.Subscribe("usr_1", "dev_1", 4);
        using var second = hub.Subscribe("usr_2", "dev_2", 4);
        Assert.False(first.TakeResync());

        ((IApprovalEvents)hub).Resync();

        foreach (var stream in new[] { first, second })
        {
            Assert.True(stream.Reader.TryRead(out var wake));
            Assert.Same(StreamEvent.Resync, wake);
            Assert.True(stream.TakeResync());
            Assert.False(stream.TakeResync());
        }
    }

    [Fact]
    public void A_stream_whose_buffer_overflowed_is_told_to_read_again()
    {
        var hub = new ApprovalHub();
        using var stream = hub.Subscribe("usr_1", "dev_1", 4);
        for (var i = 0; i < 256; i++)
        {
            hub.Created(Pending($"apr_{i}"));
        }
        Assert.False(stream.TakeResync());
        hub.Created(Pending("apr_one_too_many"));
        Assert.True(stream.TakeResync());
    }
}
