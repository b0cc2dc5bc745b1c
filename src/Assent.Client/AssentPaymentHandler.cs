using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Assent.Protocol.Messages;

namespace Assent.Client;

/// <summary>How a payment that was not made ended (docs/payments.md §7).</summary>
public enum PaymentOutcome
{
    /// <summary>The human denied it (or a policy did).</summary>
    Denied,

    /// <summary>Nobody decided in time, or the approved authorization's window passed.</summary>
    Expired,

    /// <summary>The server refused to ask: above the maximum, nothing payable offered, a malformed 402, no wallet.</summary>
    Refused,
}

/// <summary>A paid request that could not be paid; <see cref="Outcome"/> says why, <see cref="Exception.Message"/> in words.</summary>
public sealed class AssentPaymentException(PaymentOutcome outcome, string message, string? paymentId = null) : Exception(message)
{
    public PaymentOutcome Outcome => outcome;

    /// <summary>The payment (<c>pay_…</c>) when one was asked for.</summary>
    public string? PaymentId => paymentId;
}

/// <summary>
/// Pays HTTP 402 answers transparently (docs/sdk.md §10, docs/payments.md): when the inner handler answers 402, the
/// 402 is handed to the Assent server (<c>POST /v1/payments</c>), which asks the agent's owner to approve exactly
/// what is offered; once approved, the request is sent again with the header the server signed
/// (<c>PAYMENT-SIGNATURE</c>, <c>X-PAYMENT</c>, or MPP's <c>Authorization: Payment …</c>), and the paid server's receipt
/// (<c>PAYMENT-RESPONSE</c>, <c>X-PAYMENT-RESPONSE</c> or <c>Payment-Receipt</c>) is posted back — by default while the paid
/// answer is already with the caller (<see cref="WaitForReceipt"/>; <see cref="ReceiptsPostedAsync"/>, and disposing, wait for
/// it). The agent never holds a wallet key. A payment that is denied, expires or is refused throws <see cref="AssentPaymentException"/>.
/// <code>
/// using var http = new HttpClient(new AssentPaymentHandler(AssentClientOptions.FromEnvironment()) { MaxAmount = "0.50" });
/// var report = await http.GetStringAsync("https://api.example/report");
/// </code>
/// </summary>
public sealed class AssentPaymentHandler : DelegatingHandler
{
    /// <summary>Per request, overrides <see cref="MaxAmount"/>: <c>request.Options.Set(AssentPaymentHandler.MaxAmountOption, "0.10")</c>.</summary>
    public static readonly HttpRequestOptionsKey<string> MaxAmountOption = new("Assent.MaxAmount");

    /// <summary>A 402 body read at most: more is not a payment request.</summary>
    private const int MaxBodyBytes = 32 * 1024;

    /// <summary>The receipt headers a paid server answers with, in the order looked for (docs/payments.md §1 step 6).</summary>
    private static readonly string[] ReceiptHeaders = ["PAYMENT-RESPONSE", "X-PAYMENT-RESPONSE", "Payment-Receipt"];

    /// <summary>Waits before posting a receipt again when the Assent server could not be reached or failed (5xx); then it is given up.</summary>
    private static readonly TimeSpan[] ReceiptRetries = [TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(1)];

    /// <summary>Receipts being posted in the background, by a running number.</summary>
    private readonly ConcurrentDictionary<long, Task> _receipts = new();

    /// <summary>Cancelled once disposing has waited <see cref="ReceiptFlushTimeout"/>: what is still posting then is given up.</summary>
    private readonly CancellationTokenSource _closing = new();

    private long _receiptCount;

    private int _disposed;

    private readonly AssentClientOptions _options;
    private readonly HttpClient _assent;
    private readonly bool _ownsAssent;

    public AssentPaymentHandler(AssentClientOptions options) : this(options, new HttpClientHandler())
    {
    }

    /// <param name="inner">The handler paid requests go through.</param>
    public AssentPaymentHandler(AssentClientOptions options, HttpMessageHandler inner) : base(inner)
    {
        _options = options;
        if (options.Server is null || options.ClientId is null || options.ClientSecret is null)
        {
            throw new ArgumentException("AssentPaymentHandler needs the server, client id and client secret (ASSENT_SERVER, ASSENT_CLIENT_ID, ASSENT_CLIENT_SECRET)");
        }
        _ownsAssent = options.HttpClient is null;
        _assent = options.HttpClient ?? new HttpClient { Timeout = options.MaxWait + TimeSpan.FromSeconds(30) };
    }

    /// <summary>The most one payment may cost, a decimal in the asset's units (e.g. <c>"0.50"</c> USDC); null: no maximum beyond the human's approval.</summary>
    public string? MaxAmount { get; init; }

    /// <summary>How long to wait for the human's decision before giving up (the request expires on the server too).</summary>
    public TimeSpan DecisionTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Called with each payment once it is approved and before the paid request is sent again (e.g. to log it).</summary>
    public Action<PaymentResponse>? OnPaid { get; init; }

