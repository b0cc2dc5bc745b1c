namespace Assent.Server.Storage;

/// <summary>The audit event types (docs/concepts.md §8.4: every request created, decided, redeemed, expired; devices; agents; keys).</summary>
internal static class AuditTypes
{
    public const string UserInvited = "user.invited";
    public const string ApprovalCreated = "approval.created";
    public const string ApprovalApproved = "approval.approved";
    public const string ApprovalDenied = "approval.denied";
    public const string ApprovalRedeemed = "approval.redeemed";
    public const string ApprovalExpired = "approval.expired";
    public const string ApprovalCancelled = "approval.cancelled";
    public const string ApiKeyCreated = "api_key.created";
    public const string ApiKeyRevoked = "api_key.revoked";
    public const string WebhookCreated = "webhook.created";
    public const string PolicyAdded = "policy.added";
    public const string PolicyRemoved = "policy.removed";

    /// <summary>A payment approved at once by a spending mandate the user had signed (docs/policies.md §6).</summary>
    public const string ApprovalApprovedByMandate = "approval.approved_by_mandate";

    /// <summary>A user revoked a spending mandate: it approves nothing after this (docs/policies.md §6).</summary>
    public const string MandateRevoked = "mandate.revoked";

    /// <summary>A request a deny policy refused before it was created (docs/policies.md §1).</summary>
    public const string ApprovalRefusedByPolicy = "approval.refused_by_policy";
    public const string WebhookDeleted = "webhook.deleted";
    public const string WebhookEnabled = "webhook.enabled";

    /// <summary>An endpoint disabled after failing for days (docs/webhooks.md §4); the entry is how its owner learns of it.</summary>
    public const string WebhookDisabled = "webhook.disabled";
    public const string DeviceEnrolled = "device.enrolled";
    public const string DeviceRenamed = "device.renamed";
    public const string DeviceRevoked = "device.revoked";
    public const string DeviceSignCountRegression = "device.sign_count_regression";
    public const string SessionCreated = "session.created";
    public const string AgentCreated = "agent.created";

    /// <summary>An agent's CIBA delivery mode or notification endpoint changed (CIBA Core §4).</summary>
    public const string AgentDeliveryChanged = "agent.delivery_changed";

    /// <summary>A web client registered for OpenID Connect sign-in (docs/http-api.md §17).</summary>
    public const string WebClientCreated = "web_client.created";

    /// <summary>A user consented to a web client's scopes.</summary>
    public const string WebConsentGranted = "web_consent.granted";

    /// <summary>A user revoked their consent to a web client in the web app; its refresh tokens for them ended with it.</summary>
    public const string WebConsentRevoked = "web_consent.revoked";

    /// <summary>A spent authorization code came back (RFC 6749 §4.1.2): refused, and the access token it issued revoked.</summary>
    public const string AuthorizationCodeReplayed = "authorization_code.replayed";

    /// <summary>An agent asked a user other than its owner who has not consented to it (docs/concepts.md §3.1).</summary>
    public const string AgentRefusedForeignUser = "agent.refused_foreign_user";
    public const string ConsentGranted = "consent.granted";
    public const string ConsentRevoked = "consent.revoked";
    public const string DeviceLoginStarted = "device_login.started";
    public const string DeviceLoginBound = "device_login.bound";
    public const string SessionStarted = "session.started";
    public const string SessionRefreshed = "session.refreshed";
    public const string SessionReuseDetected = "session.reuse_detected";
    public const string SessionRevoked = "session.revoked";
    public const string AccessTokenRevoked = "access_token.revoked";
    public const string KeyRotated = "key.rotated";
    public const string KeyCreated = "key.created";
    public const string PushSubscribed = "push.subscribed";
    public const string PushUnsubscribed = "push.unsubscribed";

    /// <summary>The push service answered 404 or 410 for a subscription (RFC 8030 §7.3): it was removed.</summary>
    public const string PushDropped = "push.dropped";

    /// <summary>A limit's first refusal of a key in its window (docs/deployment.md §10): once per window and key, not per request.</summary>
    public const string LimitRefused = "limit.refused";

    /// <summary>A key locked out after too many failed attempts.</summary>
    public const string LimitLockedOut = "limit.locked_out";
}

/// <summary>
/// The limits (docs/deployment.md §10) as audit entries name them in <c>data.limit</c> and as their keys begin
/// (<c>{limit}:…</c>); stored, so never renamed.
/// </summary>
internal static class LimitNames
{
    public const string ClientAuthentication = "client_auth";
    public const string ApiKeyAuthentication = "api_key_auth";
    public const string UserCode = "user_code";
    public const string EnrolmentCode = "enrolment_code";
    public const string PendingRequests = "pending_requests";
    public const string Creations = "creations";
    public const string Streams = "streams";
}
