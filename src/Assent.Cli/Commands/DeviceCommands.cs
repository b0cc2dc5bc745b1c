using System.Buffers;
using System.CommandLine;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Assent.Cli.Devices;
using Assent.Cli.Output;
using Assent.Client;
using Assent.Client.Authenticator;
using Assent.Client.Vault;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Messages;
using Spectre.Console;

namespace Assent.Cli.Commands;

/// <summary>
/// <c>assent device …</c>: this computer as an Ed25519 authenticator (docs/concepts.md §2 device kind
/// <c>ed25519</c>). The private key stays in <c>~/.assent/devices/</c>; every call is signed with it.
/// </summary>
internal static partial class DeviceCommands
{
    private static readonly JsonWriterOptions Pretty = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Build() =>
        new("device", "Use this computer as an approving device. Example: assent device approve --all")
        {
            Enroll(), List(), Approve(), Watch(),
        };

    private static Command Enroll()
    {
        var server = new Option<string>("--server") { Description = "The Assent server's URL, as in the invite", Required = true };
        var code = new Option<string>("--code") { Description = "The one-time enrolment code from the invite", Required = true };
        var name = new Option<string?>("--name") { Description = "A name for this device (default: the computer's name)" };
        var json = StoreOptions.Json();
        var command = new Command("enroll", "Enrol this computer as a device with a one-time code. Example: assent device enroll --server http://localhost:8400 --code ABCD-EFGH-JKMN-PQRS")
        {
            server, code, name, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var url = ServerUrl.Parse(parse.GetValue(server)!, "--server");
            var deviceName = parse.GetValue(name) ?? Environment.MachineName;
            var local = LocalDevices.ForCurrentUser();
            using var client = new AuthenticatorClient(url);
            EnrolledDevice enrolled;
            try
            {
                enrolled = await client.EnrollAsync(parse.GetValue(code)!, deviceName, ct);
            }
            catch (AssentProblemException e) when (e.Status == HttpStatusCode.BadRequest)
            {
                throw CliException.Invalid($"enrolment failed: {e.Detail}");
            }
            var file = new DeviceFile(enrolled.Key.DeviceId, ServerUrl.Format(url), enrolled.Issuer, enrolled.UserId, enrolled.UserDid, enrolled.Handle,
                deviceName, Base64Url.Encode(enrolled.Key.Seed), enrolled.PublicKey, DateTimeOffset.UtcNow);
            var path = local.Save(file);
            // docs/vault.md §1: the device's vault key is made at enrolment, beside its signing key.
            using (var signed = ClientFor(file))
            {
                try
                {
                    file = await DeviceVaultKeys.EnsureAsync(local, file, signed, Console.Error, ct);
                }
                catch (AssentProblemException e)
                {
                    await Console.Error.WriteLineAsync($"warning: the vault key was not registered ({e.Detail}); the next command that talks to the server tries again");
                }
            }
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(new EnrollOutput(file.DeviceId, file.UserDid, file.UserId, file.Handle, file.Server, file.Name, path),
                    CliJson.Default.EnrollOutput);
                return ExitCodes.Success;
            }
            await Console.Out.WriteLineAsync($"""
                Enrolled device {file.DeviceId} ('{Terminal.Visible(file.Name)}') for {file.Handle} ({file.UserDid}).
                Key saved to {path} (readable only by you).
                Approve requests with: assent device approve
                """);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command List()
    {
        var server = new Option<string?>("--server") { Description = "Only devices enrolled with this server" };
        var device = DeviceOption();
        var json = StoreOptions.Json();
        var command = new Command("list", "List the devices enrolled here and the user's devices on the server. Example: assent device list --json")
        {
            server, device, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var url = parse.GetValue(server) is { } s ? ServerUrl.Parse(s, "--server") : null;
            var local = LocalDevices.ForCurrentUser();
            var selected = local.Select(parse.GetValue(device), url);
            var views = local.List()
                .Where(d => url is null || ServerUrl.SameServer(d.Server, url))
                .Select(d => new LocalDeviceView(d.DeviceId, d.Server, d.Handle, d.UserDid, d.Name, d.CreatedAt, d.DeviceId == selected.DeviceId))
                .ToList();
            using var client = ClientFor(selected);
            selected = await TryEnsureVaultKeyAsync(selected, client, ct);
            var remote = await client.ListDevicesAsync(ct);
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(new DeviceListOutput(views, remote), CliJson.Default.DeviceListOutput);
                return ExitCodes.Success;
            }
            var console = Terminal.Rich();
            var here = new Table().Title("Enrolled on this computer").AddColumns("", "device", "user", "server", "name", "enrolled");
            here.Columns[1].NoWrap();
            here.Columns[3].NoWrap();
            foreach (var v in views)
            {
                here.AddRow(v.Selected ? "*" : "", v.DeviceId, Markup.Escape(v.Handle), Markup.Escape(v.Server), Markup.Escape(Terminal.Visible(v.Name)), v.CreatedAt.ToString("u"));
            }
            console.Write(here);
            var there = new Table().Title($"{Markup.Escape(remote.Handle)}'s devices at {Markup.Escape(selected.Server)}").AddColumns("device", "kind", "name", "enrolled", "status");
            there.Columns[0].NoWrap();
            foreach (var d in remote.Devices)
            {
                there.AddRow(d.Id, d.Kind, Markup.Escape(Terminal.Visible(d.Name)), DateTimeOffset.FromUnixTimeMilliseconds(d.CreatedAt).ToString("u"),
                    d.Active ? "active" : "[grey]revoked[/]");
            }
            console.Write(there);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Approve()
    {
        var id = new Argument<string?>("ID") { Description = "The request to decide (default: each pending request in turn)", Arity = ArgumentArity.ZeroOrOne };
        var all = new Option<bool>("--all") { Description = "Decide every pending request" };
        var deny = new Option<bool>("--deny") { Description = "Deny instead of approve" };
        var yes = new Option<bool>("--yes", "-y") { Description = "Do not ask for confirmation (required when stdin is not a terminal)" };
        var code = new Option<string?>("--code") { Description = "Sign in a terminal: the code `assent auth login` shows (RFC 8628 user code)" };
        var server = new Option<string?>("--server") { Description = "Use the device enrolled with this server" };
        var device = DeviceOption();
        var json = StoreOptions.Json();
        var command = new Command("approve", "Show pending requests and approve (or --deny) them, signing with this device's key. Example: assent device approve --all --yes")
        {
            id, all, deny, yes, code, server, device, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var (one, every, confirmed, asJson) = (parse.GetValue(id), parse.GetValue(all), parse.GetValue(yes), parse.GetValue(json));
            var decision = parse.GetValue(deny) ? Decisions.Deny : Decisions.Approve;
            var userCode = parse.GetValue(code);
            if ((one is not null ? 1 : 0) + (every ? 1 : 0) + (userCode is not null ? 1 : 0) > 1)
            {
                throw CliException.Usage("give one of an ID, --all or --code");
            }
            if (confirmed && one is null && !every && userCode is null)
            {
                // With --yes nothing is shown before signing, so say which requests on purpose.
                throw CliException.Usage("--yes needs an ID or --all: assent device approve --all --yes");
            }
            if (!confirmed && Console.IsInputRedirected)
            {
                throw CliException.Usage("stdin is not a terminal, so there is no one to ask; pass --yes to decide without asking");
            }
            var url = parse.GetValue(server) is { } s ? ServerUrl.Parse(s, "--server") : null;
            var selected = LocalDevices.ForCurrentUser().Select(parse.GetValue(device), url);
            using var client = ClientFor(selected);
            selected = await TryEnsureVaultKeyAsync(selected, client, ct);
            // Human-readable text goes to stderr under --json so stdout stays one JSON object.
            var text = asJson ? Console.Error : Console.Out;

            IReadOnlyList<PendingRequest> requests;
            if (userCode is not null)
            {
                // The sign-in becomes a request of this device's user only now; it is then shown and decided like any other.
                requests = [await client.StartDeviceLoginAsync(userCode, ct)];
            }
            else if (one is not null)
            {
                var request = await client.GetAsync(one, ct);
                if (request.State is { } state and not "pending")
                {
                    throw new CliException(state == "expired" ? ExitCodes.ExpiredOrTimeout : ExitCodes.DeniedOrInvalid,
                        $"request {one} is {state}; nothing to decide");
                }
                requests = [request];
            }
            else
            {
                requests = await client.ListPendingAsync(ct);
            }
            if (requests.Count == 0)
            {
                await text.WriteLineAsync("No pending requests.");
            }

            var decided = new List<DecidedItem>();
            var failed = new List<FailedItem>();
            foreach (var request in requests)
            {
                await ShowAsync(text, request, selected);
                if (Mismatch(request, selected) is { } why)
                {
                    failed.Add(new FailedItem(request.Id, decision, ExitCodes.DeniedOrInvalid, why));
                    await Console.Error.WriteLineAsync($"error: not signing {request.Id}: {why}");
                    continue;
                }
                if (!confirmed && !await AskAsync(text, decision))
                {
                    await text.WriteLineAsync($"Skipped {request.Id}; it stays pending.");
                    continue;
                }
                try
                {
                    var result = await DecideAsync(client, request, decision, selected, ct);
                    decided.Add(new DecidedItem(result.Id, decision, result.State));
                    await text.WriteLineAsync($"{(decision == Decisions.Approve ? "Approved" : "Denied")} {result.Id} (now {result.State}).");
                }
                catch (AssentProblemException e)
                {
                    var code = e.Status == HttpStatusCode.Gone ? ExitCodes.ExpiredOrTimeout : ExitCodes.DeniedOrInvalid;
                    failed.Add(new FailedItem(request.Id, decision, code, e.Detail));
                    await Console.Error.WriteLineAsync($"error: {request.Id}: {e.Detail}");
                }
                catch (AssentVaultException e)
                {
                    failed.Add(new FailedItem(request.Id, decision, ExitCodes.DeniedOrInvalid, e.Message));
                    await Console.Error.WriteLineAsync($"error: not approving {request.Id}: {e.Message}");
                }
            }
            if (asJson)
            {
                await Terminal.WriteJsonAsync(new DecideOutput(decided, failed), CliJson.Default.DecideOutput);
            }
            // A refusal says more than an expiry: report it first.
            return failed.Count == 0 ? ExitCodes.Success
                : failed.Any(f => f.ExitCode == ExitCodes.DeniedOrInvalid) ? ExitCodes.DeniedOrInvalid
                : ExitCodes.ExpiredOrTimeout;
        }));
        return command;
    }

