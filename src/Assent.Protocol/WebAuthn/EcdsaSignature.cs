namespace Assent.Protocol.WebAuthn;

/// <summary>Strict DER decoding of an ECDSA P-256 signature (WebAuthn L3 §6.5.5, RFC 3279 §2.2.3).</summary>
internal static class EcdsaSignature
{
    private const int FieldSize = 32;
    private const byte SequenceTag = 0x30;
    private const byte IntegerTag = 0x02;

    /// <summary>
    /// Converts <c>SEQUENCE { r INTEGER, s INTEGER }</c> to r ‖ s, each left-padded to 32 bytes.
    /// Refuses long-form lengths (never needed at this size), non-minimal or negative integers,
    /// zero, values wider than 256 bits and trailing bytes (X.690 §8.3.2, §10.1).
    /// </summary>
    public static bool TryDerToP1363(ReadOnlySpan<byte> der, Span<byte> p1363)
    {
        if (der.Length < 2 || der[0] != SequenceTag || der[1] >= 0x80 || der[1] != der.Length - 2)
        {
            return false;
        }
        var body = der[2..];
        return TryReadInteger(ref body, p1363[..FieldSize]) &&
               TryReadInteger(ref body, p1363[FieldSize..]) &&
               body.IsEmpty;
    }

    private static bool TryReadInteger(ref ReadOnlySpan<byte> body, Span<byte> destination)
    {
        if (body.Length < 2 || body[0] != IntegerTag || body[1] >= 0x80 || body[1] == 0 || body[1] > body.Length - 2)
        {
            return false;
        }
        var value = body.Slice(2, body[1]);
        body = body[(2 + value.Length)..];
        if (value[0] >= 0x80)
        {
            return false;
        }
        if (value[0] == 0)
        {
            // X.690 §8.3.2: a leading zero octet only when the next octet has its top bit set.
            if (value.Length == 1 || value[1] < 0x80)
            {
                return false;
            }
            value = value[1..];
        }
        if (value.Length > FieldSize)
        {
            return false;
        }
        destination.Clear();
        value.CopyTo(destination[(FieldSize - value.Length)..]);
        return true;
    }
}
