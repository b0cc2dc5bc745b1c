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

/// <summary><c>/v1/wallet</c> (docs/payments.md §6): the signed-in human makes and reads their payment wallet; an agent reads its owner's.</summary>
internal static class WalletEndpoints
{
    public static IEndpointRouteBuilder MapWallet(this IEndpointRouteBuilder app)
    {
        var wallet = app.MapGroup(PaymentEndpoints.WalletPath).WithTags("Payments").DisableAntiforgery();
        wallet.MapPost("", CreateWalletAsync).WithSummary("Make your payment wallet (session token); 200 with the existing one if you have it")
            .Produces<WalletResponse>(StatusCodes.Status201Created).Produces<WalletResponse>();
        wallet.MapGet("", WalletAsync).WithSummary("Your payment wallet (session token), or an agent's owner's (client_secret_basic)")
            .Produces<WalletResponse>().ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }

    internal static async Task<IResult> CreateWalletAsync(HttpContext http, AccessTokenValidator validator, IdentityDirectory directory, Wallets wallets,
        PaymentOptions paymentOptions, CancellationToken ct)
    {
        var (user, refused) = await CliSession.UserAsync(http.Request, validator, directory, CliClient.SessionScope, ct);
        if (user is null)
        {
            return refused!;
        }
        var (wallet, created) = await wallets.CreateAsync(user.Id, ct);
        return TypedResults.Json(Wallet(wallet, paymentOptions), PaymentJson.Default.WalletResponse,
            statusCode: created ? StatusCodes.Status201Created : StatusCodes.Status200OK);
    }

    internal static async Task<IResult> WalletAsync(HttpContext http, AccessTokenValidator validator, ClientAuthenticator authenticator, IdentityDirectory directory,
        Wallets wallets, PaymentOptions paymentOptions, CancellationToken ct)
    {
        string userId;
        if (AccessTokenValidator.BearerToken(http.Request) is not null)
        {
            var (user, refused) = await CliSession.UserAsync(http.Request, validator, directory, CliClient.SessionScope, ct);
            if (user is null)
            {
                return refused!;
            }
            userId = user.Id;
        }
        else
        {
            var (client, refused) = await PaymentEndpoints.AgentAsync(http, authenticator, ct);
            if (client is null)
            {
                return refused!;
            }
            userId = client.OwnerUserId;
        }
        return await wallets.FindAsync(userId, ct) is { } wallet
            ? TypedResults.Json(Wallet(wallet, paymentOptions), PaymentJson.Default.WalletResponse)
            : Problem.NotFound("no payment wallet yet: make one with assent wallet create");
    }

    private static WalletResponse Wallet(WalletRecord w, PaymentOptions options) => new(w.Address,
        [.. options.Networks.Select(n => new WalletNetwork(n.Id, n.Label, n.ChainId, [.. n.Assets.Select(a => a.Symbol)]))], WireTime.Of(w.CreatedAt)!, w.UserId);
}
