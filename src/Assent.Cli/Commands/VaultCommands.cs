using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using Assent.Cli.Agents;
using Assent.Cli.Devices;
using Assent.Cli.Output;
using Assent.Client;
using Assent.Client.Authenticator;
using Assent.Client.Vault;
using Assent.Protocol;
using Assent.Protocol.Crypto;
using Assent.Protocol.Messages;
using Assent.Protocol.Vault;
using Assent.Server.Common;
using Spectre.Console;

namespace Assent.Cli.Commands;

/// <summary>
/// <c>assent vault …</c>: the end-to-end encrypted vault (docs/vault.md §7). As the owner's device, items are sealed and opened
/// here with the device's X25519 key; the server only stores bytes. As an agent, <c>get</c> asks the owner to release one item
/// (docs/vault.md §4) and opens it with a key that lives only for that call.
/// </summary>
internal static class VaultCommands
{
    public static Command Build() =>
        new("vault", "End-to-end encrypted secrets: only your devices, and agents you approve, can open them. Example: assent vault put db-password --file pw.txt")
        {
            Put(), List(), Show(), Get(), Remove(), RecoveryKey(), Recover(),
        };

    private static Command Put()
    {
        var name = NameArgument();
        var file = new Option<string?>("--file") { Description = "Read the secret from this file; - or no --file reads stdin (at most 1 MiB)" };
        var (server, device, json) = (ServerOption(), DeviceOption(), StoreOptions.Json());
        var command = new Command("put", "Encrypt a secret on this device and store it as the next version of NAME. Example: printf %s \"$PW\" | assent vault put db-password")
        {
            name, file, server, device, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var item = CheckName(parse.GetValue(name)!);
            var path = parse.GetValue(file);
            if (path is null or "-" && !Console.IsInputRedirected)
            {
                throw CliException.Usage("give the secret with --file F, or pipe it on stdin: printf %s \"$SECRET\" | assent vault put NAME");
            }
            var secret = await ReadSecretAsync(path, ct);
            try
            {
                await using var session = await OpenAsync(parse, server, device, ct);
                var stored = await session.Vault.PutAsync(item, secret, ct);
                if (parse.GetValue(json))
                {
                    await Terminal.WriteJsonAsync(stored, VaultJson.Default.VaultItemView);
                }
                else
                {
                    await Console.Out.WriteLineAsync($"Stored {Terminal.Visible(stored.Name)} version {stored.Version} ({stored.Size} bytes), encrypted on this device.");
                }
                return ExitCodes.Success;
            }
            catch (AssentProblemException e) when (e.Status == HttpStatusCode.Conflict)
            {
                throw CliException.Invalid($"not stored: {e.Detail} (another device wrote first, or the recipient keys changed); run the command again");
            }
            finally
            {
                CryptographicOperations.ZeroMemory(secret);
            }
        }));
        return command;
    }

    private static Command List()
    {
        var (server, device, json) = (ServerOption(), DeviceOption(), StoreOptions.Json());
        var command = new Command("list", "List your vault items (names, versions, sizes; never contents). Example: assent vault list --json")
        {
            server, device, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            await using var session = await OpenAsync(parse, server, device, ct);
            var list = await session.Client.ListVaultItemsAsync(ct);
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(list, VaultJson.Default.VaultItemList);
                return ExitCodes.Success;
            }
            if (list.Items.Count == 0)
            {
                await Console.Out.WriteLineAsync("The vault is empty. Add an item with: assent vault put NAME --file F");
                return ExitCodes.Success;
            }
            var table = new Table().AddColumns("name", "version", "size", "updated");
            table.Columns[0].NoWrap();
            foreach (var i in list.Items)
            {
                table.AddRow(Markup.Escape(Terminal.Visible(i.Name)), i.Version.ToString(CultureInfo.InvariantCulture), i.Size.ToString(CultureInfo.InvariantCulture),
                    DateTimeOffset.FromUnixTimeMilliseconds(i.UpdatedAt).ToString("u"));
            }
            Terminal.Rich().Write(table);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Show()
    {
        var name = NameArgument();
        var (server, device, json) = (ServerOption(), DeviceOption(), StoreOptions.Json());
        var command = new Command("show", "Show an item's versions (metadata only). Example: assent vault show db-password")
        {
            name, server, device, json,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var item = CheckName(parse.GetValue(name)!);
            await using var session = await OpenAsync(parse, server, device, ct);
            var detail = await Found(() => session.Client.GetVaultItemAsync(item, ct), item);
            if (parse.GetValue(json))
            {
                await Terminal.WriteJsonAsync(detail, VaultJson.Default.VaultItemDetail);
                return ExitCodes.Success;
            }
            await Console.Out.WriteLineAsync($"{Terminal.Visible(detail.Name)} (id {detail.Id}), latest version {detail.Version}");
            var table = new Table().AddColumns("version", "size", "by device", "created");
            foreach (var v in detail.Versions)
            {
                table.AddRow(v.Version.ToString(CultureInfo.InvariantCulture), v.Size.ToString(CultureInfo.InvariantCulture), Markup.Escape(Terminal.Visible(v.CreatedBy)),
                    DateTimeOffset.FromUnixTimeMilliseconds(v.CreatedAt).ToString("u"));
            }
            Terminal.Rich().Write(table);
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Get()
    {
        var name = NameArgument();
        var version = new Option<uint?>("--version") { Description = "The version to open (default: the latest)" };
        var output = new Option<string?>("--out") { Description = "Write the secret to this file (created readable only by you) instead of stdout" };
        var (server, device) = (ServerOption(), DeviceOption());
        var (_, clientId, clientSecret) = ApproveCommand.AgentOptions();
        var agent = AgentCredentials.AgentOption();
        var user = new Option<string?>("--user") { Description = "As an agent: the owner to ask, a DID or handle (default: $ASSENT_USER_DID, else the saved agent's owner)" };
        var timeout = new Option<int?>("--timeout") { Description = "As an agent: seconds to wait for the owner's decision, 1 to 3600 (default 300)" };
        var command = new Command("get", """
            Open a secret. On your own device it is decrypted here; as an agent (--agent, --client-id or $ASSENT_CLIENT_ID) the owner is asked to release it, and it is decrypted with a key that exists only for this call. Exit 0 opened, 1 denied or refused, 2 expired.
            Example: assent vault get db-password --out pw.txt    Example (agent): assent vault get db-password --agent deploy-bot
            """)
        {
            name, version, output, server, device, agent, clientId, clientSecret, user, timeout,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var item = CheckName(parse.GetValue(name)!);
            if (parse.GetValue(version) is 0)
            {
                throw CliException.Usage("--version starts at 1");
            }
            var asAgent = parse.GetResult(agent) is not null || parse.GetValue(clientId) is not null || parse.GetValue(clientSecret) is not null ||
                          Environment.GetEnvironmentVariable(AssentClientOptions.ClientIdVariable) is { Length: > 0 };
            byte[] secret;
            if (asAgent)
            {
                secret = await ReleaseAsync(parse, item, agent, server, clientId, clientSecret, user, timeout, version, ct);
            }
            else
            {
                await using var session = await OpenAsync(parse, server, device, ct);
                try
                {
                    (_, secret) = await session.Vault.OpenAsync(item, parse.GetValue(version), ct);
                }
                catch (AssentProblemException e) when (e.Status == HttpStatusCode.NotFound)
                {
                    throw await NotOpenableAsync(session, item, parse.GetValue(version), ct);
                }
            }
            try
            {
                if (parse.GetValue(output) is { } path)
                {
                    SecureFile.WriteAtomic(path, secret);
                    await Console.Error.WriteLineAsync($"Wrote {secret.Length} bytes to {path}.");
                }
                else
                {
                    await using var stdout = Console.OpenStandardOutput();
                    await stdout.WriteAsync(secret, ct);
                }
            }
            finally
            {
                CryptographicOperations.ZeroMemory(secret);
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>The agent side of <c>get</c>: the SDK's release flow (docs/vault.md §4), with the same credentials as <c>assent approve</c>.</summary>
    private static async Task<byte[]> ReleaseAsync(ParseResult parse, string item, Option<string?> agent, Option<string?> server, Option<string?> clientId,
        Option<string?> clientSecret, Option<string?> user, Option<int?> timeout, Option<uint?> version, CancellationToken ct)
    {
        var options = AgentCredentials.Resolve(parse, agent, parse.GetValue(server), parse.GetValue(clientId), parse.GetValue(clientSecret), parse.GetValue(user));
        var release = new VaultReleaseOptions
        {
            Version = parse.GetValue(version),
            // Said before asking, so the owner can compare it with what their device shows (docs/vault.md §7.1).
            KeyCreated = kid => Console.Error.WriteLine($"Asking the owner to release {Terminal.Visible(item)} to this agent's key {kid[..8]}; their device shows the same key id."),
        };
        if (parse.GetValue(timeout) is { } seconds)
        {
            if (seconds is < 1 or > 3600)
            {
                throw CliException.Usage("--timeout must be from 1 to 3600 seconds");
            }
            release.Timeout = TimeSpan.FromSeconds(seconds);
        }
        using var client = new AssentClient(options);
        VaultSecret result;
        try
        {
            result = await client.GetSecretAsync(item, release, ct);
        }
        catch (AssentTimeoutException e)
        {
            throw new CliException(ExitCodes.ExpiredOrTimeout, $"expired: nobody decided within {e.Timeout.TotalSeconds:0} s");
        }
        catch (AssentOAuthException e)
        {
            throw CliException.Invalid($"the server refused the request: {e.Message}");
        }
        catch (AssentVaultException e)
        {
            throw CliException.Invalid($"refusing the release: {e.Message}");
        }
        return result.Status switch
        {
            ApprovalStatus.Approved => result.Value!,
            ApprovalStatus.Denied => throw CliException.Invalid("denied: the owner refused to release the item"),
            _ => throw new CliException(ExitCodes.ExpiredOrTimeout, "expired: nobody decided in time; ask again"),
        };
    }

    private static Command Remove()
    {
        var name = NameArgument();
        var (server, device) = (ServerOption(), DeviceOption());
        var command = new Command("rm", "Remove an item with all its versions. Example: assent vault rm db-password")
        {
            name, server, device,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var item = CheckName(parse.GetValue(name)!);
            await using var session = await OpenAsync(parse, server, device, ct);
            await Found(async () =>
            {
                await session.Client.DeleteVaultItemAsync(item, ct);
                return true;
            }, item);
            await Console.Out.WriteLineAsync($"Removed {Terminal.Visible(item)} and all its versions.");
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command RecoveryKey()
    {
        var replace = new Option<bool>("--replace") { Description = "Remove the existing recovery key first (its paper copy stops working)" };
        var (server, device) = (ServerOption(), DeviceOption());
        var command = new Command("recovery-key", "Create the vault's recovery key, wrap every item to it, and print it once to keep on paper. Example: assent vault recovery-key")
        {
            replace, server, device,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            await using var session = await OpenAsync(parse, server, device, ct);
            var keys = await session.Client.ListVaultKeysAsync(ct);
            if (keys.Keys.FirstOrDefault(k => k.Kind == VaultKeyKinds.Recovery) is { } existing)
            {
                if (!parse.GetValue(replace))
                {
                    throw CliException.Invalid($"a recovery key exists ({existing.Kid}); to make a new one (the old paper copy stops working): assent vault recovery-key --replace");
                }
                await session.Client.DeleteVaultKeyAsync(existing.Kid, ct);
            }
            var recovery = VaultFormat.NewPrivateKey();
            try
            {
                var publicKey = X25519.PublicKeyFromPrivateKey(recovery);
                await session.Client.RegisterVaultKeyAsync(VaultDevice.RecoveryRegistration(session.Owner, publicKey), ct);
                var count = await session.Vault.RewrapAllAsync(session.PrivateKey, session.Vault.Kid, publicKey, ct);
                await Console.Error.WriteLineAsync($"""
                    The recovery key below opens every item in your vault ({count} item version(s) wrapped to it; new items are wrapped to it too).
                    Write it down or print it, keep it offline, and never paste it anywhere else. It is shown only now; nobody, not even the
                    server's operator, can show it again. If you lose every device AND this key, the vault cannot be opened by anyone.
                    To use it on a new device: assent vault recover --key -   (then paste it)
                    """);
                await Console.Out.WriteLineAsync(Base64Url.Encode(recovery));
            }
            finally
            {
                CryptographicOperations.ZeroMemory(recovery);
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    private static Command Recover()
    {
        var key = new Option<string>("--key") { Description = "The recovery key, or - to read it from stdin (safer: options show in ps)", Required = true };
        var (server, device) = (ServerOption(), DeviceOption());
        var command = new Command("recover", "Re-wrap every item for this device with the recovery key, e.g. after losing your other devices. Example: assent vault recover --key -")
        {
            key, server, device,
        };
        command.SetAction(CliApp.Guard(async (parse, ct) =>
        {
            var text = parse.GetValue(key)!;
            if (text == "-")
            {
                text = await Console.In.ReadLineAsync(ct) ?? "";
            }
            text = string.Concat(text.Where(c => !char.IsWhiteSpace(c)));
            if (!Base64Url.TryDecode(text, out var recovery) || recovery.Length != X25519.KeySize)
            {
                throw CliException.Usage("--key is not a recovery key (43 characters of base64url, as recovery-key printed it)");
            }
            try
            {
                await using var session = await OpenAsync(parse, server, device, ct);
                var recoveryKid = VaultFormat.KeyId(X25519.PublicKeyFromPrivateKey(recovery));
                var keys = await session.Client.ListVaultKeysAsync(ct);
                if (!keys.Keys.Any(k => k.Kid == recoveryKid && k.Kind == VaultKeyKinds.Recovery))
                {
                    throw CliException.Invalid($"this is not the vault's current recovery key ({recoveryKid} is not registered)");
                }
                var count = await session.Vault.RewrapAllAsync(recovery, recoveryKid, session.Vault.PublicKey, ct);
                await Console.Out.WriteLineAsync($"Recovered {count} item version(s) for this device.");
            }
            catch (AssentVaultException e)
            {
                throw CliException.Invalid($"not recovered: {e.Message}");
            }
            finally
            {
                CryptographicOperations.ZeroMemory(recovery);
            }
            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>The local device, its vault key (registered if it was not yet) and a client signed with it.</summary>
    private static async Task<DeviceSession> OpenAsync(ParseResult parse, Option<string?> server, Option<string?> device, CancellationToken ct)
    {
        var url = parse.GetValue(server) is { } s ? ServerUrl.Parse(s, "--server") : null;
        var local = LocalDevices.ForCurrentUser();
        var selected = local.Select(parse.GetValue(device), url);
        var client = DeviceCommands.ClientFor(selected);
        try
        {
            selected = await DeviceVaultKeys.EnsureAsync(local, selected, client, Console.Error, ct);
        }
        catch
        {
            client.Dispose();
            throw;
        }
        return new DeviceSession(client, selected);
    }

    /// <summary>Why a 404 for a sealed version: no such item or version, or no key of this device wraps it yet (docs/vault.md §5.1).</summary>
    private static async Task<CliException> NotOpenableAsync(DeviceSession session, string name, uint? version, CancellationToken ct)
    {
        var item = await session.Vault.FindAsync(name, ct);
        if (item is null)
        {
            return CliException.Invalid($"no vault item '{Terminal.Visible(name)}'; see: assent vault list");
        }
        if (version is { } v && !item.Versions.Any(x => x.Version == v))
        {
            return CliException.Invalid($"'{Terminal.Visible(name)}' has no version {v}; see: assent vault show {Terminal.Visible(name)}");
        }
        return CliException.Invalid($"this device cannot open '{Terminal.Visible(name)}' yet: approve the re-wrap request for it on another of your devices, " +
                                    "or run: assent vault recover --key - (with the recovery key)");
    }

    /// <summary>A 404 of the server as the CLI says it: no such item.</summary>
    private static async Task<T> Found<T>(Func<Task<T>> call, string name)
    {
        try
        {
            return await call();
        }
        catch (AssentProblemException e) when (e.Status == HttpStatusCode.NotFound)
        {
            throw CliException.Invalid($"no vault item '{Terminal.Visible(name)}'; see: assent vault list");
        }
    }

    private static async Task<byte[]> ReadSecretAsync(string? path, CancellationToken ct)
    {
        await using var stream = path is null or "-" ? Console.OpenStandardInput() : OpenFile(path);
        var buffer = new MemoryStream();
        var chunk = new byte[64 * 1024];
        for (int n; (n = await stream.ReadAsync(chunk, ct)) > 0;)
        {
            if (buffer.Length + n > VaultDevice.MaxItemSize)
            {
                throw CliException.Invalid($"the secret is larger than {VaultDevice.MaxItemSize} bytes (1 MiB), the most an item holds");
            }
            buffer.Write(chunk, 0, n);
        }
        CryptographicOperations.ZeroMemory(chunk);
        return buffer.ToArray();
    }

    private static FileStream OpenFile(string path)
    {
        try
        {
            return File.OpenRead(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw CliException.Invalid($"cannot read --file {path}: {e.Message}");
        }
    }

    /// <summary>docs/vault.md §6: 1–128 characters of <c>[A-Za-z0-9._@+/-]</c>, checked here too so a typo is a usage error, not a 400.</summary>
    /// A URL would fold the path segments <c>.</c> and <c>..</c> away, so names made of them are refused as well.
    private static string CheckName(string name) =>
        name.Length is >= 1 and <= 128 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '@' or '+' or '/' or '-') &&
        !name.Split('/').Any(segment => segment is "" or "." or "..")
            ? name
            : throw CliException.Usage("NAME is 1 to 128 characters of A-Z a-z 0-9 . _ @ + / - (no empty, . or .. part between slashes)");

    private static Argument<string> NameArgument() => new("NAME") { Description = "The item's name: 1 to 128 characters of A-Z a-z 0-9 . _ @ + / -" };

    private static Option<string?> ServerOption() => new("--server") { Description = "Use the device enrolled with this server (as an agent: the server's URL)" };

    private static Option<string?> DeviceOption() =>
        new("--device") { Description = "The local device to use when several are enrolled (default: the most recent)" };

    /// <summary>One command's device: the signed client, the owner, and the vault key (cleared on dispose).</summary>
    private sealed class DeviceSession : IAsyncDisposable
    {
        private readonly HttpClient _http = new() { Timeout = AuthenticatorClient.DefaultTimeout };

        public DeviceSession(AuthenticatorClient client, DeviceFile device)
        {
            Client = client;
            Owner = DeviceVaultKeys.Owner(device);
            PrivateKey = DeviceVaultKeys.PrivateKey(device);
            Vault = new VaultDevice(client, Owner, PrivateKey, _http);
        }

        public AuthenticatorClient Client { get; }

        public VaultOwner Owner { get; }

        public byte[] PrivateKey { get; }

        public VaultDevice Vault { get; }

        public ValueTask DisposeAsync()
        {
            CryptographicOperations.ZeroMemory(PrivateKey);
            CryptographicOperations.ZeroMemory(Owner.Seed);
            _http.Dispose();
            Client.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
