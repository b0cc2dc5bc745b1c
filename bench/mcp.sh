#!/usr/bin/env bash
# `assent mcp gate` figures (docs/mcp.md §4), measured side by side in one run of the load driver:
# forwarding round trips at 1,000/s to a trivial stdio MCP server directly and through the gate; a gated call
# approved at once by a device (signed, over the device API) against an ungated call through the same gate;
# the gate's VmRSS/VmHWM. Output goes to stdout only.
#   bench/mcp.sh — settings through the environment, e.g. MCP_ARGS="--messages 20000 --gated 500" bench/mcp.sh
set -euo pipefail
cd "$(dirname "$0")/.."

MCP_ARGS=${MCP_ARGS:-"--messages 10000 --rate 1000 --gated 200"}  # add --before OTHER/assent.dll to compare builds in one run
dotnet build bench/Assent.Bench -c Release -nologo -v quiet
# shellcheck disable=SC2086
dotnet bench/Assent.Bench/bin/Release/net10.0/Assent.Bench.dll mcp-gate $MCP_ARGS 2> >(grep -v '^\[server\]' >&2)
