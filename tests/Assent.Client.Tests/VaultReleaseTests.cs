using System.Text;
using Assent.Client.Authenticator;
using Assent.Client.Vault;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Messages;
using Assent.Protocol.Vault;
using Assent.Server.Admin;
using Assent.Server.Common;
using Assent.Server.Storage;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace Assent.Client.Tests;

/// <summary>
/// <see cref="AssentClient.GetSecretAsync(string, VaultReleaseOptions?, CancellationToken)"/> against a real server (docs/vault.md §4), the
/// owner's device played by <see cref="VaultDevice"/>, and the server's database edited between the steps to play a server that
/// tampers: every change must be caught by the agent (or the device) and nothing opened.
/// </summary>
[Collection(IssuersCollection.Name)]
public sealed class VaultReleaseTests(Issuers issuers)
{
    private static readonly byte[] Secret = Encoding.UTF8.GetBytes("correct horse battery staple");

    [Fact]
    public async Task Approved_release_opens_the_secret_with_a_verified_token_naming_the_item()
    {
        await using var owner = await VaultOwnerAsync(issuers.A);
        var stored = await owner.Vault.PutAsync("db-password", Secret, CancellationToken.None);
        using var agent = owner.Agent();

        string? shown = null;

        var human = owner.ApproveReleaseAsync();
        var secret = await WhileHuman(human, agent.GetSecretAsync("db-password", new VaultReleaseOptions { KeyCreated = kid => shown = kid }, CancellationToken.None));
        await human;

        Assert.True(secret.Released, secret.Status.ToString());
        var signedKey = secret.Token!.AuthorizationDetails!.Value[0].GetProperty("recipient_key").GetString()!;
        Assert.Equal(VaultFormat.KeyId(Base64Url.Decode(signedKey)), shown);
        Assert.Equal(Secret, secret.Value);
        Assert.Equal(stored.Id, secret.ItemId);
        Assert.Equal(1u, secret.Version);
        Assert.Equal(owner.Did, secret.Token!.Subject);
        Assert.StartsWith(owner.Did + "#", secret.Token.EvidenceDevice);
    }

    [Fact]
    public async Task A_release_asks_for_the_version_given_and_the_latest_otherwise()
    {
        await using var owner = await VaultOwnerAsync(issuers.A);
        await owner.Vault.PutAsync("api-key", "one"u8.ToArray(), CancellationToken.None);
        await owner.Vault.PutAsync("api-key", "two"u8.ToArray(), CancellationToken.None);
        using var agent = owner.Agent();

        var human = owner.ApproveReleaseAsync();
        var first = await WhileHuman(human, agent.GetSecretAsync("api-key", new VaultReleaseOptions { Version = 1 }, CancellationToken.None));
        await human;
        human = owner.ApproveReleaseAsync();
        var latest = await WhileHuman(human, agent.GetSecretAsync("api-key", CancellationToken.None));
        await human;

        Assert.Equal("one"u8.ToArray(), first.Value);
        Assert.Equal(1u, first.Version);
        Assert.Equal("two"u8.ToArray(), latest.Value);
        Assert.Equal(2u, latest.Version);
    }

    [Fact]
    public async Task Denied_release_is_a_result_without_a_value()
    {
        await using var owner = await VaultOwnerAsync(issuers.A);
        await owner.Vault.PutAsync("db-password", Secret, CancellationToken.None);
        using var agent = owner.Agent();

        var human = Human.DecideAsync(owner.User, Decisions.Deny);
        var secret = await WhileHuman(human, agent.GetSecretAsync("db-password", CancellationToken.None));
        await human;

        Assert.Equal(ApprovalStatus.Denied, secret.Status);
        Assert.False(secret.Released);
        Assert.Null(secret.Value);
    }

    [Fact]
    public async Task An_unknown_item_is_refused_by_the_server_with_invalid_authorization_details()
    {
        await using var owner = await VaultOwnerAsync(issuers.A);
        using var agent = owner.Agent();

        var e = await Assert.ThrowsAsync<AssentOAuthException>(() => agent.GetSecretAsync("no-such-item", CancellationToken.None));

        Assert.Equal("invalid_authorization_details", e.Error);
    }

