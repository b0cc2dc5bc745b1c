using System.Buffers.Binary;
using System.Text;

namespace Assent.Server.Tests.Passkeys;

/// <summary>A map to encode, entries in the given order (duplicates allowed, for refusal tests).</summary>
internal sealed record TestCborMap(IReadOnlyList<(object Key, object? Value)> Entries);

/// <summary>Bytes spliced into the encoding as they are.</summary>
internal sealed record TestCborRaw(byte[] Bytes);

/// <summary>A minimal CBOR (RFC 8949) encoder for building fixtures; test code only.</summary>
internal static class TestCbor
{
    public static TestCborMap Map(params (object Key, object? Value)[] entries) => new(entries);

    public static byte[] Encode(object? value)
    {
        var output = new List<byte>();
        Write(output, value);
        return [.. output];
    }

    private static void Write(List<byte> output, object? value)
    {
        switch (value)
        {
            case null:
                output.Add(0xf6);
                break;
            case bool b:
                output.Add(b ? (byte)0xf5 : (byte)0xf4);
                break;
            case int i:
                Write(output, (long)i);
                break;
            case long l when l >= 0:
                Header(output, 0, (ulong)l);
                break;
            case long l:
                Header(output, 1, (ulong)(-1 - l));
                break;
            case byte[] bytes:
                Header(output, 2, (ulong)bytes.Length);
                output.AddRange(bytes);
                break;
            case string text:
                var utf8 = Encoding.UTF8.GetBytes(text);
                Header(output, 3, (ulong)utf8.Length);
                output.AddRange(utf8);
                break;
            case object?[] items:
                Header(output, 4, (ulong)items.Length);
                foreach (var item in items)
                {
                    Write(output, item);
                }
                break;
            case TestCborMap map:
                Header(output, 5, (ulong)map.Entries.Count);
                foreach (var (key, item) in map.Entries)
                {
                    Write(output, key);
                    Write(output, item);
                }
                break;
            case TestCborRaw raw:
                output.AddRange(raw.Bytes);
                break;
            default:
                throw new ArgumentException($"cannot encode {value.GetType()}");
        }
    }

    private static void Header(List<byte> output, int major, ulong argument)
    {
        var m = (byte)(major << 5);
        Span<byte> buffer = stackalloc byte[8];
        switch (argument)
        {
            case < 24:
                output.Add((byte)(m | (byte)argument));
                break;
            case <= byte.MaxValue:
                output.Add((byte)(m | 24));
                output.Add((byte)argument);
                break;
            case <= ushort.MaxValue:
                output.Add((byte)(m | 25));
                BinaryPrimitives.WriteUInt16BigEndian(buffer, (ushort)argument);
                output.AddRange(buffer[..2]);
                break;
            case <= uint.MaxValue:
                output.Add((byte)(m | 26));
                BinaryPrimitives.WriteUInt32BigEndian(buffer, (uint)argument);
                output.AddRange(buffer[..4]);
                break;
            default:
                output.Add((byte)(m | 27));
                BinaryPrimitives.WriteUInt64BigEndian(buffer, argument);
                output.AddRange(buffer);
                break;
        }
    }
}