    /// <summary>
    /// Whether the paid answer is returned only once its receipt has been posted to the Assent server (<c>true</c>), or at once
    /// while the receipt is posted in the background (<c>false</c>, the default: the paid request does not wait for an Assent
    /// round trip it has no use for). Either way the receipt is posted (tried again twice if the server cannot be reached or
    /// fails), <see cref="ReceiptsPostedAsync"/> waits for what is still being posted, and disposing the handler waits for it
    /// up to <see cref="ReceiptFlushTimeout"/>. Only a process that ends without disposing loses a receipt still in flight;
    /// the payment itself is signed and audited before the paid request is sent again (docs/payments.md §1).
    /// </summary>
    public bool WaitForReceipt { get; init; }

    /// <summary>How long disposing waits for receipts still being posted in the background.</summary>
    public TimeSpan ReceiptFlushTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Completes when every receipt posted in the background so far has been handled (kept by the server, or given up).</summary>
    public Task ReceiptsPostedAsync(CancellationToken ct = default) => Task.WhenAll(_receipts.Values).WaitAsync(ct);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        // The request is sent twice when it must be paid: its body is kept to be sent again.
        var body = request.Content is null ? null : await request.Content.ReadAsByteArrayAsync(ct);
        var contentHeaders = request.Content?.Headers.ToList();
        if (body is not null)
        {
            request.Content = Content(body, contentHeaders!);
        }
        var response = await base.SendAsync(request, ct);
        if (response.StatusCode != HttpStatusCode.PaymentRequired)
        {
            return response;
        }
        PaymentResponse payment;
        using (response)
        {
            var max = request.Options.TryGetValue(MaxAmountOption, out var perRequest) ? perRequest : MaxAmount;
            payment = await PayAsync(request, response, max, ct);
        }
        OnPaid?.Invoke(payment);
        var retry = new HttpRequestMessage(request.Method, request.RequestUri) { Version = request.Version, VersionPolicy = request.VersionPolicy };
        foreach (var header in request.Headers)
        {
            retry.Headers.TryAddWithoutValidation(header.Key, header.Value);
        }
        if (body is not null)
        {
            retry.Content = Content(body, contentHeaders!);
        }
        // MPP pays in Authorization: the credential takes the place of any the request carried.
        retry.Headers.Remove(payment.Header!.Name);
        retry.Headers.TryAddWithoutValidation(payment.Header.Name, payment.Header.Value);
        var paid = await base.SendAsync(retry, ct);
        foreach (var name in ReceiptHeaders)
        {
            if (paid.Headers.TryGetValues(name, out var values) && values.FirstOrDefault() is { } receipt)
            {
                var receiptRequest = new PaymentReceiptRequest(name, receipt);
                if (WaitForReceipt)
                {
                    await PostReceiptAsync(payment.PaymentId, receiptRequest, ct);
                }
                else
                {
                    // On the thread pool, away from any synchronization context the caller has, so that disposing can wait for it.
                    var number = Interlocked.Increment(ref _receiptCount);
                    var posting = Task.Run(() => PostReceiptAsync(payment.PaymentId, receiptRequest, _closing.Token), CancellationToken.None);
                    _receipts[number] = posting;
                    _ = posting.ContinueWith(_ => _receipts.TryRemove(number, out var _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously,
                        TaskScheduler.Default);
                }
                break;
            }
        }
        return paid;
    }