    [Fact]
    public async Task A_flipped_ciphertext_byte_after_the_device_checked_it_is_refused_by_the_agent()
    {
        await using var owner = await VaultOwnerAsync(issuers.A);
        var stored = await owner.Vault.PutAsync("db-password", Secret, CancellationToken.None);
        using var agent = owner.Agent();

        var human = owner.ApproveReleaseAsync(beforeDeciding: () => owner.Sql(
            "UPDATE vault_versions SET ciphertext = $v WHERE item_id = $id AND version = 1",
            ("$v", Flip(owner.Blob("SELECT ciphertext FROM vault_versions WHERE item_id = $id", ("$id", stored.Id)), 20)), ("$id", stored.Id)));
        var e = await Assert.ThrowsAsync<AssentVaultException>(() => WhileHuman(human, agent.GetSecretAsync("db-password", CancellationToken.None)));
        await human;

        Assert.Contains("ciphertext", e.Message);
        Assert.Contains("does not open", e.Message);
    }

    [Fact]
    public async Task A_changed_wrapped_key_in_the_stored_release_is_refused_by_the_agent()
    {
        await using var owner = await VaultOwnerAsync(issuers.A);
        await owner.Vault.PutAsync("db-password", Secret, CancellationToken.None);
        using var agent = owner.Agent(beforeRedeeming: () => owner.Sql("UPDATE vault_releases SET wrapped = $w WHERE approval_id = $a",
            ("$w", Flip(owner.Blob("SELECT wrapped FROM vault_releases WHERE approval_id = $a", ("$a", owner.RequestId)), 60)), ("$a", owner.RequestId)));

        var human = owner.ApproveReleaseAsync();
        var e = await Assert.ThrowsAsync<AssentVaultException>(() => WhileHuman(human, agent.GetSecretAsync("db-password", CancellationToken.None)));
        await human;

        Assert.Contains("wrapped key", e.Message);
        Assert.Contains("does not open", e.Message);
    }

    [Fact]
    public async Task Version_numbers_swapped_in_the_database_are_refused()
    {
        await using var owner = await VaultOwnerAsync(issuers.A);
        var stored = await owner.Vault.PutAsync("api-key", "one"u8.ToArray(), CancellationToken.None);
        await owner.Vault.PutAsync("api-key", "two"u8.ToArray(), CancellationToken.None);
        using var agent = owner.Agent(beforeRedeeming: () => owner.Sql("""
            UPDATE vault_versions SET version = 99 WHERE item_id = $id AND version = 1;
            UPDATE vault_versions SET version = 1 WHERE item_id = $id AND version = 2;
            UPDATE vault_versions SET version = 2 WHERE item_id = $id AND version = 99;
            """, ("$id", stored.Id)));

        var human = owner.ApproveReleaseAsync();
        var e = await Assert.ThrowsAsync<AssentVaultException>(() => WhileHuman(human, agent.GetSecretAsync("api-key", CancellationToken.None)));
        await human;

        Assert.Contains("does not open", e.Message);
        // The device, asked to open the (now swapped) latest version itself, refuses too.
        var device = await Assert.ThrowsAsync<AssentVaultException>(() => owner.Vault.OpenAsync("api-key", null, CancellationToken.None));
        Assert.Contains("does not open", device.Message);
    }

    [Fact]
    public async Task A_recipient_key_the_server_swapped_into_the_request_is_refused_by_the_agent()
    {
        await using var owner = await VaultOwnerAsync(issuers.A);
        await owner.Vault.PutAsync("db-password", Secret, CancellationToken.None);
        var serversKey = Base64Url.Encode(Protocol.Crypto.X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey()));
        // The server puts a key of its own in the request it stores: the device signs (and wraps to) that key. The agent must
        // notice that what was approved is not its own key and refuse.
        using var agent = owner.Agent(rewriteRequest: form => System.Text.RegularExpressions.Regex.Replace(form,
            "(recipient_key%22%3A%22)[A-Za-z0-9_-]{43}", m => m.Groups[1].Value + serversKey));

        var human = owner.ApproveReleaseAsync();
        var e = await Assert.ThrowsAsync<AssentVaultException>(() => WhileHuman(human, agent.GetSecretAsync("db-password", CancellationToken.None)));
        await human;

