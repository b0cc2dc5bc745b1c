using Assent.Cli;

return await CliApp.RunAsync(args);
