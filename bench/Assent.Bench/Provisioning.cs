using Assent.Server.Admin;
using Assent.Server.Common;
using Assent.Server.Storage;

namespace Assent.Bench;

internal sealed record Provisioned(string Handle, string InviteCode, string ClientId, string ClientSecret);

/// <summary>Users, invites and agents written straight into the database before the server starts, as <c>assent admin</c> does.</summary>
internal static class Provisioning
{
    public const string Scopes = "approve:action";

    /// <param name="payments">Agents may also pay (<c>payments:write</c>), and each user has a payment wallet (docs/payments.md §8).</param>
    public static async Task<IReadOnlyList<Provisioned>> UsersWithAgentsAsync(string dataDirectory, Uri issuer, int count, CancellationToken ct, string? database = null,
        bool payments = false)
    {
        var options = new AssentOptions { Issuer = issuer.ToString().TrimEnd('/'), DataDirectory = dataDirectory, Database = database };
        await using var store = await StoreFactory.OpenAsync(options, TimeProvider.System, ct);
        var admin = new AdminOperations(store, options, TimeProvider.System);
        var wallets = payments ? new Assent.Server.Payments.Wallets(store.Wallets, Assent.Server.Keys.MasterKey.Load(options), TimeProvider.System) : null;
        var made = new List<Provisioned>(count);
        for (var i = 0; i < count; i++)
        {
            var invite = await admin.InviteAsync($"bench{i:D5}", admin: false, ct);
            var agent = await admin.CreateAgentAsync(invite.Handle, $"Bench agent {i}", payments ? Scopes + " payments:write" : Scopes, ct);
            if (wallets is not null)
            {
                await wallets.CreateAsync(invite.UserId, ct);
            }
            made.Add(new Provisioned(invite.Handle, invite.Code, agent.ClientId, agent.ClientSecret));
        }
        return made;
    }

    public static string NewDataDirectory() => Directory.CreateTempSubdirectory("assent-bench-").FullName;

    public static void Delete(string dataDirectory)
    {
        try
        {
            Directory.Delete(dataDirectory, recursive: true);
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"could not delete {dataDirectory}: {e.Message}");
        }
    }
}