        Assert.Contains("another recipient key", e.Message);
    }

    [Fact]
    public async Task A_release_approved_for_one_item_cannot_be_redeemed_for_another()
    {
        await using var owner = await VaultOwnerAsync(issuers.A);
        await owner.Vault.PutAsync("db-password", Secret, CancellationToken.None);
        var other = await owner.Vault.PutAsync("aws-key", "AKIA-other"u8.ToArray(), CancellationToken.None);
        using var agent = owner.Agent(beforeRedeeming: () => owner.Sql("UPDATE vault_releases SET item_id = $id WHERE approval_id = $a", ("$id", other.Id), ("$a", owner.RequestId)));

        var human = owner.ApproveReleaseAsync();
        var e = await Record.ExceptionAsync(() => WhileHuman(human, agent.GetSecretAsync("db-password", CancellationToken.None)));
        await human;

        // Either the server notices the row no longer matches the approval, or the agent refuses what it is handed.
        Assert.NotNull(e);
        Assert.True(e is AssentVaultException or AssentOAuthException or AssentProtocolException, e.ToString());
    }

    [Fact]
    public async Task The_device_refuses_to_release_a_version_whose_ciphertext_does_not_open()
    {
        await using var owner = await VaultOwnerAsync(issuers.A);
        var stored = await owner.Vault.PutAsync("db-password", Secret, CancellationToken.None);
        owner.Sql("UPDATE vault_versions SET ciphertext = $v WHERE item_id = $id",
            ("$v", Flip(owner.Blob("SELECT ciphertext FROM vault_versions WHERE item_id = $id", ("$id", stored.Id)), 5)), ("$id", stored.Id));
        using var agent = owner.Agent();

        var asking = agent.GetSecretAsync("db-password", new VaultReleaseOptions { Timeout = TimeSpan.FromSeconds(20) }, CancellationToken.None);
        var request = await owner.PendingAsync();
        var e = await Assert.ThrowsAsync<AssentVaultException>(() => owner.Vault.ReleaseAsync(request.Payload!, CancellationToken.None));
        await owner.User.Device.DecideAsync(request, Decisions.Deny, CancellationToken.None);
        var denied = await asking;

        Assert.Contains("does not open", e.Message);
        Assert.Equal(ApprovalStatus.Denied, denied.Status);
    }

    [Fact]
    public async Task A_recipient_key_without_a_valid_proof_gets_nothing_wrapped_to_it()
    {
        await using var owner = await VaultOwnerAsync(issuers.A);
        await owner.Vault.PutAsync("db-password", Secret, CancellationToken.None);
        // The server lists a key of its own in place of the device's, with the device's proof of its real key.
        owner.Sql("UPDATE vault_keys SET public_key = $p WHERE kid = $kid",
            ("$p", Protocol.Crypto.X25519.PublicKeyFromPrivateKey(VaultFormat.NewPrivateKey())), ("$kid", owner.Vault.Kid));

        var e = await Assert.ThrowsAsync<AssentVaultException>(() => owner.Vault.PutAsync("db-password", "new"u8.ToArray(), CancellationToken.None));

        Assert.Contains("not proven", e.Message);
    }

    /// <summary>The agent's call, unless the human's side fails first: then that failure, not the agent's wait, is the test's.</summary>
    private static async Task<T> WhileHuman<T>(Task human, Task<T> agent)
    {
        if (await Task.WhenAny(human, agent) == human && human.IsFaulted)
        {
            await human;
        }
        return await agent;
    }

    private static byte[] Flip(byte[] bytes, int at)
    {
        var copy = bytes.ToArray();
        copy[at] ^= 0x01;
        return copy;
    }

    private static async Task<VaultOwnerFixture> VaultOwnerAsync(IssuerServer server)
    {
        var admin = new AdminOperations(server.Service<AssentStore>(), server.Service<AssentOptions>(), TimeProvider.System);
        var handle = "v" + Guid.NewGuid().ToString("N")[..10];
        var invite = await admin.InviteAsync(handle, false, CancellationToken.None);
        using var enrolling = new AuthenticatorClient(server.BaseUri);
        var enrolled = await enrolling.EnrollAsync(invite.Code, "vault laptop", CancellationToken.None);
        var agent = await admin.CreateAgentAsync(handle, "vault agent", "approve:action", CancellationToken.None);
        var device = new AuthenticatorClient(server.BaseUri, enrolled.Key);
        var user = new TestUser(handle, enrolled.UserDid, device, enrolled.Key.DeviceId, agent.ClientId, agent.ClientSecret);
        var owner = new VaultOwner(enrolled.UserId, enrolled.UserDid, enrolled.Key.DeviceId, enrolled.Key.Seed);
        var privateKey = VaultFormat.NewPrivateKey();
        var http = new HttpClient();
        var vault = new VaultDevice(device, owner, privateKey, http);
        await device.RegisterVaultKeyAsync(VaultDevice.DeviceRegistration(owner, vault.PublicKey), CancellationToken.None);
        return new VaultOwnerFixture(server, user, vault, http, Path.Combine(server.Service<AssentOptions>().DataDirectory!, StoreFactory.SqliteFileName));
    }

    private sealed class VaultOwnerFixture(IssuerServer server, TestUser user, VaultDevice vault, HttpClient http, string database) : IAsyncDisposable
    {
        public TestUser User => user;

        public string Did => user.Did;

        public VaultDevice Vault => vault;

        /// <summary>The agent; <paramref name="beforeRedeeming"/> runs once the owner decided, before the agent's token request reaches the server.</summary>
        public AssentClient Agent(Action? beforeRedeeming = null, Func<string, string>? rewriteRequest = null) => new(new AssentClientOptions
        {
            Server = server.BaseUri,
            ClientId = user.ClientId,
            ClientSecret = user.ClientSecret,
            UserDid = user.Did,
            HttpClient = beforeRedeeming is null && rewriteRequest is null ? null : new HttpClient(new HoldTokenRequest(this, beforeRedeeming, rewriteRequest)),
            // A human step that fails must fail the test at once, not after the server's five-minute expiry.
            DefaultTimeout = TimeSpan.FromSeconds(30),
        });

        public TaskCompletionSource Decided { get; private set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public async Task<PendingRequest> PendingAsync()
        {
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (DateTime.UtcNow < until)
            {
                if ((await user.Device.ListPendingAsync(CancellationToken.None)) is [var request])
                {
                    return request;
                }
                await Task.Delay(20);
            }
            throw new TimeoutException("no pending request appeared");
        }

        /// <summary>The human approves the one pending release with the device: re-wrap to the signed recipient key, then decide.</summary>
        public string RequestId { get; private set; } = "";

        public async Task ApproveReleaseAsync(Action<string>? beforeShowing = null, Action? beforeDeciding = null)
        {
            Decided = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            try
            {
                var request = await PendingAsync();
                RequestId = request.Id;
                if (beforeShowing is not null)
                {
                    beforeShowing(request.Id);
                    request = await user.Device.GetAsync(request.Id, CancellationToken.None);
                }
                var wrapped = await vault.ReleaseAsync(request.Payload!, CancellationToken.None);
                beforeDeciding?.Invoke();
                await user.Device.DecideAsync(request, Decisions.Approve, wrapped, CancellationToken.None);
            }
            finally
            {
                Decided.TrySetResult();
            }
        }

        public void Sql(string sql, params (string Name, object Value)[] parameters)
        {
            using var connection = new SqliteConnection($"Data Source={database};Pooling=False");
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA busy_timeout = 5000; " + sql;
            foreach (var (name, value) in parameters)
            {
                command.Parameters.AddWithValue(name, value);
            }
            Assert.True(command.ExecuteNonQuery() > 0, $"changed nothing: {sql}");
        }

        public byte[] Blob(string sql, params (string Name, object Value)[] parameters)
        {
            using var connection = new SqliteConnection($"Data Source={database};Pooling=False");
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            foreach (var (name, value) in parameters)
            {
                command.Parameters.AddWithValue(name, value);
            }
            return Assert.IsType<byte[]>(command.ExecuteScalar());
        }

        public ValueTask DisposeAsync()
        {
            user.Device.Dispose();
            http.Dispose();
            return ValueTask.CompletedTask;
        }

        /// <summary>
        /// Plays the server's side of the agent's traffic: rewrites the CIBA request's form as the server would read it, and holds
        /// the first token request until the owner decided, then runs the tampering, then lets it through.
        /// </summary>
        private sealed class HoldTokenRequest(VaultOwnerFixture owner, Action? tamper, Func<string, string>? rewrite) : DelegatingHandler(new SocketsHttpHandler())
        {
            private int _done;

            protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
            {
                if (rewrite is not null && request.RequestUri!.AbsolutePath.EndsWith("/bc-authorize", StringComparison.Ordinal))
                {
                    var form = await request.Content!.ReadAsStringAsync(cancellationToken);
                    var rewritten = rewrite(form);
                    Assert.NotEqual(form, rewritten);
                    request.Content = new StringContent(rewritten, Encoding.ASCII, "application/x-www-form-urlencoded");
                }
                if (tamper is not null && request.RequestUri!.AbsolutePath.EndsWith("/token", StringComparison.Ordinal) && Interlocked.Exchange(ref _done, 1) == 0)
                {
                    await owner.Decided.Task.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
                    tamper();
                }
                return await base.SendAsync(request, cancellationToken);
            }
        }
    }
}