    /// <summary>
    /// Decides one request. Approving a vault request does the vault's part first (docs/vault.md §4, §5.1): for
    /// <c>vault_release</c> the item key is re-wrapped to the signed recipient key and sent with the decision; for
    /// <c>vault_rewrap</c> the new key's proof is checked and every item this device holds is re-wrapped to it. A check
    /// that fails throws <see cref="AssentVaultException"/> and nothing is signed.
    /// </summary>
    private static async Task<DecisionResponse> DecideAsync(AuthenticatorClient client, PendingRequest request, string decision, DeviceFile device, CancellationToken ct)
    {
        var details = request.Payload?.AuthorizationDetails;
        var release = VaultDevice.Has(details, VaultRelease.Type);
        var rewrap = VaultDevice.Has(details, VaultRelease.RewrapType);
        if (decision != Decisions.Approve || !(release || rewrap))
        {
            return await client.DecideAsync(request, decision, ct);
        }
        device = await DeviceVaultKeys.EnsureAsync(LocalDevices.ForCurrentUser(), device, client, Console.Error, ct);
        var privateKey = DeviceVaultKeys.PrivateKey(device);
        try
        {
            using var http = new HttpClient { Timeout = AuthenticatorClient.DefaultTimeout };
            var vault = new VaultDevice(client, DeviceVaultKeys.Owner(device), privateKey, http);
            if (release)
            {
                return await client.DecideAsync(request, decision, await vault.ReleaseAsync(request.Payload!, ct), ct);
            }
            var count = await vault.RewrapForAsync(request.Payload!, ct);
            await Console.Error.WriteLineAsync($"Re-wrapped {count} item version(s) for the new key.");
            return await client.DecideAsync(request, decision, ct);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(privateKey);
        }
    }

