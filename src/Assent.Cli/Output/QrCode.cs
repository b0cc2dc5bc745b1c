using System.Text;
using QRCoder;

namespace Assent.Cli.Output;

/// <summary>A QR code drawn with Unicode half blocks, two modules per character cell, for a phone to scan off the terminal.</summary>
internal static class QrCode
{
    public static string Render(string text)
    {
        using var generator = new QRCodeGenerator();
        using var data = generator.CreateQrCode(text, QRCodeGenerator.ECCLevel.L);
        var matrix = data.ModuleMatrix; // includes the 4-module quiet zone
        var size = matrix.Count;
        var sb = new StringBuilder((size + 1) * (size / 2 + 1));
        // Light modules are drawn (as `qrencode -t UTF8` does), so the code reads on the usual dark terminal background.
        for (var y = 0; y < size; y += 2)
        {
            for (var x = 0; x < size; x++)
            {
                var top = !matrix[y][x];
                var bottom = y + 1 < size ? !matrix[y + 1][x] : true;
                sb.Append((top, bottom) switch
                {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    _ => ' ',
                });
            }
            sb.Append('\n');
        }
        return sb.ToString();
    }
}
