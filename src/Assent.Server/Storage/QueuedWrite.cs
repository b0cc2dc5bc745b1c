namespace Assent.Server.Storage;

/// <summary>
/// A write waiting for its group commit. The outcome is only published once the batch's commit has
/// succeeded (or the batch failed as a whole), so a caller never sees a result that was rolled back.
/// </summary>
internal interface IQueuedWrite
{
    /// <summary>This item alone failed; its changes were rolled back.</summary>
    void Failed(Exception error);

    /// <summary>The batch committed: hand over the result, or this item's own failure.</summary>
    void Publish();

    /// <summary>Nothing of the batch committed.</summary>
    void Abort(Exception error);
}

internal abstract class QueuedWrite<T> : IQueuedWrite
{
    private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private T? _result;
    private Exception? _error;

    public Task<T> Completion => _completion.Task;

    /// <summary>Records what the work returned; a replay after a failed batch overwrites an earlier attempt.</summary>
    protected void Ran(T result)
    {
        _error = null;
        _result = result;
    }

    public void Failed(Exception error) => _error = error;

    public void Publish()
    {
        if (_error is null)
        {
            _completion.TrySetResult(_result!);
        }
        else
        {
            _completion.TrySetException(_error);
        }
    }

    public void Abort(Exception error) => _completion.TrySetException(error);
}
