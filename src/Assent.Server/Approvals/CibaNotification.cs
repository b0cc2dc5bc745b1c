using System.Text.Json;
using Assent.Server.Keys;

namespace Assent.Server.Approvals;

/// <summary>A CIBA notification as sealed at <c>bc-authorize</c>: what the agent needs to hear and how it proves it is us.</summary>
internal sealed record CibaNotification(string AuthReqId, string Token)
{
    public static string SealContext(string approvalId) => "ciba-notification:" + approvalId;

    public byte[] Seal(MasterKey master, string approvalId) =>
        master.Seal(JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["auth_req_id"] = AuthReqId, ["token"] = Token }), SealContext(approvalId));

    public static CibaNotification Open(MasterKey master, string approvalId, byte[] sealedData)
    {
        using var doc = JsonDocument.Parse(master.Open(sealedData, SealContext(approvalId)));
        return new(doc.RootElement.GetProperty("auth_req_id").GetString()!, doc.RootElement.GetProperty("token").GetString()!);
    }
}
