using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Assent.Protocol.WebAuthn;

/// <summary>
/// Public keys already imported, by their exact bytes. Importing a P-256 key is the dearest step of checking an
/// assertion: OpenSSL validates the point in full (on the curve, and of the group's order: a scalar multiplication,
/// as costly as the verification itself), and it was done for every check of every passkey. The same passkey signs
/// in, approves and is checked in a token's evidence again and again, so its import is kept: a key is validated
/// once per process, and a refused key is never kept (it is refused again, in full, each time).
/// </summary>
/// <remarks>
/// Bounded: past <see cref="Capacity"/> keys the cache starts over (keys dropped are freed by their finalizers, so a
/// check still using one is not disturbed). An instance is used under its own lock: .NET does not promise that one
/// <see cref="AsymmetricAlgorithm"/> verifies on several threads at once, and the same passkey rarely does.
/// </remarks>
internal static class ImportedKeys
{
    /// <summary>At most this many keys are kept.</summary>
    internal const int Capacity = 4096;

    private static ConcurrentDictionary<string, AsymmetricAlgorithm> _keys = new(StringComparer.Ordinal);

    /// <summary>How many keys are kept now (tests).</summary>
    internal static int Count => _keys.Count;

    /// <summary>
    /// The imported key named by <paramref name="id"/> (the key's full public bytes, unambiguously encoded), importing it
    /// with <paramref name="import"/> the first time. An import that throws is not kept, and the exception is the caller's.
    /// </summary>
    public static T GetOrImport<T>(string id, Func<T> import) where T : AsymmetricAlgorithm
    {
        var keys = _keys;
        if (keys.TryGetValue(id, out var found) && found is T known)
        {
            return known;
        }
        var imported = import();
        if (keys.Count >= Capacity)
        {
            // Starting over is cheaper than keeping an order of use, and a working set of passkeys this large is rare.
            keys = _keys = new ConcurrentDictionary<string, AsymmetricAlgorithm>(StringComparer.Ordinal);
        }
        var kept = keys.GetOrAdd(id, imported);
        if (!ReferenceEquals(kept, imported))
        {
            // Another thread imported the same key meanwhile: use the one kept, free ours.
            imported.Dispose();
        }
        return (T)kept;
    }
}
