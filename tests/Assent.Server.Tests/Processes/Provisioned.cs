using Assent.Server.Admin;
using Assent.Server.Common;
using Assent.Server.Storage;

namespace Assent.Server.Tests.Processes;

/// <summary>What a process test needs before its servers start: a user's invite and an agent, made offline.</summary>
internal sealed record Provisioned(string InviteCode, string ClientId, string ClientSecret)
{
    public static async Task<Provisioned> CreateAsync(string dataDirectory, string issuer, string? database, string agentName)
    {
        var options = new AssentOptions { Issuer = issuer, DataDirectory = dataDirectory, Database = database };
        await using var store = await StoreFactory.OpenAsync(options, TimeProvider.System, default);
        var admin = new AdminOperations(store, options, TimeProvider.System);
        var invite = await admin.InviteAsync("ops", admin: false, default);
        var agent = await admin.CreateAgentAsync("ops", agentName, "approve:action", default);
        return new Provisioned(invite.Code, agent.ClientId, agent.ClientSecret);
    }
}
