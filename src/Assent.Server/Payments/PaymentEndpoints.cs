using System.Numerics;
using System.Security.Cryptography;
using System.Text.Json;
using Assent.Protocol.Approvals;
using Assent.Protocol.Messages;
using Assent.Protocol.OAuth;
using Assent.Server.Approvals;
using Assent.Server.Authentication;
using Assent.Server.Common;
using Assent.Server.Identity;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Assent.Server.Payments;

/// <summary>
/// <c>/v1/payments</c> and <c>/v1/wallet</c> (docs/payments.md, docs/http-api.md §18): an agent hands over the HTTP 402
/// it received; the server picks what it can pay (x402 or MPP), asks the agent's owner to approve exactly that, and once
/// approved signs the EIP-3009 authorization (or mints the Shared Payment Token) the approver saw and returns the header
/// to retry with.
/// </summary>
internal static partial class PaymentEndpoints
{
    public const string Path = "/v1/payments";
    public const string WalletPath = "/v1/wallet";

    /// <summary>The agent scope that lets an agent ask for payments; also the scope of the request it raises.</summary>
    public const string PaymentsScope = "payments:write";

    /// <summary>Headers of a 402 read at most, and their characters in all.</summary>
    public const int MaxHeaders = 64;

    public const int MaxHeaderChars = 32 * 1024;

    /// <summary>An authorization is signed only while at least this long remains of its validity: the paid server needs time to settle.</summary>
    private static readonly TimeSpan SigningMargin = TimeSpan.FromSeconds(10);

    /// <summary>EIP-3009 authorizations are valid from this long before they are made, for clocks that run behind (the x402 v1 reference client does the same).</summary>
    private static readonly TimeSpan ValidAfterSkew = TimeSpan.FromMinutes(10);

    private const int ListLimit = 100;

    /// <summary>The payment services, over the store's wallets and payments.</summary>
    public static IServiceCollection AddPayments(this IServiceCollection services, AssentStore store)
    {
        services.AddSingleton(store.Wallets);
        services.AddSingleton(store.Payments);
        services.AddSingleton<Wallets>();
        // Read now, so that a bad setting stops the server at start (docs/payments.md §5.2).
        services.TryAddSingleton(PaymentOptions.FromEnvironment());
        services.AddSingleton<StripeClient>();
        services.AddSingleton<MppSigner>();
        return services;
    }

