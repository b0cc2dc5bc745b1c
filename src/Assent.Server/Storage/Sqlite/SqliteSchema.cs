using Microsoft.Data.Sqlite;

namespace Assent.Server.Storage.Sqlite;

/// <summary>Versioned schema: each migration runs once, in order, inside the caller's lock.</summary>
internal static class SqliteSchema
{
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE users(
            id TEXT PRIMARY KEY,
            handle TEXT NOT NULL UNIQUE,
            is_admin INTEGER NOT NULL,
            created_at INTEGER NOT NULL);
        CREATE TABLE invites(
            code_hash BLOB PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id),
            expires_at INTEGER NOT NULL,
            used_at INTEGER);
        CREATE TABLE devices(
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id),
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            public_jwk TEXT NOT NULL,
            credential_id BLOB UNIQUE,
            sign_count INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            revoked_at INTEGER);
        CREATE INDEX devices_user ON devices(user_id);
        CREATE TABLE clients(
            id TEXT PRIMARY KEY,
            secret_hash BLOB NOT NULL,
            name TEXT NOT NULL,
            owner_user_id TEXT NOT NULL REFERENCES users(id),
            scopes TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            revoked_at INTEGER);
        CREATE TABLE approvals(
            id TEXT PRIMARY KEY,
            handle_hash BLOB NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            client_id TEXT NOT NULL,
            user_id TEXT NOT NULL REFERENCES users(id),
            scope TEXT NOT NULL,
            binding_message TEXT,
            authorization_details TEXT,
            resource TEXT,
            payload BLOB NOT NULL,
            state INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            device_id TEXT,
            evidence TEXT,
            decided_at INTEGER,
            redeemed_at INTEGER);
        CREATE INDEX approvals_user_state ON approvals(user_id, state, created_at);
        CREATE INDEX approvals_pending_expiry ON approvals(expires_at) WHERE state = 0;
        CREATE TABLE signing_keys(
            kid TEXT PRIMARY KEY,
            public_key BLOB NOT NULL,
            encrypted_seed BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            retired_at INTEGER);
        CREATE TABLE audit(
            seq INTEGER PRIMARY KEY,
            entry BLOB NOT NULL,
            hash BLOB NOT NULL,
            user_id TEXT);
        CREATE INDEX audit_user ON audit(user_id, seq);
        CREATE TABLE meta(
            key TEXT PRIMARY KEY,
            value BLOB NOT NULL);
        """,
        // 2: passkeys. Server-issued WebAuthn challenges (single-use, so several nodes share them)
        // and web app sessions; both keyed by SHA-256 of the value handed out.
        """
        CREATE TABLE webauthn_challenges(
            challenge_hash BLOB PRIMARY KEY,
            purpose TEXT NOT NULL,
            user_id TEXT,
            invite_hash BLOB,
            expires_at INTEGER NOT NULL);
        CREATE INDEX webauthn_challenges_expiry ON webauthn_challenges(expires_at);
        CREATE TABLE web_sessions(
            token_hash BLOB PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id),
            device_id TEXT NOT NULL REFERENCES devices(id),
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL);
        CREATE INDEX web_sessions_expiry ON web_sessions(expires_at);
        """,
        // 3: RFC 8628 device authorization, human sessions (refresh-token families) and the access-token denylist.
        """
        CREATE TABLE device_authorizations(
            id TEXT PRIMARY KEY,
            device_code_hash BLOB NOT NULL UNIQUE,
            user_code_hash BLOB NOT NULL UNIQUE,
            client_id TEXT NOT NULL,
            scope TEXT NOT NULL,
            requested_from TEXT NOT NULL,
            approval_id TEXT UNIQUE REFERENCES approvals(id),
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL);
        CREATE INDEX device_authorizations_expiry ON device_authorizations(expires_at);
        CREATE TABLE refresh_tokens(
            token_hash BLOB PRIMARY KEY,
            family_id TEXT NOT NULL,
            user_id TEXT NOT NULL REFERENCES users(id),
            client_id TEXT NOT NULL,
            scope TEXT NOT NULL,
            approval_id TEXT NOT NULL REFERENCES approvals(id),
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            used_at INTEGER,
            revoked_at INTEGER);
        CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
        CREATE TABLE revoked_access_tokens(
            jti TEXT PRIMARY KEY,
            expires_at INTEGER NOT NULL);
        """,
        // 4: a user's requests: the pending ones in a small index of their own, which a decision leaves, and all
        // of them by creation time for the history, which no state change touches. The index this replaces
        // held the state, so every decision and redemption moved an entry across a large index, and in WAL mode
        // each commit writes out every page it touched.
        """
        DROP INDEX approvals_user_state;
        CREATE INDEX approvals_user_created ON approvals(user_id, created_at);
        CREATE INDEX approvals_user_pending ON approvals(user_id, created_at) WHERE state = 0;
        """,
        // 5: nonces of signed device requests, kept past the clock-skew window: a replay is refused after a restart too.
        """
        CREATE TABLE device_nonces(
            device_id TEXT NOT NULL,
            nonce TEXT NOT NULL,
            expires_at INTEGER NOT NULL,
            PRIMARY KEY (device_id, nonce)) WITHOUT ROWID;
        CREATE INDEX device_nonces_expiry ON device_nonces(expires_at);
        """,
        // 6: decisions as rows: each approver's signature with its own evidence, so a request can carry several
        // (a quorum needs M of N approvers); the request keeps only its computed state. Existing decisions move over.
        """
        CREATE TABLE decisions(
            approval_id TEXT NOT NULL REFERENCES approvals(id),
            user_id TEXT NOT NULL,
            device_id TEXT NOT NULL,
            decision INTEGER NOT NULL,
            evidence TEXT NOT NULL,
            decided_at INTEGER NOT NULL,
            PRIMARY KEY (approval_id, user_id)) WITHOUT ROWID;
        INSERT INTO decisions(approval_id, user_id, device_id, decision, evidence, decided_at)
            SELECT id, user_id, device_id, CASE WHEN state = 2 THEN 2 ELSE 1 END, evidence, COALESCE(decided_at, created_at)
            FROM approvals WHERE device_id IS NOT NULL AND evidence IS NOT NULL;
        ALTER TABLE approvals DROP COLUMN device_id;
        ALTER TABLE approvals DROP COLUMN evidence;
        ALTER TABLE approvals ADD COLUMN quorum INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE approvals ADD COLUMN approvers INTEGER NOT NULL DEFAULT 1;
        """,
        // 7: an owner's active agents have distinct names, compared without case (legacy duplicates are renamed
        // first, see ClientSchema); users' consents that agents of other owners may ask them.
        ClientSchema.RenameDuplicateNames + ClientSchema.UniqueNames +
        """
        CREATE TABLE agent_consents(
            approval_id TEXT PRIMARY KEY REFERENCES approvals(id),
            user_id TEXT NOT NULL REFERENCES users(id),
            client_id TEXT NOT NULL REFERENCES clients(id),
            created_at INTEGER NOT NULL,
            revoked_at INTEGER);
        """ + ConsentSchema.Indexes,
        // 8: limits (docs/deployment.md §10). An agent's pending requests for a user, counted when it asks for another
        // (small: only pending rows, and the expiry lets the count skip those the sweeper has not reached yet); and
        // counters of failed attempts shared by every node, one row per key.
        """
        CREATE INDEX approvals_client_pending ON approvals(client_id, user_id, expires_at) WHERE state = 0;
        CREATE TABLE rate_counters(
            key TEXT PRIMARY KEY,
            window_start INTEGER NOT NULL,
            hits INTEGER NOT NULL,
            locked_until INTEGER NOT NULL,
            expires_at INTEGER NOT NULL) WITHOUT ROWID;
        CREATE INDEX rate_counters_expiry ON rate_counters(expires_at);
        """,
        // 9: the challenges API, API keys, webhooks and CIBA ping/push (docs/storage.md §9). Deliveries are the
        // outbox: written in the transaction of the transition they announce, so a crash loses none.
        """
        CREATE TABLE api_keys(
            id TEXT PRIMARY KEY,
            key_hash BLOB NOT NULL UNIQUE,
            owner_user_id TEXT NOT NULL REFERENCES users(id),
            name TEXT NOT NULL,
            scopes TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            last_used_at INTEGER,
            revoked_at INTEGER);
        CREATE INDEX api_keys_owner ON api_keys(owner_user_id, created_at);
        CREATE TABLE challenges(
            id TEXT PRIMARY KEY,
            api_key_id TEXT NOT NULL REFERENCES api_keys(id),
            owner_user_id TEXT NOT NULL,
            action TEXT NOT NULL,
            amount TEXT,
            currency TEXT,
            metadata TEXT,
            requires_human INTEGER NOT NULL,
            idempotency_key TEXT,
            request_hash BLOB);
        CREATE UNIQUE INDEX challenges_idempotency ON challenges(api_key_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
        CREATE TABLE webhook_endpoints(
            id TEXT PRIMARY KEY,
            owner_user_id TEXT NOT NULL REFERENCES users(id),
            url TEXT NOT NULL,
            events TEXT NOT NULL,
            sealed_secret BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            failures INTEGER NOT NULL DEFAULT 0,
            failing_since INTEGER,
            retry_at INTEGER,
            disabled_at INTEGER,
            disabled_reason TEXT,
            deleted_at INTEGER);
        CREATE INDEX webhook_endpoints_owner ON webhook_endpoints(owner_user_id) WHERE deleted_at IS NULL;
        CREATE TABLE webhook_events(
            endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id),
            event TEXT NOT NULL,
            PRIMARY KEY (endpoint_id, event)) WITHOUT ROWID;
        CREATE TABLE deliveries(
            id TEXT PRIMARY KEY,
            event_id TEXT NOT NULL,
            target_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            type TEXT NOT NULL,
            subject TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            next_attempt_at INTEGER NOT NULL,
            lease_until INTEGER NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 0,
            state INTEGER NOT NULL DEFAULT 0,
            body BLOB,
            last_attempt_at INTEGER,
            last_status INTEGER,
            last_error TEXT,
            delivered_at INTEGER);
        CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE state = 0;
        CREATE INDEX deliveries_target ON deliveries(target_id, created_at);
        CREATE TABLE ciba_notifications(
            approval_id TEXT PRIMARY KEY,
            sealed BLOB NOT NULL);
        ALTER TABLE clients ADD COLUMN delivery_mode TEXT NOT NULL DEFAULT 'poll';
        ALTER TABLE clients ADD COLUMN notification_endpoint TEXT;
        """,
        // 10: Web Push subscriptions of users' devices (docs/storage.md §3); the endpoint is the push service's capability URL.
        """
        CREATE TABLE push_subscriptions(
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id),
            device_id TEXT NOT NULL REFERENCES devices(id),
            endpoint TEXT NOT NULL UNIQUE,
            p256dh BLOB NOT NULL,
            auth BLOB NOT NULL,
            created_at INTEGER NOT NULL);
        CREATE INDEX push_subscriptions_user ON push_subscriptions(user_id);
        """,
        // 11: web sign-in (docs/storage.md §3): web clients, their users' consents, authorization codes (hashed), and the
        // ES256/RS256 ID-token keys. Tables of their own, so the agents' clients table is untouched.
        WebClientSchema.Tables("BLOB", "INTEGER"),
        // 12: policies (docs/policies.md): versioned rows, the policy a request met, and the eligible approvers of a quorum.
        """
        CREATE TABLE policies(
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            version INTEGER NOT NULL,
            position INTEGER NOT NULL,
            client_id TEXT,
            scope TEXT,
            detail_type TEXT,
            currency TEXT,
            amount_over TEXT,
            amount_at_most TEXT,
            requires TEXT NOT NULL,
            quorum INTEGER NOT NULL,
            approvers TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            removed_at INTEGER,
            UNIQUE(name, version));
        CREATE UNIQUE INDEX policies_active_name ON policies(name) WHERE removed_at IS NULL;
        ALTER TABLE approvals ADD COLUMN policy TEXT;
        CREATE TABLE approval_approvers(
            approval_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            PRIMARY KEY(approval_id, user_id));
        CREATE INDEX approval_approvers_user ON approval_approvers(user_id, approval_id);
        """,
        // 13: refresh tokens of web clients in the sessions' table (docs/storage.md §3): approval_id optional, the sign-in's device, auth_time, amr.
        WebClientSchema.SqliteWebRefreshTokens,
        // 14: payment wallets and the payments agents ask for (docs/payments.md, docs/storage.md).
        PaymentSchema.Tables("BLOB", "INTEGER"),
        // 15: spending mandates and the payments they approved (docs/policies.md §6).
        MandateSchema.Tables("INTEGER"),
        // 16: the end-to-end encrypted vault (docs/vault.md): recipient keys, items, sealed versions, wrapped keys, releases.
        VaultSchema.Tables("BLOB", "INTEGER"),
        // 17: vault versions list without reading their ciphertext: a size column, the blob last (docs/storage.md §3).
        VaultVersionSizes.Sqlite,
        // 18: stateless passkey sign-in challenges (docs/http-api.md §12.3): the hashes of those spent, each kept until it expires.
        SessionSchema.SpentChallenges("BLOB", "INTEGER"),
        // 19: the agents notified by ping or push, indexed: the writer asks once per transaction whether an event may have a delivery (docs/storage.md §9).
        OutboxSql.NotifiedClientsIndex,
    ];

    public static int LatestVersion => Migrations.Length;

    /// <summary>The migration that makes agent names unique per owner and adds consents.</summary>
    internal const int UniqueAgentNamesVersion = 7;

    /// <summary>The migration that gives vault versions their size column (17).</summary>
    internal const int VaultVersionSizesVersion = 17;

    /// <param name="upTo">The version to stop at (tests build older databases); every migration by default.</param>
    public static void Migrate(SqliteConnection c, int? upTo = null)
    {
        using (var create = c.CreateCommand())
        {
            create.CommandText = "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)";
            create.ExecuteNonQuery();
        }
        using var tx = c.BeginTransaction(deferred: false);
        using var read = c.CreateCommand();
        read.CommandText = "SELECT COALESCE(MAX(version), 0) FROM schema_version";
        var current = Convert.ToInt32(read.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        if (current > Migrations.Length)
        {
            throw new InvalidOperationException($"the database schema is version {current}, newer than this build ({Migrations.Length}); upgrade Assent");
        }
        for (var v = current; v < Math.Min(upTo ?? Migrations.Length, Migrations.Length); v++)
        {
            using var step = c.CreateCommand();
            step.CommandText = Migrations[v] + $"; INSERT INTO schema_version(version) VALUES({v + 1});";
            step.ExecuteNonQuery();
        }
        tx.Commit();
    }
}