    /// <summary>
    /// A device enrolled before the vault gets its vault key on its next run that talks to the server (docs/vault.md §1). A server
    /// that refuses it (an older one without the vault) does not stop the command.
    /// </summary>
    private static async Task<DeviceFile> TryEnsureVaultKeyAsync(DeviceFile device, AuthenticatorClient client, CancellationToken ct)
    {
        if (device.VaultKeyRegisteredAt is not null)
        {
            return device;
        }
        try
        {
            return await DeviceVaultKeys.EnsureAsync(LocalDevices.ForCurrentUser(), device, client, Console.Error, ct);
        }
        catch (AssentProblemException e)
        {
            await Console.Error.WriteLineAsync($"warning: the vault key was not registered ({e.Detail})");
            return device;
        }
    }

    private static Option<string?> DeviceOption() =>
        new("--device") { Description = "The local device to use when several are enrolled (default: the most recent)" };

    internal static AuthenticatorClient ClientFor(DeviceFile device)
    {
        if (!Base64Url.TryDecode(device.Seed, out var seed) || seed.Length != Protocol.Crypto.Ed25519.SeedSize)
        {
            throw CliException.Invalid($"the key file of {device.DeviceId} is damaged (seed); enrol this computer again");
        }
        return new AuthenticatorClient(ServerUrl.Parse(device.Server, "the device's server"), new DeviceKey(device.DeviceId, seed));
    }