    /// <summary>
    /// Posts the paid server's receipt, where it is kept and audited (<c>POST /v1/payments/{id}/receipt</c>). Never throws: a
    /// receipt that cannot be posted does not undo a paid answer. Tried again when the server is unreachable or fails (5xx);
    /// any other answer (e.g. 409, the receipt is kept already) is final.
    /// </summary>
    private async Task PostReceiptAsync(string paymentId, PaymentReceiptRequest receipt, CancellationToken ct)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                using var post = Call(HttpMethod.Post, $"/v1/payments/{paymentId}/receipt");
                post.Content = JsonContent.Create(receipt, PaymentJson.Default.PaymentReceiptRequest);
                using var answer = await Transport.SendAsync(_assent, _options.Server!, post, ct);
                if ((int)answer.StatusCode < 500)
                {
                    return;
                }
            }
            catch (AssentUnreachableException)
            {
            }
            catch (Exception) when (!WaitForReceipt || !ct.IsCancellationRequested)
            {
                // The answer could not be read, or disposing gave up on it: nothing more to do for this receipt.
                return;
            }
            if (attempt >= ReceiptRetries.Length)
            {
                return;
            }
            try
            {
                await Task.Delay(ReceiptRetries[attempt], ct);
            }
            catch (OperationCanceledException) when (!WaitForReceipt)
            {
                return;
            }
        }
    }

    private static ByteArrayContent Content(byte[] body, List<KeyValuePair<string, IEnumerable<string>>> headers)
    {
        var content = new ByteArrayContent(body);
        foreach (var h in headers)
        {
            content.Headers.TryAddWithoutValidation(h.Key, h.Value);
        }
        return content;
    }

    /// <summary>Hands the 402 to the server and waits for the decision; the approved payment, with its header.</summary>
    internal async Task<PaymentResponse> PayAsync(HttpRequestMessage request, HttpResponseMessage response, string? max, CancellationToken ct)
    {
        var headers = new Dictionary<string, string[]>(StringComparer.OrdinalIgnoreCase);
        foreach (var h in response.Headers.Concat(response.Content.Headers))
        {
            headers[h.Key] = [.. h.Value];
        }
        var bytes = await ReadBoundedAsync(response.Content, ct);
        var create = new PaymentCreateRequest(request.RequestUri!.AbsoluteUri, 402, JsonSerializer.SerializeToElement(headers),
            bytes is null ? null : Encoding.UTF8.GetString(bytes), request.Method.Method, max);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(DecisionTimeout);
        var payment = await SendPaymentAsync(HttpMethod.Post, "/v1/payments", JsonContent.Create(create, PaymentJson.Default.PaymentCreateRequest), timeout.Token, ct);
        while (payment.Status == "pending")
        {
            try
            {
                payment = await SendPaymentAsync(HttpMethod.Get, $"/v1/payments/{payment.PaymentId}", null, timeout.Token, ct);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new AssentPaymentException(PaymentOutcome.Expired, $"nobody decided payment {payment.PaymentId} within {DecisionTimeout.TotalSeconds:0} s",
                    payment.PaymentId);
            }
        }
        return payment.Status switch
        {
            "approved" when payment.Header is not null => payment,
            "denied" or "cancelled" => throw new AssentPaymentException(PaymentOutcome.Denied,
                $"payment {payment.PaymentId} of {payment.Amount} {payment.Currency} to {payment.PayTo} was {payment.Status}", payment.PaymentId),
            _ => throw new AssentPaymentException(PaymentOutcome.Expired, $"payment {payment.PaymentId} is {payment.Status}: nothing was signed", payment.PaymentId),
        };
    }

    private async Task<PaymentResponse> SendPaymentAsync(HttpMethod method, string path, HttpContent? content, CancellationToken wait, CancellationToken ct)
    {
        using var call = Call(method, path);
        call.Content = content;
        call.Headers.TryAddWithoutValidation("Prefer", $"wait={(int)_options.MaxWait.TotalSeconds}");
        using var answer = await Transport.SendAsync(_assent, _options.Server!, call, wait);
        if (answer.IsSuccessStatusCode)
        {
            return await answer.Content.ReadFromJsonAsync(PaymentJson.Default.PaymentResponse, ct)
                ?? throw new AssentProtocolException($"{path} answered an empty body");
        }
        var detail = await answer.Content.ReadAsStringAsync(ct);
        try
        {
            using var problem = JsonDocument.Parse(detail);
            detail = problem.RootElement.TryGetProperty("detail", out var d) ? d.GetString() ?? detail
                : problem.RootElement.TryGetProperty("error_description", out var e) ? e.GetString() ?? detail : detail;
        }
        catch (JsonException)
        {
        }
        if (answer.StatusCode is HttpStatusCode.Unauthorized)
        {
            throw new AssentProblemException(answer.StatusCode, "Unauthorized", detail);
        }
        throw new AssentPaymentException(PaymentOutcome.Refused, detail);
    }

    private HttpRequestMessage Call(HttpMethod method, string path)
    {
        var call = new HttpRequestMessage(method, new Uri(_options.Server!, path));
        call.Headers.Authorization = new AuthenticationHeaderValue("Basic",
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(_options.ClientId!)}:{Uri.EscapeDataString(_options.ClientSecret!)}")));
        return call;
    }

    private static async Task<byte[]?> ReadBoundedAsync(HttpContent content, CancellationToken ct)
    {
        await using var stream = await content.ReadAsStreamAsync(ct);
        // Pooled: a 402 body is usually a few hundred bytes, and every paid request reads one.
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(MaxBodyBytes + 1);
        try
        {
            var total = 0;
            int read;
            while (total < MaxBodyBytes + 1 && (read = await stream.ReadAsync(buffer.AsMemory(total, MaxBodyBytes + 1 - total), ct)) > 0)
            {
                total += read;
            }
            // A body larger than any payment request is left out; the headers may still carry one (x402 v2).
            return total == 0 || total > MaxBodyBytes ? null : buffer[..total];
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            // Receipts still being posted are waited for (they run on the thread pool), then given up.
            try
            {
                Task.WhenAll(_receipts.Values).Wait(ReceiptFlushTimeout);
            }
            catch (AggregateException)
            {
            }
            _closing.Cancel();
            if (_ownsAssent)
            {
                _assent.Dispose();
            }
        }
        base.Dispose(disposing);
    }
}
