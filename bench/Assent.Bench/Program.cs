using Assent.Bench;

// Load driver for a real Assent server running as a separate process (so its CPU and memory
// are measured apart from the driver's). Loopback only; every loop is bounded in time and count.
// The commands and their options: Usage.cs (`Assent.Bench --help`).
var command = args.Length > 0 ? args[0] : "";
var helpCommand = command is "help" or "-h" or "--help";
if (helpCommand || args.Skip(1).Any(a => a is "-h" or "--help"))
{
    // Asked for: the usage on standard output, and success.
    // `help`, `--help`, `help mandates`, `mandates --help`: one command's usage when one is named.
    var named = helpCommand ? args.Skip(1).FirstOrDefault() : command;
    Console.WriteLine(Usage.For(named is not null && Usage.Lines.ContainsKey(named) ? named : null));
    return 0;
}
if (!Usage.Lines.ContainsKey(command))
{
    Console.Error.WriteLine(command.Length == 0 ? "a command is required" : $"unknown command '{command}'");
    Console.Error.WriteLine(Usage.For(null));
    return 64;
}
using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cts.Cancel();
};
try
{
    var options = BenchArgs.Parse(args.Skip(1));
    // A mistyped option would otherwise fall back to its default silently, and the figures measure something else.
    var known = Usage.Options(command);
    if (options.Names.FirstOrDefault(n => !known.Contains(n)) is { } unknown)
    {
        throw new UsageException($"unknown option --{unknown} for {command}");
    }
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
        _ => throw new InvalidOperationException(command),
    };
}
catch (UsageException e)
{
    // The command line, or an option's value the command refused as it started (out of range, a file that is not there,
    // options that conflict).
    Console.Error.WriteLine(e.Message);
    Console.Error.WriteLine(Usage.For(command));
    return 64;
}
catch (ArgumentException e)
{
    Console.Error.WriteLine(e.Message);
    return 64;
}
