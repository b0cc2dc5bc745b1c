using System.Buffers.Binary;
using System.Text;
using System.Text.Unicode;

namespace Assent.Protocol.WebAuthn;

/// <summary>A decoded CBOR data item from the subset WebAuthn uses.</summary>
internal abstract record CborValue;

internal sealed record CborInteger(long Value) : CborValue;

/// <summary>A byte string. Record equality compares the array reference; byte strings are never map keys here.</summary>
internal sealed record CborByteString(byte[] Value) : CborValue;

internal sealed record CborTextString(string Value) : CborValue;

internal sealed record CborArray(IReadOnlyList<CborValue> Items) : CborValue;

/// <summary>A map whose keys are integers or text strings, all distinct.</summary>
internal sealed record CborMap(IReadOnlyDictionary<CborValue, CborValue> Entries) : CborValue
{
    public CborValue? this[long key] => Entries.GetValueOrDefault(new CborInteger(key));

    public CborValue? this[string key] => Entries.GetValueOrDefault(new CborTextString(key));
}

internal sealed record CborBoolean(bool Value) : CborValue;

internal sealed record CborNull : CborValue;

/// <summary>The only failure <see cref="Cbor"/> ever raises.</summary>
internal sealed class CborException(string message) : Exception(message);

/// <summary>
/// A strict decoder for the CBOR (RFC 8949) subset WebAuthn needs: integers that fit a
/// <see cref="long"/>, byte and UTF-8 text strings, arrays, maps with integer or text keys,
/// and the simple values false, true and null.
/// </summary>
/// <remarks>
/// Refused: indefinite lengths (RFC 8949 §3.2), tags (§3.4), floats, undefined and other
/// simple values (§3.3), reserved additional information 28–30 (§3.1), duplicate map keys
/// (§5.6), and non-shortest-form arguments — CTAP2 canonical encoding (CTAP 2.1 §8 "Message
/// Encoding") requires the shortest form, and WebAuthn L3 §6.5.1 says attestation objects
/// use it. Map key order is not checked. Nesting is capped at <see cref="MaxDepth"/>, and no
/// allocation is ever sized from a declared length before that length is checked against the
/// bytes actually left.
/// </remarks>
internal static class Cbor
{
    public const int MaxDepth = 16;

    private const int MajorUnsigned = 0;
    private const int MajorNegative = 1;
    private const int MajorBytes = 2;
    private const int MajorText = 3;
    private const int MajorArray = 4;
    private const int MajorMap = 5;
    private const int MajorTag = 6;
    private const int MajorSimple = 7;

    /// <summary>Decodes exactly one data item that must span the whole input.</summary>
    public static CborValue Decode(ReadOnlySpan<byte> data)
    {
        var value = DecodeFirst(data, out var consumed);
        if (consumed != data.Length)
        {
            throw new CborException($"{data.Length - consumed} trailing bytes after the data item");
        }
        return value;
    }

    /// <summary>Decodes the first data item and reports how many bytes it took (RFC 8949 §5.1 sequences).</summary>
    public static CborValue DecodeFirst(ReadOnlySpan<byte> data, out int consumed)
    {
        var position = 0;
        var value = Read(data, ref position, 0);
        consumed = position;
        return value;
    }