    public static IEndpointRouteBuilder MapPayments(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).WithTags("Payments").DisableAntiforgery();
        group.MapPost("", CreateAsync).WithSummary("Pay an HTTP 402 (agent, client_secret_basic, scope payments:write): the owner approves, then the header to retry with. Honours Prefer: wait")
            .Accepts<PaymentCreateRequest>("application/json").Produces<PaymentResponse>(StatusCodes.Status201Created)
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        group.MapGet("/{id}", GetAsync).WithSummary("A payment; once approved, with the header to retry the paid request with (agent). Honours Prefer: wait")
            .Produces<PaymentResponse>().ProducesProblem(StatusCodes.Status404NotFound);
        group.MapPost("/{id}/receipt", ReceiptAsync).WithSummary("Post back the paid server's receipt header (agent); audited")
            .Accepts<PaymentReceiptRequest>("application/json").Produces<PaymentResponse>().ProducesProblem(StatusCodes.Status409Conflict);
        group.MapGet("", ListAsync).WithSummary("Payments, newest first: an agent's own (client_secret_basic) or a signed-in human's (session token)")
            .Produces<PaymentList>();
        return app.MapWallet();
    }

    /// <summary>An agent authenticated as at the token endpoint (RFC 6749 §2.3.1); its answer when refused.</summary>
    internal static async Task<(ClientRecord? Client, IResult? Refused)> AgentAsync(HttpContext http, ClientAuthenticator authenticator, CancellationToken ct)
    {
        var (client, error) = await authenticator.AuthenticateAsync(http.Request, new FormCollection(null), ct);
        return client is null ? (null, error) : (client, null);
    }

    internal static async Task<IResult> CreateAsync(HttpContext http, ClientAuthenticator authenticator, IdentityDirectory directory, IPaymentStore payments,
        Wallets wallets, IApprovalStore approvals, ApprovalService service, ApprovalHub hub, MandateBook mandates, PaymentOptions paymentOptions,
        MppSigner mpp, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var (client, refused) = await AgentAsync(http, authenticator, ct);
        if (client is null)
        {
            return refused!;
        }
        if (!client.Scopes.Split(' ').Contains(PaymentsScope))
        {
            return Problem.Forbidden($"agent {client.Id} is not registered for {PaymentsScope}; its owner registers an agent with that scope to let it pay");
        }
        var read = await RequestBodies.ReadJsonAsync(http.Request, PaymentJson.Default.PaymentCreateRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        var request = read.Value!;
        var (detected, refusal) = Detect(request);
        if (refusal is not null)
        {
            return refusal;
        }
        var now = time.GetUtcNow();
        var (chosen, unpayable) = Choose(detected!, request.Max, paymentOptions, now);
        if (unpayable is not null)
        {
            return unpayable;
        }
        var user = await directory.FindUserAsync(client.OwnerUserId, ct);
        // A Stripe charge is paid from the operator's Stripe account; everything else from the owner's wallet.
        var wallet = user is null ? null : await wallets.FindAsync(user.Id, ct);
        if (user is null || (wallet is null && chosen is not MppChoice { Method: Mpp.StripeMethod }))
        {
            return Problem.Conflict($"{user?.Handle ?? "the agent's owner"} has no payment wallet yet: they make one with assent wallet create (docs/payments.md §4)");
        }
        var resource = chosen is X402Choice x ? x.Offer.Resource : request.Url!;
        var description = chosen is X402Choice d ? d.Offer.Description : ((MppChoice)chosen!).Challenge.Description;
        // What the human reads must not hide or reorder anything (docs/concepts.md §6): a paid server writes these.
        foreach (var (field, text) in new[] { ("resource", resource), ("description", description ?? "") })
        {
            if (DisplayText.Problem(field, text) is { } hidden)
            {
                return Problem.Make(StatusCodes.Status422UnprocessableEntity, "Payment refused", $"the 402's {hidden}; nothing was asked");
            }
        }
        var draft = chosen is MppChoice m
            ? MppPayments.Draft(m, resource, wallet?.Address, paymentOptions, now, options.DefaultRequestExpiry)
            : X402Draft((X402Choice)chosen!, wallet!, paymentOptions, now, options.DefaultRequestExpiry);
        if (draft.Description is { } described && DisplayText.Problem("description", described) is { } hiddenDescription)
        {
            return Problem.Make(StatusCodes.Status422UnprocessableEntity, "Payment refused", $"the 402's {hiddenDescription}; nothing was asked");
        }
        PaymentRecord? stored = null;
        PaymentRecord Row(ApprovalRecord a) => stored = new PaymentRecord(a.Id, client.Id, user.Id, draft.Protocol, draft.Network, draft.Asset, draft.Symbol,
            draft.PayTo, draft.Amount, draft.AmountAtomic, draft.Resource, draft.Description, draft.Wallet, draft.Nonce, draft.ValidAfter, draft.ValidBefore,
            draft.Offer, a.CreatedAt);
        // docs/policies.md §6: an x402 payment an active mandate of this agent and its owner covers is approved with no human, its
        // budget spent and this row stored in the approval's own transaction. MPP payments always go to the human (docs/payments.md §10).
        var coverable = chosen is X402Choice covered && PaymentMandateHook.AskOf(covered.Asset, covered.Atomic, draft.PayTo) is { } ask
            ? new ApprovalService.CoverablePayment(ask, PaymentStore.Alongside(Row))
            : null;
        var version = hub.Version;
        ApprovalService.Created? created;
        try
        {
            created = await service.CreatePaymentAsync(client.Id, client.Name, user, PaymentsScope, draft.Binding, draft.Details, draft.Expiry, coverable,
                (a, _, audit, c) => payments.TryCreateAsync(a, Row(a), options.Limits.MaxPendingPerAgentPerUser, audit, c), ct);
        }
        catch (PolicyDeniedException denied)
        {
            return Problem.Forbidden($"policy {denied.Policy.Label} denies this payment; nothing was asked or signed (docs/policies.md §1)");
        }
        catch (System.Data.Common.DbException e) when (draft.Protocol == Mpp.Protocol && e.Message.Contains("nonce", StringComparison.Ordinal))
        {
            // The nonce is unique: an MPP challenge's nonce is its hash, so the same challenge posted again finds the first payment.
            return Problem.Conflict("this MPP challenge was posted already and has its payment; a challenge pays once (ask the paid server for a new one)");
        }
        if (created is null)
        {
            return Problem.TooManyRequests($"this agent already has {options.Limits.MaxPendingPerAgentPerUser} requests pending for {user.Handle}; wait for one to be decided",
                TimeSpan.FromSeconds(5));
        }
        var approval = created.Approval;
        if (approval.State == ApprovalState.Pending)
        {
            approval = await PreferWait.HoldIfAskedAsync(http, approval, version, hub, approvals, options, time, ct);
        }
        http.Response.Headers.Location = $"{Path}/{approval.Id}";
        http.Response.Headers.CacheControl = "no-store";
        PaymentResponse response;
        try
        {
            // The wallet read above is the one signed with: a user's wallet never changes once made (docs/payments.md §4).
            response = await RespondAsync(new PaymentView(stored!, approval), approvals, wallets, mandates, mpp, time, ct, known: wallet);
        }
        catch (StripeException e)
        {
            return StripeFailed(e);
        }
        return TypedResults.Json(response, PaymentJson.Default.PaymentResponse, statusCode: StatusCodes.Status201Created);
    }

    /// <summary>Stripe refused or could not be reached while minting an approved payment's token: 502, and a later read tries again.</summary>
    private static IResult StripeFailed(StripeException e) =>
        Problem.Make(StatusCodes.Status502BadGateway, "Stripe failed", $"{e.Message}; the payment stays approved, and reading it again tries again");

    /// <summary>
    /// Which protocols the 402 speaks and what each offers (docs/payments.md §2): a <c>PAYMENT-REQUIRED</c> header is x402
    /// v2 (and wins over a body: v2 servers may send a v1-style body too); else a body with <c>accepts</c> is x402 v1; a
    /// <c>WWW-Authenticate</c> header with <c>Payment</c> challenges is MPP. A 402 may offer both x402 and MPP.
    /// </summary>
    internal static (DetectedOffers? Offers, IResult? Refusal) Detect(PaymentCreateRequest r)
    {
        if (r.Status != StatusCodes.Status402PaymentRequired)
        {
            return (null, Problem.BadRequest("status must be 402: post the HTTP 402 Payment Required the paid server answered"));
        }
        if (r.Url is null || r.Url.Length > 2048 || !Uri.TryCreate(r.Url, UriKind.Absolute, out var url) || url.Scheme is not ("https" or "http"))
        {
            return (null, Problem.BadRequest("url is required: the absolute http(s) URL that answered 402 (at most 2048 characters)"));
        }
        if (r.Max is not null && TokenAmount.FromHuman(r.Max, 18) is null)
        {
            return (null, Problem.BadRequest($"max '{X402.Shorten(r.Max)}' is not a plain decimal amount, e.g. 0.50"));
        }
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (r.Headers is { } h && h.ValueKind != JsonValueKind.Null)
        {
            if (h.ValueKind != JsonValueKind.Object)
            {
                return (null, Problem.BadRequest("headers must be an object of header name to a string or an array of strings"));
            }
            var count = 0;
            var chars = 0;
            foreach (var p in h.EnumerateObject())
            {
                if (++count > MaxHeaders)
                {
                    return (null, Problem.BadRequest($"the 402 has more than {MaxHeaders} headers; no paid server needs that many"));
                }
                var value = p.Value.ValueKind switch
                {
                    JsonValueKind.String => p.Value.GetString(),
                    JsonValueKind.Array when p.Value.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) =>
                        string.Join(", ", p.Value.EnumerateArray().Select(e => e.GetString())),
                    _ => null,
                };
                if (value is null)
                {
                    return (null, Problem.BadRequest($"header '{X402.Shorten(p.Name)}' must be a string or an array of strings"));
                }
                chars += p.Name.Length + value.Length;
                if (chars > MaxHeaderChars)
                {
                    return (null, Problem.BadRequest($"the 402's headers hold more than {MaxHeaderChars} characters; nothing was asked"));
                }
                headers[p.Name] = headers.TryGetValue(p.Name, out var earlier) ? earlier + ", " + value : value;
            }
        }
        IReadOnlyList<PaymentOffer>? offers;
        string? problem;
        if (headers.TryGetValue(X402.PaymentRequiredHeader, out var required))
        {
            (offers, problem) = X402.ReadV2(required);
        }
        else
        {
            (offers, problem) = X402.ReadV1(r.Body);
        }
        IReadOnlyList<MppChallenge>? challenges = null;
        if (headers.TryGetValue(Mpp.WwwAuthenticateHeader, out var authenticate) && Mpp.Offers(authenticate))
        {
            (challenges, var mppProblem) = Mpp.Read(authenticate);
            if (mppProblem is not null)
            {
                return (null, Problem.BadRequest($"the 402 cannot be read as MPP: {mppProblem}; nothing was asked"));
            }
        }
        // An unreadable x402 offer beside readable MPP challenges is passed over: the MPP ones are still paid (docs/payments.md §2).
        if (problem is not null && challenges is null)
        {
            return (null, Problem.BadRequest($"the 402 cannot be read as x402: {problem}; nothing was asked"));
        }
        if (offers is null && challenges is null)
        {
            return (null, Problem.Make(StatusCodes.Status422UnprocessableEntity, "Unsupported payment protocol",
                "the 402 is no payment request this server knows: no PAYMENT-REQUIRED header (x402 v2), no body with accepts (x402 v1) and no " +
                "WWW-Authenticate: Payment challenge (MPP)"));
        }
        return (new DetectedOffers(offers, challenges), null);
    }

    /// <summary>
    /// What to pay among everything the 402 offers (docs/payments.md §3): the preferred protocol's first payable offer
    /// within <paramref name="max"/>, else the other's. Otherwise a 422 naming every offer and why it was not taken.
    /// </summary>
    internal static (PaymentChoice? Chosen, IResult? Refusal) Choose(DetectedOffers offers, string? max, PaymentOptions options, DateTimeOffset now)
    {
        var why = new List<string>();
        var overMax = new List<string>();
        foreach (var protocol in options.PreferredProtocol == Mpp.Protocol ? new[] { Mpp.Protocol, "x402" } : ["x402", Mpp.Protocol])
        {
            if (protocol == Mpp.Protocol && offers.Mpp is { } challenges)
            {
                var (choice, notTaken, over) = MppPayments.Choose(challenges, max, options, now);
                if (choice is not null)
                {
                    return (choice, null);
                }
                (why, overMax) = ([.. why, .. notTaken], [.. overMax, .. over]);
            }
            else if (protocol != Mpp.Protocol && offers.X402 is { } x402)
            {
                var (choice, notTaken, over) = ChooseX402(x402, max, options);
                if (choice is not null)
                {
                    return (choice, null);
                }
                (why, overMax) = ([.. why, .. notTaken], [.. overMax, .. over]);
            }
        }
        if (overMax.Count > 0)
        {
            return (null, Problem.Make(StatusCodes.Status422UnprocessableEntity, "Over the maximum",
                $"the 402 asks {string.Join(" or ", overMax)}, above the maximum of {max}; nothing was asked or signed"));
        }
        var payable = string.Join("; ", options.Networks.Select(n => $"{n.Id} ({n.V1Name}) in {string.Join(", ", n.Assets.Select(a => $"{a.Symbol} {a.Address}"))}"));
        var stripe = options.Stripe.Configured ? $" and MPP {Mpp.StripeMethod} charges" : "";
        return (null, Problem.Make(StatusCodes.Status422UnprocessableEntity, "Nothing payable",
            $"nothing the 402 offers can be paid here: {string.Join("; ", why)}. This server pays x402 '{X402.ExactScheme}' (EIP-3009) and MPP " +
            $"{Mpp.EvmMethod} charges on {payable}{stripe}"));
    }

    internal static async Task<IResult> GetAsync(string id, HttpContext http, ClientAuthenticator authenticator, IPaymentStore payments, IApprovalStore approvals,
        ApprovalHub hub, Wallets wallets, MandateBook mandates, MppSigner mpp, AssentOptions options, TimeProvider time, CancellationToken ct)
    {
        var (client, refused) = await AgentAsync(http, authenticator, ct);
        if (client is null)
        {
            return refused!;
        }
        var version = hub.Version;
        if (await FindOwnAsync(id, client, payments, ct) is not { } view)
        {
            return NotFound(id);
        }
        var approval = await PreferWait.HoldIfAskedAsync(http, view.Approval, version, hub, approvals, options, time, ct);
        http.Response.Headers.CacheControl = "no-store";
        try
        {
            return TypedResults.Json(await RespondAsync(view with { Approval = approval }, approvals, wallets, mandates, mpp, time, ct), PaymentJson.Default.PaymentResponse);
        }
        catch (StripeException e)
        {
            return StripeFailed(e);
        }
    }

    internal static async Task<IResult> ReceiptAsync(string id, HttpContext http, ClientAuthenticator authenticator, IPaymentStore payments,
        IApprovalStore approvals, Wallets wallets, MandateBook mandates, MppSigner mpp, TimeProvider time, CancellationToken ct)
    {
        var (client, refused) = await AgentAsync(http, authenticator, ct);
        if (client is null)
        {
            return refused!;
        }
        var read = await RequestBodies.ReadJsonAsync(http.Request, PaymentJson.Default.PaymentReceiptRequest, ct);
        if (read.Error is not null)
        {
            return read.Error;
        }
        if (await FindOwnAsync(id, client, payments, ct) is not { } view)
        {
            return NotFound(id);
        }
        var (name, value) = (read.Value!.Name, read.Value.Value);
        var expected = view.Payment.Protocol switch
        {
            X402.ProtocolV2 => X402.PaymentResponseHeader,
            Mpp.Protocol => Mpp.ReceiptHeader,
            _ => X402.XPaymentResponseHeader,
        };
        if (!string.Equals(name, expected, StringComparison.OrdinalIgnoreCase) || value is null or { Length: 0 or > 4096 })
        {
            return Problem.BadRequest($"post the paid server's {expected} header: {{\"name\": \"{expected}\", \"value\": \"…\"}} (at most 4096 characters)");
        }
        var data = new Dictionary<string, string> { ["header"] = expected };
        if (view.Payment.Protocol == Mpp.Protocol)
        {
            // MPP: base64url of the receipt {method, reference, status, timestamp}.
            if (Mpp.ReadReceipt(value) is not { } receipt)
            {
                return Problem.BadRequest($"the {expected} value is not base64url of a JSON receipt");
            }
            foreach (var (k, v) in receipt)
            {
                data[k] = v;
            }
        }
        else
        {
            try
            {
                // x402: base64 of the settlement response {success, transaction, network, payer}.
                using var doc = JsonDocument.Parse(Convert.FromBase64String(value));
                foreach (var field in new[] { "success", "transaction", "network", "payer" })
                {
                    if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty(field, out var f) &&
                        f.ValueKind is JsonValueKind.String or JsonValueKind.True or JsonValueKind.False && f.ToString() is { Length: <= 128 } s)
                    {
                        data[field] = s;
                    }
                }
            }
            catch (Exception e) when (e is FormatException or JsonException)
            {
                return Problem.BadRequest($"the {expected} value is not base64 of a JSON settlement response");
            }
        }
        if (view.Approval.State is not (ApprovalState.Approved or ApprovalState.Redeemed))
        {
            return Problem.Conflict($"payment {id} was not approved; there is nothing to have a receipt for");
        }
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (!await payments.TryRecordReceiptAsync(id, value, now, new AuditEvent(PaymentAuditTypes.PaymentReceipt, view.Payment.UserId, client.Id, id, data), ct))
        {
            return Problem.Conflict($"payment {id} has its receipt already");
        }
        // The row as just written: its receipt is the only change, and it is final (recorded once).
        view = view with { Payment = view.Payment with { Receipt = value, ReceiptAt = now } };
        return TypedResults.Json(await RespondAsync(view, approvals, wallets, mandates, mpp, time, ct, sign: false), PaymentJson.Default.PaymentResponse);
    }

    internal static async Task<IResult> ListAsync(HttpContext http, ClientAuthenticator authenticator, AccessTokenValidator validator, IdentityDirectory directory,
        IPaymentStore payments, IApprovalStore approvals, Wallets wallets, MandateBook mandates, MppSigner mpp, TimeProvider time, CancellationToken ct)
    {
        IReadOnlyList<PaymentView> list;
        if (AccessTokenValidator.BearerToken(http.Request) is not null)
        {
            var (user, refused) = await CliSession.UserAsync(http.Request, validator, directory, CliClient.SessionScope, ct);
            if (user is null)
            {
                return refused!;
            }
            list = await payments.ListAsync(null, user.Id, ListLimit, ct);
        }
        else
        {
            var (client, refused) = await AgentAsync(http, authenticator, ct);
            if (client is null)
            {
                return refused!;
            }
            list = await payments.ListAsync(client.Id, null, ListLimit, ct);
        }
        var answers = new List<PaymentResponse>();
        foreach (var view in list)
        {
            // A list shows what happened; the header to pay with is only in the paying agent's own reads.
            answers.Add((await RespondAsync(view, approvals, wallets, mandates, mpp, time, ct, sign: false)) with { Agent = view.Payment.ClientId });
        }
        return TypedResults.Json(new PaymentList(answers), PaymentJson.Default.PaymentList);
    }

    private static async Task<PaymentView?> FindOwnAsync(string id, ClientRecord client, IPaymentStore payments, CancellationToken ct) =>
        id.Length <= 64 && id.StartsWith("pay_", StringComparison.Ordinal) && await payments.FindAsync(id, ct) is { } view && view.Payment.ClientId == client.Id
            ? view
            : null;

    private static IResult NotFound(string id) => Problem.NotFound($"no payment '{X402.Shorten(id)}' of this agent");

    /// <summary>
    /// The payment as the API shows it. Once approved and still valid, with the retry header: the authorization is
    /// signed here, after checking it is field for field the one in the payload the human approved; the first
    /// signature redeems the request and is audited with it (docs/payments.md §5). The signature is deterministic, so a
    /// later read returns the same header and signs nothing new.
    /// </summary>
    internal static async Task<PaymentResponse> RespondAsync(PaymentView view, IApprovalStore approvals, Wallets wallets, MandateBook mandates, MppSigner mpp,
        TimeProvider time, CancellationToken ct, bool sign = true, WalletRecord? known = null)
    {
        var (p, a) = view;
        var now = time.GetUtcNow();
        var status = a.State switch
        {
            ApprovalState.Pending when a.ExpiresAt <= now.ToUnixTimeMilliseconds() => StateNames.Expired,
            ApprovalState.Approved or ApprovalState.Redeemed when p.Receipt is not null => "paid",
            ApprovalState.Approved or ApprovalState.Redeemed => StateNames.Of(ApprovalState.Approved),
            var s => StateNames.Of(s),
        };
        PaymentHeader? header = null;
        // A payment a mandate approved names it, and what it was charged (docs/policies.md §6).
        // Read with the payment when it came from the store (one query for a whole list), else looked up.
        var grant = a.State is not (ApprovalState.Approved or ApprovalState.Redeemed) ? null
            : view.GrantRead ? view.Grant
            : await mandates.PaymentGrantAsync(a.Id, ct);
        if (a.State is ApprovalState.Approved or ApprovalState.Redeemed && p.Receipt is null)
        {
            if (now + SigningMargin >= DateTimeOffset.FromUnixTimeSeconds(p.ValidBefore))
            {
                // Approved too late to be paid with: the window the approver saw is over, and no other is signed.
                status = StateNames.Expired;
            }
            else if (sign)
            {
                header = p.Protocol == Mpp.Protocol ? await mpp.SignAsync(view, approvals, now, ct) : await SignAsync(view, approvals, wallets, known, grant, now, ct);
            }
        }
        return new PaymentResponse(p.Id, status, p.Protocol, p.Amount, p.Symbol, p.AmountAtomic, p.Asset, p.Network, p.PayTo, p.Wallet, p.Resource,
            WireTime.Of(a.CreatedAt)!, WireTime.Of(a.ExpiresAt)!, WireTime.Of(p.ValidBefore * 1000)!, p.Description,
            a.State is ApprovalState.Pending ? null : WireTime.Of(a.DecidedAt), header, p.Receipt,
            Mandate: grant is null ? null : new PaymentMandate(grant.MandateId, grant.Amount, grant.Remaining));
    }

    private static async Task<PaymentHeader> SignAsync(PaymentView view, IApprovalStore approvals, Wallets wallets, WalletRecord? known, MandatePaymentRecord? mandate,
        DateTimeOffset now, CancellationToken ct)
    {
        var (p, a) = view;
        var authorization = new Eip3009Authorization(p.Wallet, p.PayTo, BigInteger.Parse(p.AmountAtomic, System.Globalization.CultureInfo.InvariantCulture),
            p.ValidAfter, p.ValidBefore, p.Nonce);
        if (!Approved(a, p))
        {
            throw new InvalidOperationException($"payment {p.Id} differs from what its approval holds; nothing is signed");
        }
        var wallet = (known?.UserId == p.UserId ? known : await wallets.FindAsync(p.UserId, ct))
            ?? throw new InvalidOperationException($"the wallet of payment {p.Id} is gone");
        if (!string.Equals(wallet.Address, p.Wallet, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"payment {p.Id} was approved for another wallet");
        }
        using var offer = JsonDocument.Parse(p.Offer);
        var o = offer.RootElement;
        var signature = wallets.SignTransferWithAuthorization(wallet, o.GetProperty("name").GetString()!, o.GetProperty("version").GetString()!,
            o.GetProperty("chainId").GetInt64(), p.Asset, authorization);
        if (a.State == ApprovalState.Approved)
        {
            // The first signature redeems the request, audited with it (and with the mandate that approved it, if one did); a read
            // racing it signs the same bytes and records nothing.
            var data = new Dictionary<string, string>
            {
                ["approval"] = a.Id, ["amount"] = p.Amount, ["currency"] = p.Symbol, ["asset"] = p.Asset, ["network"] = p.Network, ["pay_to"] = p.PayTo,
                ["nonce"] = p.Nonce, ["valid_before"] = p.ValidBefore.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["signature_sha256"] = Protocol.Base64Url.Encode(SHA256.HashData(System.Text.Encoding.ASCII.GetBytes(signature))),
            };
            if (mandate is not null)
            {
                data["mandate"] = mandate.MandateId;
            }
            await approvals.TryRedeemAsync(a.Id, now.ToUnixTimeMilliseconds(), new AuditEvent(PaymentAuditTypes.PaymentSigned, p.UserId, p.ClientId, a.Id, data), ct);
        }
        var version = o.GetProperty("x402Version").GetInt32();
        return new PaymentHeader(X402.RetryHeader(version), X402.PaymentHeaderValue(version, o, authorization, signature));
    }

    /// <summary>Whether the approval's payload (what the device signed) holds exactly this payment's authorization.</summary>
    internal static bool Approved(ApprovalRecord a, PaymentRecord p)
    {
        using var payload = JsonDocument.Parse(a.Payload);
        if (!payload.RootElement.TryGetProperty("authorization_details", out var details) || details.ValueKind != JsonValueKind.Array || details.GetArrayLength() != 1)
        {
            return false;
        }
        var d = details[0];
        string? S(string name) => d.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
        long? N(string name) => d.TryGetProperty(name, out var v) && v.TryGetInt64(out var n) ? n : null;
        return S("type") == "payment" && S("amount_atomic") == p.AmountAtomic && S("asset") == p.Asset && S("network") == p.Network && S("pay_to") == p.PayTo &&
            S("from") == p.Wallet && S("nonce") == p.Nonce && N("valid_after") == p.ValidAfter && N("valid_before") == p.ValidBefore &&
            S("amount") == p.Amount && S("currency") == p.Symbol;
    }
}
