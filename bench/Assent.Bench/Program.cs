using Assent.Bench;

// Load driver for a real Assent server running as a separate process (so its CPU and memory
// are measured apart from the driver's). Loopback only; every loop is bounded in time and count.
//   serve   --data DIR --urls URL [--issuer URL] [--stop-on-stdin-eof]
//   flows   [--agents 32] [--seconds 20] [--warmup 5]
//   quorum [--users 32] [--rate 200] [--seconds 10] [--warmup 5] [--rounds 2]   a 2-of-3 quorum flow beside a single-approver flow, open loop
//   waiters [--count 10000] [--users 100] [--seconds 20] [--probe 10]
//   verify  [--tokens 20000] [--rounds 5]          TokenVerifier vs raw Ed25519, one thread, in process
//   approve-latency [--count 300]                  device decision -> ApproveAsync returned
//   push-latency [--count 300]                     new request -> its Web Push request at a loopback receiver
//   challenges [--clients 32] [--users 32] [--seconds 10] [--rounds 2] [--warmup 10]   POST /v1/challenges vs bc-authorize
//   webhooks [--users 32] [--rate 500] [--seconds 20] [--warmup 10]       decision -> webhook received
//   drain [--deliveries 50000] [--users 32] [--probe-rate 50]             receiver outage, then its backlog drained
//   mcp-gate [--messages 10000] [--rate 1000] [--gated 200] [--before PATH/assent.dll] [--env NAME=VALUE,…] [--hold SEC]   assent mcp gate: forwarding, approval overhead, memory (beside another build)
//   mcp-echo                                       the trivial stdio MCP server mcp-gate runs the gate around
//   signin [--clients 16] [--seconds 10] [--rounds 2] [--warmup 5] [--rate 1000] [--paced-seconds 10] [--server-dll DLL --server-schema N]   passkey sign-in → code → token vs a CIBA flow
//   vault [--count 200] [--items 10000] [--only release|put|list]   release round trip (no human), put 1 MiB, list 10,000 items, each beside a baseline
var command = args.Length > 0 ? args[0] : "";
var options = BenchArgs.Parse(args.Skip(1));
using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cts.Cancel();
};
try
{
    return command switch
    {
        "serve" => await ServeCommand.RunAsync(options, cts.Token),
        "flows" => await FlowsCommand.RunAsync(options, cts.Token),
        "mandates" => await MandatesCommand.RunAsync(options, cts.Token),
        "quorum" => await QuorumCommand.RunAsync(options, cts.Token),
        "waiters" => await WaitersCommand.RunAsync(options, cts.Token),
        "verify" => await VerifyCommand.RunAsync(options, cts.Token),
        "approve-latency" => await ApproveLatencyCommand.RunAsync(options, cts.Token),
        "push-latency" => await PushLatencyCommand.RunAsync(options, cts.Token),
        "challenges" => await ChallengesCommand.RunAsync(options, cts.Token),
        "webhooks" => await WebhooksCommand.RunAsync(options, cts.Token),
        "drain" => await DrainCommand.RunAsync(options, cts.Token),
        "mcp-gate" => await McpGateCommand.RunAsync(options, cts.Token),
        "mcp-echo" => await McpGateCommand.EchoAsync(cts.Token),
        "signin" => await SignInCommand.RunAsync(options, cts.Token),
        "vault" => await VaultCommand.RunAsync(options, cts.Token),
        _ => Usage(),
    };
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 64;
}

static int Usage()
{
    Console.Error.WriteLine("""
        usage: Assent.Bench serve --data DIR --urls URL [--issuer URL] [--stop-on-stdin-eof]
               Assent.Bench flows [--agents 32] [--seconds 20] [--warmup 5]
               Assent.Bench mandates [--agents 32] [--seconds 10] [--warmup 10, 40 on postgres] [--engine sqlite|postgres] [--nodes 1] [--shared] [--rate R (open loop)] [--payments [--handler-rate R] [--handler-agents N] [--handler-receipt-split]] [--server-dll DLL]
               Assent.Bench quorum [--users 32] [--rate 200] [--seconds 10] [--warmup 5] [--rounds 2] [--server-dll DLL]
               Assent.Bench waiters [--count 10000] [--users 100] [--seconds 20] [--probe 10]
               Assent.Bench verify [--tokens 20000] [--rounds 5]
               Assent.Bench approve-latency [--count 300]
               Assent.Bench push-latency [--count 300]
               Assent.Bench challenges [--clients 32] [--users 32] [--seconds 10] [--rounds 2] [--warmup 10]
               Assent.Bench webhooks [--users 32] [--rate 500] [--seconds 20] [--warmup 10]
               Assent.Bench drain [--deliveries 50000] [--users 32] [--probe-rate 50] [--probe-seconds 10]
               Assent.Bench mcp-gate [--messages 10000] [--rate 1000] [--gated 200] [--gated-warmup 500] [--cli PATH/assent.dll] [--before PATH/assent.dll] [--env NAME=VALUE,…] [--hold SEC]
               Assent.Bench signin [--clients 16] [--seconds 10] [--rounds 2] [--warmup 5] [--rate 1000] [--paced-seconds 10] [--server-dll DLL --server-schema N]
               Assent.Bench vault [--count 200] [--items 10000] [--only release|put|list]
        """);
    return 64;
}
