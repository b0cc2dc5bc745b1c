using System.Text;
using System.Text.RegularExpressions;

namespace Assent.Bench;

/// <summary>
/// Each command's one usage line: what <c>--help</c> prints, and the list of options the command accepts (every
/// <c>--name</c> in its line), so a mistyped option is refused rather than silently measuring the default.
/// </summary>
internal static partial class Usage
{
    public static readonly IReadOnlyDictionary<string, (string Options, string About)> Lines = new Dictionary<string, (string, string)>(StringComparer.Ordinal)
    {
        ["serve"] = ("--data DIR --urls URL [--issuer URL] [--database CONNECTION] [--stop-on-stdin-eof]",
            "an Assent server in this process, reporting its JIT time (the other commands start it)"),
        ["flows"] = ("[--agents 32] [--seconds 20] [--warmup 5] [--engine sqlite|postgres] [--nodes 1]",
            "CIBA flows approved by CLI devices, closed loop"),
        ["mandates"] = ("[--agents 32] [--seconds 10] [--warmup 10, 40 on postgres] [--engine sqlite|postgres] [--nodes 1] [--shared] [--rate R (open loop)] " +
            "[--payments [--handler-rate R] [--handler-agents N] [--handler-receipt-split]] [--server-dll DLL] [--oidc-provider]",
            "mandate-covered payments beside approved ones, request -> token with no human"),
        ["quorum"] = ("[--users 32] [--rate 200] [--seconds 10] [--warmup 5] [--rounds 2] [--server-dll DLL]",
            "a 2-of-3 quorum flow beside a single-approver flow, open loop: in rounds, then alternating in one window"),
        ["waiters"] = ("[--count 10000] [--users 100] [--seconds 20] [--probe 10] [--probe-loops 4]",
            "many agents parked in Prefer: wait, and a probe's latency beside them"),
        ["verify"] = ("[--tokens 20000] [--rounds 5]", "TokenVerifier beside the raw Ed25519 verifies a token needs (the issuer's and the device's), one thread, in process"),
        ["approve-latency"] = ("[--count 300]", "device decision -> ApproveAsync returned"),
        ["push-latency"] = ("[--count 300]", "new request -> its Web Push request at a loopback receiver"),
        ["challenges"] = ("[--clients 32] [--users 32] [--seconds 10] [--rounds 2] [--warmup 10]", "POST /v1/challenges beside bc-authorize"),
        ["webhooks"] = ("[--users 32] [--rate 500] [--seconds 20] [--warmup 10]", "decision -> webhook received"),
        ["drain"] = ("[--deliveries 50000] [--users 32] [--probe-rate 50] [--probe-seconds 10] [--warmup 10]",
            "a webhook receiver's outage, then its backlog drained"),
        ["mcp-gate"] = ("[--messages 10000] [--rate 1000] [--gated 200] [--gated-warmup 500] [--cli PATH/assent.dll] [--before PATH/assent.dll] [--env NAME=VALUE,...] [--hold SEC]",
            "assent mcp gate: forwarding, approval overhead, memory (beside another build)"),
        ["mcp-echo"] = ("", "the trivial stdio MCP server mcp-gate runs the gate around"),
        ["signin"] = ("[--clients 16] [--seconds 10] [--rounds 2] [--warmup 5] [--rate 1000] [--paced-seconds 10] [--paced-warmup 5] [--server-dll DLL --server-schema N] [--oidc-provider]",
            "passkey sign-in -> code -> token beside a CIBA flow (and node-oidc-provider's, with --oidc-provider)"),
        ["vault"] = ("[--count 200] [--items 10000] [--warmup 20] [--only release|put|list]",
            "release round trip (no human), put 1 MiB, list 10,000 items, each beside a baseline"),
    };

    [GeneratedRegex("--([a-z][a-z-]*)")]
    private static partial Regex OptionName();

    public static IReadOnlySet<string> Options(string command) =>
        OptionName().Matches(Lines[command].Options).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);

    /// <summary>One command's usage, or every command's when <paramref name="command"/> is null.</summary>
    public static string For(string? command)
    {
        var text = new StringBuilder();
        foreach (var (name, (options, about)) in Lines.Where(l => command is null || l.Key == command))
        {
            text.Append(text.Length == 0 ? "usage: " : "       ").Append("Assent.Bench ").Append(name);
            text.Append(options.Length > 0 ? " " + options : "").AppendLine();
            text.Append("           ").AppendLine(about);
        }
        return text.ToString().TrimEnd();
    }
}
