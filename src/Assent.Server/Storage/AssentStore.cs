namespace Assent.Server.Storage;

/// <summary>
/// Everything Assent persists, one narrow store per aggregate over one engine (docs/storage.md). Every transition
/// is atomic and appends its audit event in the same transaction, so a state change and its audit entry exist
/// together or not at all. Times are Unix milliseconds.
/// </summary>
internal sealed class AssentStore(Database db) : IAsyncDisposable
{
    /// <summary>Tables whose rows are useless once <c>expires_at</c> has passed (their approvals and audit stay).</summary>
    internal static readonly string[] PruneTables =
        ["device_authorizations", "refresh_tokens", "web_sessions", "webauthn_challenges", "revoked_access_tokens", "device_nonces", "rate_counters", "authorization_codes"];

    public Database Database => db;

    /// <summary>"sqlite" or "postgres".</summary>
    public string Engine => db.Engine;

    public IUserStore Users { get; } = new UserStore(db);

    public IDeviceStore Devices { get; } = new DeviceStore(db);

    public IClientStore Clients { get; } = new ClientStore(db);

    public IConsentStore Consents { get; } = new ConsentStore(db);

    public IApprovalStore Approvals { get; } = db.CreateApprovalStore();

    public ISessionStore Sessions { get; } = new SessionStore(db);

    public IAuditStore Audit { get; } = new AuditStore(db);

    public IKeyStore Keys { get; } = new KeyStore(db);

    public IMetaStore Meta { get; } = new MetaStore(db);

    public IRateCounterStore RateCounters { get; } = new RateCounterStore(db);

    public IApiKeyStore ApiKeys { get; } = new ApiKeyStore(db);

    public IChallengeStore Challenges { get; } = new ChallengeStore(db);

    public IWebhookStore Webhooks { get; } = new WebhookStore(db);

    public IPolicyStore Policies { get; } = new PolicyStore(db);

    public IWalletStore Wallets { get; } = new WalletStore(db);

    public IPaymentStore Payments { get; } = new PaymentStore(db);

    public IMandateStore Mandates { get; } = new MandateStore(db);

    public IVaultStore Vault { get; } = new VaultStore(db);

    /// <summary>How long the delivery log keeps a settled delivery (docs/webhooks.md §5).</summary>
    internal static readonly TimeSpan DeliveryLogKept = TimeSpan.FromDays(30);

    public IPushSubscriptionStore PushSubscriptions { get; } = new PushSubscriptionStore(db);

    public IWebClientStore WebClients { get; } = new WebClientStore(db);

    public IJoseKeyStore JoseKeys { get; } = new JoseKeyStore(db);

    public Task MigrateAsync(CancellationToken ct) => db.MigrateAsync(ct);

    /// <summary>
    /// Deletes rows that can no longer be used: device authorizations, refresh tokens, web sessions, passkey
    /// challenges and device request nonces past their expiry, denylisted token ids whose tokens have expired, and
    /// attempt counters whose window and lockout are over.
    /// Returns how many.
    /// </summary>
    public Task<int> PruneExpiredAsync(long now, CancellationToken ct) =>
        db.WriteAsync(async w =>
        {
            var removed = 0;
            foreach (var table in PruneTables)
            {
                removed += await w.ExecAsync($"DELETE FROM {table} WHERE expires_at <= $1", now);
            }
            removed += await w.ExecAsync(WebhookStore.PruneSettled, now - (long)DeliveryLogKept.TotalMilliseconds);
            return removed;
        }, ct);

    public ValueTask DisposeAsync() => db.DisposeAsync();
}