    /// <summary>The payload is what gets signed, so it must be for this user at this issuer; anything else is not signed.</summary>
    private static string? Mismatch(PendingRequest request, DeviceFile device) => request.Payload switch
    {
        null => "the server sent no valid approval payload for it",
        { } p when p.Iss != device.Issuer => $"its payload names issuer {p.Iss}, but this device belongs to {device.Issuer}",
        { } p when p.Sub != device.UserDid => $"its payload is for {p.Sub}, not {device.UserDid}",
        _ => null,
    };

    /// <summary>
    /// Shows what will be signed: the parsed payload, not the server's summary of it (docs/concepts.md §5.2). Beside the
    /// agent's name and client id, its owner as the server states it: names are unique per owner only, so another
    /// user's agent is flagged (docs/concepts.md §3).
    /// </summary>
    private static async Task ShowAsync(TextWriter text, PendingRequest request, DeviceFile device)
    {
        await text.WriteLineAsync();
        await text.WriteLineAsync($"Request {Terminal.Visible(request.Id)} ({Terminal.Visible(request.Kind)})");
        if (request.Payload is not { } p)
        {
            return;
        }
        var owner = request.ClientOwner is { } o ? $" by {Terminal.Visible(o)}" : "";
        await text.WriteLineAsync($"  from:     {Terminal.Visible(p.ClientName)} ({Terminal.Visible(p.ClientId)}){owner}");
        if (request.ClientOwner is { } other && other != device.Handle)
        {
            await text.WriteLineAsync($"  warning:  another user's agent: it belongs to {Terminal.Visible(other)}, not to you ({Terminal.Visible(device.Handle)})");
        }
        await text.WriteLineAsync($"  message:  {(p.BindingMessage is null ? "(none)" : Terminal.Visible(p.BindingMessage))}");
        await text.WriteLineAsync($"  scope:    {Terminal.Visible(p.Scope)}");
        if (request.Policy is { } policy)
        {
            await text.WriteLineAsync($"  policy:   {Terminal.Visible(policy)}");
        }
        if (request.QuorumLine is { } quorum)
        {
            // docs/policies.md §3: several users decide; say who has and who is awaited.
            await text.WriteLineAsync($"  quorum:   {Terminal.Visible(quorum)}");
        }
        if (VaultLine(p) is { } vault)
        {
            await text.WriteLineAsync($"  vault:    {Terminal.Visible(vault)}");
        }
        if (p.AuthorizationDetails is { } details)
        {
            await text.WriteLineAsync("  details:");
            foreach (var line in ShownJson(details).Split('\n'))
            {
                await text.WriteLineAsync("    " + Terminal.Visible(line.TrimEnd('\r')));
            }
        }
        var expires = DateTimeOffset.FromUnixTimeSeconds(p.Exp);
        var left = expires - DateTimeOffset.UtcNow;
        await text.WriteLineAsync($"  expires:  {expires:u} ({(left > TimeSpan.Zero ? $"in {(int)left.TotalMinutes}m {left.Seconds}s" : "already expired")})");
    }

