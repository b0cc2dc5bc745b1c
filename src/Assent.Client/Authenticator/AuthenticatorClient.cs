using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Assent.Protocol;
using Assent.Protocol.Approvals;
using Assent.Protocol.Crypto;
using Assent.Protocol.Devices;
using Assent.Protocol.Messages;

namespace Assent.Client.Authenticator;

/// <summary>
/// The device side of the authenticator API (docs/http-api.md §10, <c>/authenticator/…</c>): enrol an Ed25519
/// key with a one-time code, then list and decide requests. Every call after enrolment is signed
/// with the device key (<see cref="DeviceSignatures"/>), so the device holds no bearer secret.
/// </summary>
/// <param name="server">The server's base URL.</param>
/// <param name="device">The enrolled key; required for everything but <see cref="EnrollAsync"/>.</param>
/// <param name="http">An HttpClient to use; when null the client makes (and disposes) its own.</param>
public sealed partial class AuthenticatorClient(Uri server, DeviceKey? device = null, HttpClient? http = null, TimeProvider? time = null) : IDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    private const string Prefix = "/authenticator";
    private readonly HttpClient _http = http ?? new HttpClient { Timeout = DefaultTimeout };
    private readonly bool _ownsHttp = http is null;
    private readonly string _base = server.AbsoluteUri.TrimEnd('/');
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Lock _signing = new();
    private Ed25519Signer? _signer;

    public Uri Server => server;

    /// <summary>Generates a new Ed25519 key, proves possession of it with the code, and enrols it.</summary>
    /// <remarks>The seed never leaves this process; the caller stores <see cref="EnrolledDevice.Key"/>.</remarks>
    public async Task<EnrolledDevice> EnrollAsync(string code, string? name, CancellationToken ct)
    {
        var seed = Ed25519.NewSeed();
        var publicKey = Base64Url.Encode(Ed25519.PublicKeyFromSeed(seed));
        var proof = Base64Url.Encode(Ed25519.Sign(seed, DeviceSignatures.EnrollmentSigningInput(code, publicKey)));
        var body = JsonSerializer.SerializeToUtf8Bytes(new EnrollRequest(code, publicKey, name, proof), ProtocolJson.Default.EnrollRequest);
        var answer = await SendAsync(HttpMethod.Post, Prefix + "/enroll", body, signed: false, ProtocolJson.Default.EnrollResponse, ct);
        if (string.IsNullOrEmpty(answer.DeviceId) || string.IsNullOrEmpty(answer.UserDid) || string.IsNullOrEmpty(answer.Issuer))
        {
            throw new AssentProtocolException("the enrolment answer lacks device_id, user_did or issuer");
        }
        return new EnrolledDevice(new DeviceKey(answer.DeviceId, seed), publicKey, answer.UserId, answer.UserDid, answer.Handle, answer.Issuer);
    }

    /// <summary>The pending requests of the device's user, oldest first as the server lists them.</summary>
    public async Task<IReadOnlyList<PendingRequest>> ListPendingAsync(CancellationToken ct)
    {
        var list = await SendAsync(HttpMethod.Get, Prefix + "/approvals", null, signed: true, ProtocolJson.Default.PendingList, ct);
        return list.Approvals.Select(ToRequest).ToList();
    }

    /// <summary>One request of the device's user, in whatever state it is.</summary>
    public async Task<PendingRequest> GetAsync(string id, CancellationToken ct) =>
        ToRequest(await SendAsync(HttpMethod.Get, $"{Prefix}/approvals/{Uri.EscapeDataString(id)}", null, signed: true, ProtocolJson.Default.PendingApproval, ct));

    /// <summary>Signs <c>decision ‖ 0x00 ‖ payload</c> (docs/concepts.md §5.1) with the device key and posts it.</summary>
    /// <exception cref="AssentProblemException">409 when already decided, 410 when expired, 401/403 when the device may not decide.</exception>
    public Task<DecisionResponse> DecideAsync(PendingRequest request, string decision, CancellationToken ct) => DecideAsync(request, decision, null, ct);

    /// <summary>
    /// As <see cref="DecideAsync(PendingRequest, string, CancellationToken)"/>, with the item key of a <c>vault_release</c>
    /// re-wrapped to the agent's key (b64u, docs/vault.md §4), sent beside the signed approval.
    /// </summary>
    public async Task<DecisionResponse> DecideAsync(PendingRequest request, string decision, string? vaultRelease, CancellationToken ct)
    {
        var key = RequireDevice();
        if (request.Payload is null)
        {
            // What is signed must be what was shown; bytes we cannot show are not signed.
            throw new AssentProtocolException($"request {request.Id} does not carry a valid approval payload; refusing to sign it");
        }
        var signature = Signer(key).Sign(ApprovalPayload.SigningInput(decision, request.PayloadBytes));
        var body = JsonSerializer.SerializeToUtf8Bytes(new DecisionRequest(key.DeviceId, decision, Base64Url.Encode(signature), VaultRelease: vaultRelease), ProtocolJson.Default.DecisionRequest);
        return await SendAsync(HttpMethod.Post, $"{Prefix}/approvals/{Uri.EscapeDataString(request.Id)}/decision", body, signed: false,
            ProtocolJson.Default.DecisionResponse, ct);
    }

    /// <summary>
    /// Binds an RFC 8628 user code (shown by <c>assent auth login</c>) to the device's user: the server raises
    /// the sign-in as a request of this user and returns it, to be shown and decided like any other.
    /// </summary>
    public async Task<PendingRequest> StartDeviceLoginAsync(string userCode, CancellationToken ct)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(new DeviceLoginRequest(userCode), ProtocolJson.Default.DeviceLoginRequest);
        return ToRequest(await SendAsync(HttpMethod.Post, Prefix + "/device-login", body, signed: true, ProtocolJson.Default.PendingApproval, ct));
    }

    /// <summary>The devices of the device's user, as the server knows them.</summary>
    public Task<DeviceList> ListDevicesAsync(CancellationToken ct) =>
        SendAsync(HttpMethod.Get, Prefix + "/devices", null, signed: true, ProtocolJson.Default.DeviceList, ct);

    /// <summary>The agents of other users that the device's user allows (or allowed) to ask them.</summary>
    public Task<ConsentList> ListConsentsAsync(CancellationToken ct) =>
        SendAsync(HttpMethod.Get, Prefix + "/consents", null, signed: true, ProtocolJson.Default.ConsentList, ct);

    /// <summary>Stops allowing another user's agent to ask the device's user; its next request is refused.</summary>
    /// <exception cref="AssentProblemException">404 when the user does not allow that agent.</exception>
    public async Task RevokeConsentAsync(string clientId, CancellationToken ct)
    {
        using var response = await SendRawAsync(HttpMethod.Delete, $"{Prefix}/consents/{Uri.EscapeDataString(clientId)}", ct);
        if (!response.IsSuccessStatusCode)
        {
            throw await ProblemAsync(response, ct);
        }
    }

    /// <summary>
    /// One page of audit entries after sequence number <paramref name="after"/>: the user's own, or
    /// every entry when the device's user is an admin. <see cref="AuditPage.Next"/> is null on the last page.
    /// </summary>
    public Task<AuditPage> ReadAuditAsync(long after, int limit, CancellationToken ct) =>
        SendAsync(HttpMethod.Get, $"/audit?after={after}&limit={limit}", null, signed: true, ProtocolJson.Default.AuditPage, ct);

    /// <summary>The latest signed checkpoint of the audit chain.</summary>
    public Task<AuditCheckpoint> ReadAuditCheckpointAsync(CancellationToken ct) =>
        SendAsync(HttpMethod.Get, "/audit/checkpoint", null, signed: false, ProtocolJson.Default.AuditCheckpoint, ct);

    /// <summary>Revokes one of the user's devices (this one included); it can decide nothing afterwards.</summary>
    public async Task RevokeDeviceAsync(string deviceId, CancellationToken ct)
    {
        using var response = await SendRawAsync(HttpMethod.Delete, $"{Prefix}/devices/{Uri.EscapeDataString(deviceId)}", ct);
        if (!response.IsSuccessStatusCode)
        {
            throw await ProblemAsync(response, ct);
        }
    }

    /// <summary>
    /// The live stream of the user's requests (Server-Sent Events): first every pending request, then
    /// each new one as it is created and each one as it settles. Ends when <paramref name="ct"/> is cancelled or the server closes it.
    /// </summary>
    public async IAsyncEnumerable<AuthenticatorEvent> StreamAsync([EnumeratorCancellation] CancellationToken ct)
    {
        using var response = await SendRawAsync(HttpMethod.Get, Prefix + "/stream", ct);
        if (!response.IsSuccessStatusCode)
        {
            throw await ProblemAsync(response, ct);
        }
        await using var stream = await response.Content.ReadAsStreamAsync(ct);
        using var reader = new StreamReader(stream);
        string? type = null, id = null;
        var data = new StringBuilder();
        while (true)
        {
            string? line;
            try
            {
                line = await reader.ReadLineAsync(ct);
            }
            catch (IOException e) when (!ct.IsCancellationRequested)
            {
                throw new AssentUnreachableException(server, "the event stream broke: " + e.Message, e);
            }
            if (line is null)
            {
                yield break;
            }
            // HTML Living Standard §9.2.6: a blank line dispatches the event; ':' starts a comment.
            if (line.Length == 0)
            {
                if (data.Length > 0 && ToEvent(type ?? "message", id, data.ToString()) is { } e)
                {
                    yield return e;
                }
                (type, id) = (null, null);
                data.Clear();
                continue;
            }
            if (line[0] == ':')
            {
                continue;
            }
            var colon = line.IndexOf(':');
            var field = colon < 0 ? line : line[..colon];
            var value = colon < 0 ? "" : line[(colon + 1)..].TrimStart(' ');
            switch (field)
            {
                case "event":
                    type = value;
                    break;
                case "id":
                    id = value;
                    break;
                case "data":
                    if (data.Length > 0)
                    {
                        data.Append('\n');
                    }
                    data.Append(value);
                    break;
            }
        }
    }

    private static AuthenticatorEvent? ToEvent(string type, string? id, string data)
    {
        try
        {
            switch (type)
            {
                case AuthenticatorEvent.Approval:
                    var view = JsonSerializer.Deserialize(data, ProtocolJson.Default.PendingApproval);
                    return view is null ? null : new AuthenticatorEvent(type, view.Id, ToRequest(view), null);
                case AuthenticatorEvent.Settled:
                    var settled = JsonSerializer.Deserialize(data, ProtocolJson.Default.DecisionResponse);
                    return settled is null ? null : new AuthenticatorEvent(type, settled.Id, null, settled.State);
                default:
                    return null;
            }
        }
        catch (JsonException)
        {
            // An event this client cannot read is skipped, not fatal: the list can always be fetched again.
            return null;
        }
    }

    private async Task<HttpResponseMessage> SendRawAsync(HttpMethod method, string path, CancellationToken ct)
    {
        var uri = new Uri(_base + path);
        using var request = new HttpRequestMessage(method, uri);
        var key = RequireDevice();
        request.Headers.TryAddWithoutValidation("Authorization",
            DeviceSignatures.SignRequest(key.DeviceId, key.Seed, method.Method, uri.PathAndQuery, [], _time.GetUtcNow()));
        // Headers only: the stream's body lasts as long as the caller reads it, beyond HttpClient.Timeout.
        return await Transport.SendAsync(_http, server, request, ct, HttpCompletionOption.ResponseHeadersRead);
    }

    public void Dispose()
    {
        lock (_signing)
        {
            _signer?.Dispose();
            _signer = null;
        }
        if (_ownsHttp)
        {
            _http.Dispose();
        }
    }

    /// <summary>
    /// The device key imported once for the decisions this client signs (<see cref="Ed25519Signer"/>: an import costs
    /// more than a signature), as a phone keeps its key loaded; the seed is the one the client already holds.
    /// </summary>
    private Ed25519Signer Signer(DeviceKey key)
    {
        lock (_signing)
        {
            return _signer ??= new Ed25519Signer(key.Seed);
        }
    }

    private DeviceKey RequireDevice() =>
        device ?? throw new InvalidOperationException("this call is signed with a device key; create the client with the enrolled DeviceKey");

    private static PendingRequest ToRequest(PendingApproval view)
    {
        if (!Base64Url.TryDecode(view.Payload, out var bytes))
        {
            return new PendingRequest(view.Id, view.Kind, view.State, [], null, view.ClientOwner, view.Policy, view.Quorum);
        }
        // The payload must be about this very request; otherwise a signature could be moved to another one.
        var payload = ApprovalPayload.TryParse(bytes, out var parsed) && parsed!.Req == view.Id ? parsed : null;
        return new PendingRequest(view.Id, view.Kind, view.State, bytes, payload, view.ClientOwner, view.Policy, view.Quorum);
    }

    private async Task<T> SendAsync<T>(HttpMethod method, string path, byte[]? body, bool signed, JsonTypeInfo<T> type, CancellationToken ct)
    {
        var uri = new Uri(_base + path);
        using var request = new HttpRequestMessage(method, uri);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }
        if (signed)
        {
            var key = RequireDevice();
            request.Headers.TryAddWithoutValidation("Authorization",
                DeviceSignatures.SignRequest(key.DeviceId, key.Seed, method.Method, uri.PathAndQuery, body ?? [], _time.GetUtcNow()));
        }
        var response = await Transport.SendAsync(_http, server, request, ct);
        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                throw await ProblemAsync(response, ct);
            }
            try
            {
                return await response.Content.ReadFromJsonAsync(type, ct)
                    ?? throw new AssentProtocolException($"{method} {path} answered with an empty body");
            }
            catch (JsonException e)
            {
                throw new AssentProtocolException($"{method} {path} answered with JSON of an unexpected shape: {e.Message}");
            }
        }
    }

    /// <summary>Reads RFC 9457 <c>detail</c> (or an RFC 6749 <c>error_description</c>) from an error response.</summary>
    internal static async Task<AssentProblemException> ProblemAsync(HttpResponseMessage response, CancellationToken ct)
    {
        ProblemBody? problem = null;
        try
        {
            var text = await response.Content.ReadAsStringAsync(ct);
            if (text.TrimStart().StartsWith('{'))
            {
                problem = JsonSerializer.Deserialize(text, ClientJson.Default.ProblemBody);
            }
        }
        catch (JsonException)
        {
            problem = null;
        }
        var detail = problem?.Detail ?? problem?.ErrorDescription ?? problem?.Error ?? response.ReasonPhrase ?? "no detail given";
        return new AssentProblemException(response.StatusCode, problem?.Title ?? problem?.Error ?? response.ReasonPhrase, detail);
    }
}
