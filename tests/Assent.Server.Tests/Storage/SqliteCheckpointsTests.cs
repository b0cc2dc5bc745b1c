using Assent.Server.Storage.Sqlite;

namespace Assent.Server.Tests.Storage;

/// <summary>
/// The checkpoint thread's decision after each round (docs/storage.md §4): below the mark nothing is prepared; past it the
/// thread syncs and runs another round while much was appended since the one before, at most a few more, and then tells
/// the writer to catch up. Which rounds a real run reaches depends on the disk's speed, so the decision is tested alone.
/// </summary>
public sealed class SqliteCheckpointsTests
{
    private const long Mark = SqliteDatabase.CatchUpFrames;
    private const long Short = SqliteDatabase.ShortRemainder;

    [Theory]
    [InlineData(0L, 0L, 0, false)]
    [InlineData(Mark - 1, Mark - 400, 0, false)]
    [InlineData(Mark - 1, Mark - 400, 2, false)] // the log started over while a catch-up was being prepared
    [InlineData(Mark - 1, Mark - 400, 0, true)]
    public void Below_the_mark_nothing_is_prepared(long frames, long previous, int preparing, bool synced) =>
        Assert.Equal(0, SqliteDatabase.PreparingAfter(frames, previous, preparing, synced));

    [Theory]
    [InlineData(Mark, Mark - 400, 0, 1)]
    [InlineData(Mark + 900, Mark, 1, 2)]
    [InlineData(Mark + 900 + Short + 1, Mark + 900, 2, 3)]
    public void Past_the_mark_a_synced_round_that_found_much_appended_is_followed_by_another(long frames, long previous, int preparing, int next) =>
        Assert.Equal(next, SqliteDatabase.PreparingAfter(frames, previous, preparing, synced: true));

    [Theory]
    [InlineData(Mark + 100, Mark + 100 - Short, 1)] // little appended since the round before: nothing more to gain
    [InlineData(Mark, Mark, 0)]
    [InlineData(Mark + 3000, Mark + 1000, SqliteDatabase.PreparingRounds)] // as many more rounds as allowed
    public void Past_the_mark_the_writer_is_told_once_rounds_no_longer_shorten_its_catch_up(long frames, long previous, int preparing) =>
        Assert.Null(SqliteDatabase.PreparingAfter(frames, previous, preparing, synced: true));

    [Fact]
    public void Past_the_mark_files_that_could_not_be_synced_tell_the_writer_at_once_to_sync_them_itself() =>
        Assert.Null(SqliteDatabase.PreparingAfter(Mark + 900, Mark, 0, synced: false));
}
