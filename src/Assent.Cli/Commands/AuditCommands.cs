using System.CommandLine;
using System.Text;
using System.Text.Json;
using Assent.Cli.Devices;
using Assent.Cli.Output;
using Assent.Client.Verification;
using Assent.Protocol;
using Assent.Protocol.Messages;
using Assent.Server.Storage;

namespace Assent.Cli.Commands;

/// <summary><c>assent audit export|verify</c>: read the hash-chained audit log (docs/concepts.md §8.2) and check that no entry was edited, removed or reordered.</summary>
internal static class AuditCommands
{
    private const int PageSize = 1000;

    public static Command Build() =>
        new("audit", "Export and verify the hash-chained audit log. Example: assent audit export --json > audit.json && assent audit verify audit.json")
        {
            Export(), Verify(),
        };

    private static Command Export()
    {
        var after = new Option<long>("--after") { Description = "Only entries after this sequence number (default 0: all)" };
        var server = new Option<string?>("--server") { Description = "Use the device enrolled with this server" };
        var device = new Option<string?>("--device") { Description = "The local device to sign the request with" };
        var json = StoreOptions.Json();
        var command = new Command("export", """
            Export the audit entries this device's user may read (an admin reads all), signed with the device key.
            Example: assent audit export --json > audit.json
            """)
        {
            after, server, device, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var start = parse.GetValue(after);
            if (start < 0)
            {
                throw CliException.Usage("--after must be 0 or more");
            }
            var url = parse.GetValue(server) is { } s ? ServerUrl.Parse(s, "--server") : null;
            var selected = LocalDevices.ForCurrentUser().Select(parse.GetValue(device), url);
            using var client = DeviceCommands.ClientFor(selected);
            // The checkpoint first: every entry it counts is then in the export, and one appended meanwhile only makes the export longer.
            var checkpoint = await client.ReadAuditCheckpointAsync(ct);
            // A checkpoint proves nothing unless it is the issuer's: checked now, while its key is surely published.
            await CheckSignatureAsync(checkpoint, selected.Server, "the server's checkpoint", ct);
            var entries = new List<AuditEntry>();
            long? next = start;
            while (next is { } cursor)
            {
                var page = await client.ReadAuditAsync(cursor, PageSize, ct);
                entries.AddRange(page.Entries);
                next = page.Entries.Count == 0 ? null : page.Next;
            }
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(new AuditExport(selected.Server, start, checkpoint, entries), CliJson.Default.AuditExport);
                return ExitCodes.Success;
            }
            foreach (var e in entries)
            {
                var text = Base64Url.TryDecode(e.Entry, out var bytes) ? Encoding.UTF8.GetString(bytes) : "(not base64url)";
                await Console.Out.WriteLineAsync($"{e.Seq,8}  {Terminal.Visible(text)}");
            }
            await Console.Out.WriteLineAsync($"{entries.Count} entries; the log holds {checkpoint.Size}. Save them with --json and check them with: assent audit verify FILE");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Verify()
    {
        var file = new Argument<string?>("FILE") { Description = "An export from 'assent audit export --json' (or - for stdin)", Arity = ArgumentArity.ZeroOrOne };
        var (data, database, json) = (StoreOptions.Data(), StoreOptions.Database(), StoreOptions.Json());
        var offline = new Option<bool>("--offline")
        {
            Description = "With FILE: do not ask the export's server for its keys; the checkpoint's signature is then not checked (its signed fields still are)",
        };
        var command = new Command("verify", """
            Verify the audit hash chain, offline from the server's data (--data/--database) or from an exported file. Exit 1 names the first broken entry.
            Example: assent audit verify --data ./assent-data
            """)
        {
            file, data, database, json, offline,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var path = parse.GetValue(file);
            if (path is not null && (parse.GetValue(data) is not null || parse.GetValue(database) is not null))
            {
                throw CliException.Usage("give either FILE or --data/--database, not both");
            }
            if (path is null && parse.GetValue(offline))
            {
                throw CliException.Usage("--offline is for an exported FILE; --data/--database are always read offline");
            }
            AuditVerification result;
            string source;
            if (path is null)
            {
                var options = StoreOptions.Read(parse, data, database, null);
                if (options.Database is null && !Directory.Exists(options.DataDirectory))
                {
                    throw CliException.Usage($"no data directory at {Path.GetFullPath(options.DataDirectory)}; pass --data DIR or an exported FILE");
                }
                result = await AdminCommands.WithStoreAsync(options, async (store, _) => AuditChain.Verify(await ReadAllAsync(store, ct)), ct);
                source = options.Database is null ? Path.GetFullPath(options.DataDirectory) : "the database";
            }
            else
            {
                (result, source) = await VerifyFileAsync(path, !parse.GetValue(offline), ct);
            }
            var head = result.Valid ? Base64Url.Encode(result.Head) : null;
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(new AuditVerifyOutput(result.Valid, result.Verified, head, result.FailedAt, result.Reason), CliJson.Default.AuditVerifyOutput);
            }
            if (!result.Valid)
            {
                await Console.Error.WriteLineAsync($"audit chain of {source} is broken at entry {result.FailedAt}: {result.Reason} ({result.Verified} entries before it verified)");
                return ExitCodes.DeniedOrInvalid;
            }
            if (!parse.GetValue(json))
            {
                await Console.Out.WriteLineAsync($"audit chain of {source} intact: {result.Verified} entries, head {head}");
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    private static async Task<List<AuditRow>> ReadAllAsync(AssentStore store, CancellationToken ct)
    {
        var rows = new List<AuditRow>();
        while (true)
        {
            var page = await store.Audit.ReadAsync(rows.Count == 0 ? 0 : rows[^1].Seq, PageSize, null, ct);
            rows.AddRange(page);
            if (page.Count < PageSize)
            {
                return rows;
            }
        }
    }

    /// <summary>
    /// A signed checkpoint commits the server to its first <c>size</c> entries (docs/concepts.md §8.3): a verified
    /// chain that ends before it was cut, and one that goes past it must pass through its head.
    /// </summary>
    internal static AuditVerification? Against(AuditCheckpoint checkpoint, IReadOnlyList<AuditRow> rows, long verified)
    {
        var last = rows[^1].Seq;
        if (checkpoint.Size > last)
        {
            return AuditVerification.Broken(verified, last + 1,
                $"the chain ends at entry {last} but the server's checkpoint counts {checkpoint.Size}: entries were cut from the end");
        }
        var first = rows[0].Seq;
        if (checkpoint.Size < first)
        {
            // The checkpoint lies before the export's anchor; only an export from entry 1 (or an earlier one) reaches it.
            return checkpoint.Size == 0 && !HeadIs(checkpoint, AuditChain.Genesis)
                ? AuditVerification.Broken(0, 0, "the checkpoint of an empty log does not hold the genesis head")
                : null;
        }
        // Every row's recorded hash was recomputed by the chain check, so the row at the checkpoint's size holds the chain's head there.
        var at = rows[(int)(checkpoint.Size - first)];
        return HeadIs(checkpoint, at.Hash)
            ? null
            : AuditVerification.Broken(checkpoint.Size - first, checkpoint.Size,
                $"the chain's head at entry {checkpoint.Size} differs from the server's checkpoint of that size: the log was rewritten");
    }

    private static bool HeadIs(AuditCheckpoint checkpoint, byte[] head) =>
        Base64Url.TryDecode(checkpoint.Head, out var expected) && expected.AsSpan().SequenceEqual(head);

    /// <summary>
    /// The checkpoint's JWS (docs/tokens.md §10) must be the issuer's and sign exactly its size, head and time; otherwise
    /// exit 1 (69 when the issuer's keys cannot be read).
    /// </summary>
    private static async Task CheckSignatureAsync(AuditCheckpoint checkpoint, string issuer, string what, CancellationToken ct)
    {
        try
        {
            using var verifier = new AuditCheckpointVerifier(issuer);
            await verifier.VerifyAsync(checkpoint, ct);
        }
        catch (TokenVerificationException e) when (e.Code == TokenErrors.JwksUnavailable)
        {
            throw new CliException(ExitCodes.Unavailable, $"cannot check {what}'s signature: {e.Message}; 'assent audit verify --offline FILE' checks the chain without it");
        }
        catch (TokenVerificationException e)
        {
            throw CliException.Invalid($"{what} is not signed by {issuer}: {e.Message}");
        }
        catch (ArgumentException)
        {
            throw CliException.Invalid($"{what} names no server to check it with ('{Terminal.Visible(issuer)}' is not an http(s) URL); 'assent audit verify --offline FILE' checks the chain without it");
        }
    }

    private static async Task<(AuditVerification Result, string Source)> VerifyFileAsync(string path, bool online, CancellationToken ct)
    {
        AuditExport? export;
        try
        {
            var bytes = path == "-" ? Encoding.UTF8.GetBytes(await Console.In.ReadToEndAsync(ct)) : await File.ReadAllBytesAsync(path, ct);
            export = JsonSerializer.Deserialize(bytes, CliJson.Default.AuditExport);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw CliException.Usage($"cannot read {path}: {e.Message}");
        }
        catch (JsonException e)
        {
            throw CliException.Invalid($"{path} is not an export from 'assent audit export --json': {e.Message}");
        }
        var rows = new List<AuditRow>();
        foreach (var e in export?.Entries ?? [])
        {
            if (!Base64Url.TryDecode(e.Entry, out var entry) || !Base64Url.TryDecode(e.Hash, out var hash))
            {
                return (AuditVerification.Broken(rows.Count, e.Seq, $"entry {e.Seq} is not base64url"), path);
            }
            rows.Add(new AuditRow(e.Seq, entry, hash));
        }
        var after = export?.After ?? 0;
        var checkpoint = export?.Checkpoint;
        if (checkpoint is not null)
        {
            try
            {
                AuditCheckpointVerifier.CheckPayload(checkpoint);
            }
            catch (TokenVerificationException e)
            {
                throw CliException.Invalid($"the checkpoint in {path} is not one a server signed: {e.Message}");
            }
            if (online)
            {
                await CheckSignatureAsync(checkpoint, export!.Server, $"the checkpoint in {path}", ct);
            }
            path += online ? $" (checkpoint of {checkpoint.Size} signed by {export!.Server})" : " (checkpoint's signature not checked: --offline)";
        }
        if (rows.Count == 0)
        {
            return (checkpoint is not null && checkpoint.Size > after
                ? AuditVerification.Broken(0, after + 1, $"the export holds no entries but the server's checkpoint counts {checkpoint.Size}: the log was cut")
                : new AuditVerification(true, 0, AuditChain.Genesis, null, null), path);
        }
        // An export that starts after entry 1 is anchored on its first entry's recorded hash: only what follows is proven.
        AuditVerification result;
        if (rows[0].Seq == 1)
        {
            result = AuditChain.Verify(rows);
        }
        else
        {
            var rest = AuditChain.Verify(rows.Skip(1), rows[0].Seq + 1, rows[0].Hash);
            result = rest.Valid ? rest with { Verified = rest.Verified + 1 } : rest;
        }
        if (result.Valid && checkpoint is not null && Against(checkpoint, rows, result.Verified) is { } broken)
        {
            return (broken, path);
        }
        if (!result.Valid && rows.Count > 0 && result.Reason?.Contains("deleted, inserted") == true)
        {
            result = result with { Reason = result.Reason + " (an export by a non-admin holds only that user's entries; export with an admin's device for a whole chain)" };
        }
        return (result, path);
    }
}
