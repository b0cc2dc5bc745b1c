using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;

namespace Assent.Server.Storage;

/// <summary>
/// The hash chain (docs/concepts.md §8.2): <c>hash_n = SHA-256(hash_{n-1} ‖ entry_n)</c>, where entry_n is
/// the canonical JSON written once here and stored byte for byte. Entry 1 chains from 32 zero bytes.
/// </summary>
internal static class AuditChain
{
    public static readonly byte[] Genesis = new byte[32];

    /// <summary>The newest sealed entry: the chain's size and head.</summary>
    public const string HeadSql = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1";

    public static AuditHead ReadHead(System.Data.Common.DbDataReader r) => new(r.GetInt64(0), (byte[])r[1]);

    /// <summary>Canonical entry: fixed member order, no whitespace, data keys sorted ordinally.</summary>
    public static byte[] Canonical(long seq, long timestampMs, AuditEvent e)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("seq", seq);
            w.WriteNumber("ts", timestampMs);
            w.WriteString("type", e.Type);
            WriteNullable(w, "user", e.UserId);
            WriteNullable(w, "actor", e.Actor);
            WriteNullable(w, "subject", e.Subject);
            w.WriteStartObject("data");
            if (e.Data is not null)
            {
                foreach (var (key, value) in e.Data.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    w.WriteString(key, value);
                }
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static readonly byte[] SeqPrefix = "{\"seq\":"u8.ToArray();

    /// <summary>
    /// An entry before its place in the chain is known: <see cref="Canonical"/> without its leading
    /// <c>{"seq":N,</c>. <see cref="Seal"/> puts the sequence number in front, byte for byte as Canonical would.
    /// </summary>
    public static byte[] Unsealed(long timestampMs, AuditEvent e)
    {
        var whole = Canonical(0, timestampMs, e);
        return whole[(SeqPrefix.Length + 2)..];
    }

    /// <summary>The canonical entry at <paramref name="seq"/> from an <see cref="Unsealed"/> body.</summary>
    public static byte[] Seal(long seq, ReadOnlySpan<byte> unsealed)
    {
        Span<byte> digits = stackalloc byte[20];
        if (!System.Buffers.Text.Utf8Formatter.TryFormat(seq, digits, out var written))
        {
            throw new InvalidOperationException("sequence number does not format");
        }
        var entry = new byte[SeqPrefix.Length + written + 1 + unsealed.Length];
        SeqPrefix.CopyTo(entry, 0);
        digits[..written].CopyTo(entry.AsSpan(SeqPrefix.Length));
        entry[SeqPrefix.Length + written] = (byte)',';
        unsealed.CopyTo(entry.AsSpan(SeqPrefix.Length + written + 1));
        return entry;
    }

    public static byte[] Link(ReadOnlySpan<byte> previousHash, ReadOnlySpan<byte> entry)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(previousHash);
        sha.AppendData(entry);
        return sha.GetHashAndReset();
    }

    /// <summary>
    /// Verifies a run of entries starting right after <paramref name="previousHash"/> at
    /// <paramref name="firstSeq"/>. Detects an edited entry (hash mismatch), a deleted or
    /// inserted one (sequence gap or chain break) and reordering (the sequence is inside the hashed bytes).
    /// </summary>
    public static AuditVerification Verify(IEnumerable<AuditRow> rows, long firstSeq = 1, byte[]? previousHash = null)
    {
        var prev = previousHash ?? Genesis;
        var expected = firstSeq;
        long count = 0;
        foreach (var row in rows)
        {
            if (row.Seq != expected)
            {
                return AuditVerification.Broken(count, expected, $"expected entry {expected}, found {row.Seq}: an entry was deleted, inserted or reordered");
            }
            if (!TryReadSeq(row.Entry, out var inner) || inner != row.Seq)
            {
                return AuditVerification.Broken(count, row.Seq, $"entry {row.Seq} does not carry its own sequence number: it was moved or edited");
            }
            var hash = Link(prev, row.Entry);
            if (!CryptographicOperations.FixedTimeEquals(hash, row.Hash))
            {
                return AuditVerification.Broken(count, row.Seq, $"entry {row.Seq} does not hash to its recorded chain value: it or an earlier entry was edited");
            }
            prev = hash;
            expected++;
            count++;
        }
        return new AuditVerification(true, count, prev, null, null);
    }

    private static bool TryReadSeq(byte[] entry, out long seq)
    {
        seq = -1;
        try
        {
            using var doc = JsonDocument.Parse(entry);
            return doc.RootElement.ValueKind == JsonValueKind.Object &&
                   doc.RootElement.TryGetProperty("seq", out var s) && s.TryGetInt64(out seq);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static void WriteNullable(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null)
        {
            w.WriteNull(name);
        }
        else
        {
            w.WriteString(name, value);
        }
    }
}

/// <summary>The chain's last entry: its sequence number is the chain's size.</summary>
internal sealed record AuditHead(long Seq, byte[] Hash);

internal sealed record AuditVerification(bool Valid, long Verified, byte[] Head, long? FailedAt, string? Reason)
{
    public static AuditVerification Broken(long verified, long at, string reason) => new(false, verified, [], at, reason);
}
