using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Assent.Client.Tests;

/// <summary>
/// Every C# block of the README is a whole Program.cs and compiles against today's SDK, as a project of
/// the Web SDK would compile it (its implicit usings): an example that no longer builds fails here first.
/// </summary>
public sealed partial class ReadmeSnippetTests
{
    // The implicit global usings of Microsoft.NET.Sdk.Web (which include those of Microsoft.NET.Sdk).
    private const string ImplicitUsings = """
        global using System;
        global using System.Collections.Generic;
        global using System.IO;
        global using System.Linq;
        global using System.Net.Http;
        global using System.Net.Http.Json;
        global using System.Threading;
        global using System.Threading.Tasks;
        global using Microsoft.AspNetCore.Builder;
        global using Microsoft.AspNetCore.Hosting;
        global using Microsoft.AspNetCore.Http;
        global using Microsoft.AspNetCore.Routing;
        global using Microsoft.Extensions.Configuration;
        global using Microsoft.Extensions.DependencyInjection;
        global using Microsoft.Extensions.Hosting;
        global using Microsoft.Extensions.Logging;
        """;

    [GeneratedRegex(@"^```csharp\n(?<code>.*?)^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex CSharpBlock();

    public static TheoryData<int> Snippets()
    {
        var data = new TheoryData<int>();
        for (var i = 0; i < CSharpBlock().Matches(Readme()).Count; i++)
        {
            data.Add(i);
        }
        return data;
    }

    [Fact]
    public void The_README_has_the_agent_and_the_relying_party_examples()
    {
        var blocks = CSharpBlock().Matches(Readme()).Select(m => m.Groups["code"].Value).ToList();
        Assert.Contains(blocks, b => b.Contains("ApproveAsync", StringComparison.Ordinal));
        Assert.Contains(blocks, b => b.Contains("TokenVerifier", StringComparison.Ordinal));
        Assert.Contains(blocks, b => b.Contains("AddOpenIdConnect", StringComparison.Ordinal) && b.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length <= 15);
    }

    [Theory]
    [MemberData(nameof(Snippets))]
    public void A_README_example_compiles_as_a_whole_program(int index)
    {
        var code = CSharpBlock().Matches(Readme())[index].Groups["code"].Value;
        var parse = new CSharpParseOptions(LanguageVersion.Latest);
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(path => MetadataReference.CreateFromFile(path));
        var compilation = CSharpCompilation.Create($"readme{index}",
            [CSharpSyntaxTree.ParseText(ImplicitUsings, parse), CSharpSyntaxTree.ParseText(code, parse, path: $"README block {index + 1}")],
            references, new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable));
        using var output = new MemoryStream();

        var result = compilation.Emit(output);

        var problems = result.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error || d.Id.StartsWith("CS86", StringComparison.Ordinal))
            .Select(d => d.ToString()).ToList();
        Assert.True(result.Success && problems.Count == 0, $"README C# block {index + 1} does not compile cleanly:\n{string.Join('\n', problems)}\n---\n{code}");
    }

    private static string Readme()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "README.md");
            if (File.Exists(path) && File.Exists(Path.Combine(dir.FullName, "Assent.slnx")))
            {
                return File.ReadAllText(path).ReplaceLineEndings("\n");
            }
        }
        throw new FileNotFoundException("README.md of the repository not found above " + AppContext.BaseDirectory);
    }
}
