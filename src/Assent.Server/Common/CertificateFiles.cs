using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Assent.Server.Common;

/// <summary>Certificates an operator names in settings (trusted attestation roots, the MDS BLOB's root).</summary>
internal static class CertificateFiles
{
    /// <summary>Reads one DER certificate, or every certificate of a PEM file.</summary>
    public static bool TryRead(string path, out X509Certificate2[] certificates, out string error)
    {
        certificates = [];
        error = "";
        if (!File.Exists(path))
        {
            error = $"'{path}' does not exist";
            return false;
        }
        try
        {
            var bytes = File.ReadAllBytes(path);
            if (bytes.AsSpan().IndexOf("-----BEGIN"u8) >= 0)
            {
                var collection = new X509Certificate2Collection();
                collection.ImportFromPem(Encoding.ASCII.GetString(bytes));
                certificates = [.. collection];
            }
            else
            {
                certificates = [X509CertificateLoader.LoadCertificate(bytes)];
            }
        }
        catch (CryptographicException e)
        {
            error = $"'{path}' is not a PEM or DER certificate: {e.Message}";
            return false;
        }
        if (certificates.Length == 0)
        {
            error = $"'{path}' holds no certificate";
            return false;
        }
        return true;
    }
}