    /// <summary>
    /// What a vault request does, in words (docs/vault.md §4, §5.1): the item, version and agent of a release with the key id the
    /// agent shows (<c>assent vault get</c> prints it), or the device a re-wrap is for. Null for other requests or a detail not read.
    /// </summary>
    private static string? VaultLine(ApprovalPayload p)
    {
        try
        {
            if (VaultDevice.Has(p.AuthorizationDetails, VaultRelease.Type))
            {
                var release = ReleaseDetail.From(p.AuthorizationDetails);
                return $"release {release.Item} (version {release.Version}) to {p.ClientName}, key {Protocol.Vault.VaultFormat.KeyId(release.RecipientKey)[..8]}";
            }
            if (VaultDevice.Has(p.AuthorizationDetails, VaultRelease.RewrapType))
            {
                var rewrap = VaultDevice.Single(p.AuthorizationDetails, VaultRelease.RewrapType);
                var name = rewrap.TryGetProperty("device_name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
                return $"open every vault item on the new device {name ?? "?"} ({VaultDevice.Text(rewrap, "device_id")})";
            }
        }
        catch (AssentVaultException e)
        {
            return "malformed vault request: " + e.Message;
        }
        return null;
    }

    /// <summary>
    /// The details, indented, with every member name and string shown through <see cref="Terminal.Visible"/>:
    /// a hidden character appears as <c>⟨U+XXXX⟩</c>, not as a JSON escape or as itself.
    /// </summary>
    private static string ShownJson(JsonElement details)
    {
        var buffer = new ArrayBufferWriter<byte>();
        try
        {
            using var w = new Utf8JsonWriter(buffer, Pretty);
            WriteShown(w, details);
        }
        catch (InvalidOperationException)
        {
            // A string System.Text.Json will not read (an escaped unpaired surrogate): shown as written, escapes and all.
            return details.GetRawText();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void WriteShown(Utf8JsonWriter w, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                w.WriteStartObject();
                foreach (var member in element.EnumerateObject())
                {
                    w.WritePropertyName(Terminal.Visible(member.Name));
                    WriteShown(w, member.Value);
                }
                w.WriteEndObject();
                break;
            case JsonValueKind.Array:
                w.WriteStartArray();
                foreach (var item in element.EnumerateArray())
                {
                    WriteShown(w, item);
                }
                w.WriteEndArray();
                break;
            case JsonValueKind.String:
                w.WriteStringValue(Terminal.Visible(element.GetString()));
                break;
            default:
                element.WriteTo(w);
                break;
        }
    }

    private static async Task<bool> AskAsync(TextWriter text, string decision)
    {
        while (true)
        {
            await text.WriteAsync($"{(decision == Decisions.Approve ? "Approve" : "Deny")} this request? [y/n] ");
            await text.FlushAsync();
            var answer = Console.ReadLine()?.Trim().ToLowerInvariant();
            switch (answer)
            {
                case null or "n" or "no":
                    return false;
                case "y" or "yes":
                    return true;
            }
        }
    }
}
