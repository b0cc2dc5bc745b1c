using Npgsql;

namespace Assent.Server.Storage.Postgres;

/// <summary>
/// PostgreSQL schema, versioned like the SQLite one. Every node migrates at start; an advisory
/// lock makes concurrent starts take turns, so each migration runs exactly once.
/// </summary>
internal static class PostgresSchema
{
    private const long MigrationLock = 0x4153534E54; // "ASSNT"

    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE users(
            id TEXT PRIMARY KEY,
            handle TEXT NOT NULL UNIQUE,
            is_admin BOOLEAN NOT NULL,
            created_at BIGINT NOT NULL);
        CREATE TABLE invites(
            code_hash BYTEA PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id),
            expires_at BIGINT NOT NULL,
            used_at BIGINT);
        CREATE TABLE devices(
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id),
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            public_jwk TEXT NOT NULL,
            credential_id BYTEA UNIQUE,
            sign_count BIGINT NOT NULL DEFAULT 0,
            created_at BIGINT NOT NULL,
            revoked_at BIGINT);
        CREATE INDEX devices_user ON devices(user_id);
        CREATE TABLE clients(
            id TEXT PRIMARY KEY,
            secret_hash BYTEA NOT NULL,
            name TEXT NOT NULL,
            owner_user_id TEXT NOT NULL REFERENCES users(id),
            scopes TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            revoked_at BIGINT);
        CREATE TABLE approvals(
            id TEXT PRIMARY KEY,
            handle_hash BYTEA NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            client_id TEXT NOT NULL,
            user_id TEXT NOT NULL REFERENCES users(id),
            scope TEXT NOT NULL,
            binding_message TEXT,
            authorization_details TEXT,
            resource TEXT,
            payload BYTEA NOT NULL,
            state INT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            device_id TEXT,
            evidence TEXT,
            decided_at BIGINT,
            redeemed_at BIGINT);
        CREATE INDEX approvals_user_state ON approvals(user_id, state, created_at);
        CREATE INDEX approvals_pending_expiry ON approvals(expires_at) WHERE state = 0;
        CREATE TABLE signing_keys(
            kid TEXT PRIMARY KEY,
            public_key BYTEA NOT NULL,
            encrypted_seed BYTEA NOT NULL,
            created_at BIGINT NOT NULL,
            retired_at BIGINT);
        CREATE TABLE audit(
            seq BIGINT PRIMARY KEY,
            entry BYTEA NOT NULL,
            hash BYTEA NOT NULL,
            user_id TEXT);
        CREATE INDEX audit_user ON audit(user_id, seq);
        -- One row: the chain head. Appending locks it, so entries are sealed in one order across every node.
        CREATE TABLE audit_head(
            id INT PRIMARY KEY CHECK (id = 1),
            seq BIGINT NOT NULL,
            hash BYTEA NOT NULL);
        INSERT INTO audit_head(id, seq, hash) VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');
        CREATE TABLE meta(
            key TEXT PRIMARY KEY,
            value BYTEA NOT NULL);
        """,
        // 2: passkey ceremonies (single-use server challenges) and web app sessions.
        """
        CREATE TABLE webauthn_challenges(
            challenge_hash BYTEA PRIMARY KEY,
            purpose TEXT NOT NULL,
            user_id TEXT,
            invite_hash BYTEA,
            expires_at BIGINT NOT NULL);
        CREATE INDEX webauthn_challenges_expiry ON webauthn_challenges(expires_at);
        CREATE TABLE web_sessions(
            token_hash BYTEA PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id),
            device_id TEXT NOT NULL REFERENCES devices(id),
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL);
        CREATE INDEX web_sessions_expiry ON web_sessions(expires_at);
        """,
        // 3: RFC 8628 device authorization, human sessions (refresh-token families) and the access-token denylist.
        """
        CREATE TABLE device_authorizations(
            id TEXT PRIMARY KEY,
            device_code_hash BYTEA NOT NULL UNIQUE,
            user_code_hash BYTEA NOT NULL UNIQUE,
            client_id TEXT NOT NULL,
            scope TEXT NOT NULL,
            requested_from TEXT NOT NULL,
            approval_id TEXT UNIQUE REFERENCES approvals(id),
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL);
        CREATE INDEX device_authorizations_expiry ON device_authorizations(expires_at);
        CREATE TABLE refresh_tokens(
            token_hash BYTEA PRIMARY KEY,
            family_id TEXT NOT NULL,
            user_id TEXT NOT NULL REFERENCES users(id),
            client_id TEXT NOT NULL,
            scope TEXT NOT NULL,
            approval_id TEXT NOT NULL REFERENCES approvals(id),
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            used_at BIGINT,
            revoked_at BIGINT);
        CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
        CREATE TABLE revoked_access_tokens(
            jti TEXT PRIMARY KEY,
            expires_at BIGINT NOT NULL);
        """,
        // 4: audit events are stored unsealed with their transition and chained by a sealer, so writes
        // from every node no longer queue for the chain-head row. body = the canonical entry after {"seq":N,
        """
        CREATE TABLE audit_pending(
            id BIGSERIAL PRIMARY KEY,
            body BYTEA NOT NULL,
            user_id TEXT);
        """,
        // 5: nonces of signed device requests, shared: a request replayed to another node is refused there too.
        """
        CREATE TABLE device_nonces(
            device_id TEXT NOT NULL,
            nonce TEXT NOT NULL,
            expires_at BIGINT NOT NULL,
            PRIMARY KEY (device_id, nonce));
        CREATE INDEX device_nonces_expiry ON device_nonces(expires_at);
        """,
        // 6: decisions as rows (see the SQLite migration of the same number).
        """
        CREATE TABLE decisions(
            approval_id TEXT NOT NULL REFERENCES approvals(id),
            user_id TEXT NOT NULL,
            device_id TEXT NOT NULL,
            decision INT NOT NULL,
            evidence TEXT NOT NULL,
            decided_at BIGINT NOT NULL,
            PRIMARY KEY (approval_id, user_id));
        INSERT INTO decisions(approval_id, user_id, device_id, decision, evidence, decided_at)
            SELECT id, user_id, device_id, CASE WHEN state = 2 THEN 2 ELSE 1 END, evidence, COALESCE(decided_at, created_at)
            FROM approvals WHERE device_id IS NOT NULL AND evidence IS NOT NULL;
        ALTER TABLE approvals DROP COLUMN device_id, DROP COLUMN evidence,
            ADD COLUMN quorum INT NOT NULL DEFAULT 1, ADD COLUMN approvers INT NOT NULL DEFAULT 1;
        """,
        // 7: unique agent names per owner, and consents (see the SQLite migration of the same number).
        ClientSchema.RenameDuplicateNames + ClientSchema.UniqueNames +
        """
        CREATE TABLE agent_consents(
            approval_id TEXT PRIMARY KEY REFERENCES approvals(id),
            user_id TEXT NOT NULL REFERENCES users(id),
            client_id TEXT NOT NULL REFERENCES clients(id),
            created_at BIGINT NOT NULL,
            revoked_at BIGINT);
        """ + ConsentSchema.Indexes,
        // 8: limits: the pending-request count per agent and user, and the shared counters of failed attempts
        // (see the SQLite migration of the same number).
        """
        CREATE INDEX approvals_client_pending ON approvals(client_id, user_id, expires_at) WHERE state = 0;
        CREATE TABLE rate_counters(
            key TEXT PRIMARY KEY,
            window_start BIGINT NOT NULL,
            hits BIGINT NOT NULL,
            locked_until BIGINT NOT NULL,
            expires_at BIGINT NOT NULL);
        CREATE INDEX rate_counters_expiry ON rate_counters(expires_at);
        """,
        // 9: challenges, API keys, webhooks, CIBA ping/push (see the SQLite migration of the same number).
        """
        CREATE TABLE api_keys(
            id TEXT PRIMARY KEY,
            key_hash BYTEA NOT NULL UNIQUE,
            owner_user_id TEXT NOT NULL REFERENCES users(id),
            name TEXT NOT NULL,
            scopes TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            last_used_at BIGINT,
            revoked_at BIGINT);
        CREATE INDEX api_keys_owner ON api_keys(owner_user_id, created_at);
        CREATE TABLE challenges(
            id TEXT PRIMARY KEY,
            api_key_id TEXT NOT NULL REFERENCES api_keys(id),
            owner_user_id TEXT NOT NULL,
            action TEXT NOT NULL,
            amount TEXT,
            currency TEXT,
            metadata TEXT,
            requires_human INT NOT NULL,
            idempotency_key TEXT,
            request_hash BYTEA);
        CREATE UNIQUE INDEX challenges_idempotency ON challenges(api_key_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
        CREATE TABLE webhook_endpoints(
            id TEXT PRIMARY KEY,
            owner_user_id TEXT NOT NULL REFERENCES users(id),
            url TEXT NOT NULL,
            events TEXT NOT NULL,
            sealed_secret BYTEA NOT NULL,
            created_at BIGINT NOT NULL,
            failures INT NOT NULL DEFAULT 0,
            failing_since BIGINT,
            retry_at BIGINT,
            disabled_at BIGINT,
            disabled_reason TEXT,
            deleted_at BIGINT);
        CREATE INDEX webhook_endpoints_owner ON webhook_endpoints(owner_user_id) WHERE deleted_at IS NULL;
        CREATE TABLE webhook_events(
            endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id),
            event TEXT NOT NULL,
            PRIMARY KEY (endpoint_id, event));
        CREATE TABLE deliveries(
            id TEXT PRIMARY KEY,
            event_id TEXT NOT NULL,
            target_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            type TEXT NOT NULL,
            subject TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            next_attempt_at BIGINT NOT NULL,
            lease_until BIGINT NOT NULL DEFAULT 0,
            attempts INT NOT NULL DEFAULT 0,
            state INT NOT NULL DEFAULT 0,
            body BYTEA,
            last_attempt_at BIGINT,
            last_status INT,
            last_error TEXT,
            delivered_at BIGINT);
        CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE state = 0;
        CREATE INDEX deliveries_target ON deliveries(target_id, created_at);
        CREATE TABLE ciba_notifications(
            approval_id TEXT PRIMARY KEY,
            sealed BYTEA NOT NULL);
        ALTER TABLE clients ADD COLUMN delivery_mode TEXT NOT NULL DEFAULT 'poll', ADD COLUMN notification_endpoint TEXT;
        """,
        // 10: Web Push subscriptions of users' devices (docs/storage.md §3); the endpoint is the push service's capability URL.
        """
        CREATE TABLE push_subscriptions(
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id),
            device_id TEXT NOT NULL REFERENCES devices(id),
            endpoint TEXT NOT NULL UNIQUE,
            p256dh BYTEA NOT NULL,
            auth BYTEA NOT NULL,
            created_at BIGINT NOT NULL);
        CREATE INDEX push_subscriptions_user ON push_subscriptions(user_id);
        """,
        // 11: web sign-in (see the SQLite migration of the same number).
        WebClientSchema.Tables("BYTEA", "BIGINT"),
        // 12: policies (see the SQLite migration of the same number).
        """
        CREATE TABLE policies(
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            version INT NOT NULL,
            position INT NOT NULL,
            client_id TEXT,
            scope TEXT,
            detail_type TEXT,
            currency TEXT,
            amount_over TEXT,
            amount_at_most TEXT,
            requires TEXT NOT NULL,
            quorum INT NOT NULL,
            approvers TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            removed_at BIGINT,
            UNIQUE(name, version));
        CREATE UNIQUE INDEX policies_active_name ON policies(name) WHERE removed_at IS NULL;
        ALTER TABLE approvals ADD COLUMN policy TEXT;
        CREATE TABLE approval_approvers(
            approval_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            PRIMARY KEY(approval_id, user_id));
        CREATE INDEX approval_approvers_user ON approval_approvers(user_id, approval_id);
        """,
        // 13: refresh tokens of web clients (see the SQLite migration of the same number).
        WebClientSchema.PostgresWebRefreshTokens,
        // 14: payment wallets and payments (see the SQLite migration of the same number).
        PaymentSchema.Tables("BYTEA", "BIGINT"),
        // 15: spending mandates (see the SQLite migration of the same number).
        MandateSchema.Tables("BIGINT"),
        // 16: the vault (see the SQLite migration of the same number).
        VaultSchema.Tables("BYTEA", "BIGINT"),
        // 17: the vault versions' size column (see the SQLite migration of the same number).
        VaultVersionSizes.Postgres,
        // 18: spent stateless sign-in challenges (see the SQLite migration of the same number).
        SessionSchema.SpentChallenges("BYTEA", "BIGINT"),
        // 19: the agents notified by ping or push (see the SQLite migration of the same number).
        OutboxSql.NotifiedClientsIndex,
    ];

    public static async Task MigrateAsync(NpgsqlDataSource source, CancellationToken ct)
    {
        await using var c = await source.OpenConnectionAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        await using (var lockCmd = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({MigrationLock}); CREATE TABLE IF NOT EXISTS schema_version(version INT NOT NULL);", c, tx))
        {
            await lockCmd.ExecuteNonQueryAsync(ct);
        }
        int current;
        await using (var read = new NpgsqlCommand("SELECT COALESCE(MAX(version), 0) FROM schema_version", c, tx))
        {
            current = Convert.ToInt32(await read.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture);
        }
        if (current > Migrations.Length)
        {
            throw new InvalidOperationException($"the database schema is version {current}, newer than this build ({Migrations.Length}); upgrade Assent");
        }
        for (var v = current; v < Migrations.Length; v++)
        {
            await using var step = new NpgsqlCommand(Migrations[v] + $"; INSERT INTO schema_version(version) VALUES({v + 1});", c, tx);
            await step.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
    }
}