    private static CborValue Read(ReadOnlySpan<byte> data, ref int position, int depth)
    {
        if (depth >= MaxDepth)
        {
            throw new CborException($"nesting deeper than {MaxDepth}");
        }
        if (position >= data.Length)
        {
            throw new CborException("unexpected end of input");
        }
        var initial = data[position++];
        var major = initial >> 5;
        var info = initial & 0x1f;

        if (major == MajorSimple)
        {
            // RFC 8949 §3.3: 20 false, 21 true, 22 null; everything else (undefined, floats, break) is refused.
            return info switch
            {
                20 => new CborBoolean(false),
                21 => new CborBoolean(true),
                22 => new CborNull(),
                _ => throw new CborException($"unsupported simple value or float (additional information {info})"),
            };
        }
        if (major == MajorTag)
        {
            throw new CborException("tags are not supported");
        }

        var argument = ReadArgument(data, ref position, info);
        switch (major)
        {
            case MajorUnsigned:
                if (argument > long.MaxValue)
                {
                    throw new CborException("unsigned integer does not fit a 64-bit signed integer");
                }
                return new CborInteger((long)argument);
            case MajorNegative:
                // RFC 8949 §3.1: the value is -1 - argument.
                if (argument > long.MaxValue)
                {
                    throw new CborException("negative integer does not fit a 64-bit signed integer");
                }
                return new CborInteger(-1 - (long)argument);
            case MajorBytes:
                return new CborByteString(ReadSpan(data, ref position, argument).ToArray());
            case MajorText:
                var utf8 = ReadSpan(data, ref position, argument);
                if (!Utf8.IsValid(utf8))
                {
                    throw new CborException("text string is not valid UTF-8");
                }
                return new CborTextString(Encoding.UTF8.GetString(utf8));
            case MajorArray:
                return ReadArray(data, ref position, argument, depth);
            default:
                return ReadMap(data, ref position, argument, depth);
        }
    }

    private static CborArray ReadArray(ReadOnlySpan<byte> data, ref int position, ulong count, int depth)
    {
        // Every item takes at least one byte, so a count above what is left is a lie.
        if (count > (ulong)(data.Length - position))
        {
            throw new CborException("array declares more items than bytes remain");
        }
        var items = new List<CborValue>((int)Math.Min(count, 16));
        for (var i = 0UL; i < count; i++)
        {
            items.Add(Read(data, ref position, depth + 1));
        }
        return new CborArray(items);
    }

    private static CborMap ReadMap(ReadOnlySpan<byte> data, ref int position, ulong count, int depth)
    {
        if (count > (ulong)(data.Length - position) / 2)
        {
            throw new CborException("map declares more entries than bytes remain");
        }
        var entries = new Dictionary<CborValue, CborValue>((int)Math.Min(count, 16));
        for (var i = 0UL; i < count; i++)
        {
            var key = Read(data, ref position, depth + 1);
            if (key is not (CborInteger or CborTextString))
            {
                throw new CborException("map keys must be integers or text strings");
            }
            var value = Read(data, ref position, depth + 1);
            // RFC 8949 §5.6: a map with duplicate keys is not valid.
            if (!entries.TryAdd(key, value))
            {
                throw new CborException("duplicate map key");
            }
        }
        return new CborMap(entries);
    }

    private static ulong ReadArgument(ReadOnlySpan<byte> data, ref int position, int info)
    {
        if (info < 24)
        {
            return (ulong)info;
        }
        var size = info switch
        {
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            31 => throw new CborException("indefinite lengths are not supported"),
            _ => throw new CborException($"reserved additional information {info}"),
        };
        if (size > data.Length - position)
        {
            throw new CborException("unexpected end of input in an argument");
        }
        var bytes = data.Slice(position, size);
        position += size;
        ulong value = size switch
        {
            1 => bytes[0],
            2 => BinaryPrimitives.ReadUInt16BigEndian(bytes),
            4 => BinaryPrimitives.ReadUInt32BigEndian(bytes),
            _ => BinaryPrimitives.ReadUInt64BigEndian(bytes),
        };
        // CTAP 2.1 §8: arguments use the shortest form.
        var smallest = size switch
        {
            1 => 24UL,
            2 => 0x100UL,
            4 => 0x1_0000UL,
            _ => 0x1_0000_0000UL,
        };
        if (value < smallest)
        {
            throw new CborException("argument is not in shortest form");
        }
        return value;
    }

    private static ReadOnlySpan<byte> ReadSpan(ReadOnlySpan<byte> data, ref int position, ulong length)
    {
        if (length > (ulong)(data.Length - position))
        {
            throw new CborException("string is longer than the bytes that remain");
        }
        var span = data.Slice(position, (int)length);
        position += (int)length;
        return span;
    }
}
