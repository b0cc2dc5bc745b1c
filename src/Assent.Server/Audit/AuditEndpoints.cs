using System.Buffers;
using System.Text.Json;
using Assent.Protocol;
using Assent.Protocol.Jose;
using Assent.Protocol.Messages;
using Assent.Server.Authentication;
using Assent.Server.Common;
using Assent.Server.Keys;
using Assent.Server.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Assent.Server.Audit;

/// <summary>Audit entries (the owner's, or all of them for an admin) and the signed checkpoint.</summary>
internal static class AuditEndpoints
{
    public const string CheckpointType = "assent-checkpoint+jwt";

    public static IEndpointRouteBuilder MapAudit(this IEndpointRouteBuilder app)
    {
        app.MapGet(EndpointPaths.Audit, EntriesAsync).RequireAuthorization(AssentSchemes.Device)
            .WithSummary("Audit entries after a sequence number (signed device request)").WithTags("Audit");
        app.MapGet(EndpointPaths.AuditCheckpoint, CheckpointAsync).WithSummary("The latest signed checkpoint {size, head, ts}").WithTags("Audit");
        return app;
    }

    internal static async Task<IResult> EntriesAsync(Approver approver, IAuditStore audit, long? after, int? limit, CancellationToken ct)
    {
        var user = approver.User;
        if (after is < 0 || limit is < 1 or > 1000)
        {
            return Problem.BadRequest("after must be ≥ 0 and limit between 1 and 1000");
        }
        var take = limit ?? 100;
        var rows = await audit.ReadAsync(after ?? 0, take, user.IsAdmin ? null : user.Id, ct);
        var views = rows.Select(r => new AuditEntry(r.Seq, Base64Url.Encode(r.Entry), Base64Url.Encode(r.Hash))).ToList();
        return TypedResults.Json(new AuditPage(views, rows.Count == take ? rows[^1].Seq : null), ProtocolJson.Default.AuditPage);
    }

    internal static async Task<IResult> CheckpointAsync(IAuditStore audit, KeyRing keys, TimeProvider time, CancellationToken ct)
    {
        var (size, head) = await audit.ReadHeadAsync(ct);
        var ts = time.GetUtcNow().ToUnixTimeSeconds();
        var payload = new ArrayBufferWriter<byte>(128);
        using (var w = new Utf8JsonWriter(payload))
        {
            w.WriteStartObject();
            w.WriteNumber("size", size);
            w.WriteString("head", Base64Url.Encode(head));
            w.WriteNumber("ts", ts);
            w.WriteEndObject();
        }
        var key = keys.Current;
        var jws = Jws.Sign(Jws.EncodeHeader(key.Kid, CheckpointType), payload.WrittenSpan, key.Signer);
        return TypedResults.Json(new AuditCheckpoint(size, Base64Url.Encode(head), ts, jws), ProtocolJson.Default.AuditCheckpoint);
    }
}
