#!/usr/bin/env bash
# Runs Assent's whole test suite. On a fresh machine it first installs what the tests need
# (Node.js for the third-party interop clients, Chromium for the web app tests, PostgreSQL
# server binaries for the scale-out tests, which start their own throwaway cluster) and
# restores the npm test clients. libsodium needs no system package: NSec.Cryptography brings
# it for each platform through its NuGet dependency.
# Works as root with no standard input (CI) or as a user with sudo.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
# The web app tests drive Debian's Chromium through Playwright (never a downloaded browser).
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing test dependencies: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
fi

if [ -f tests/interop/package.json ]; then
  (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error </dev/null)
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
dotnet test Assent.slnx --nologo "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# One closing line for humans and CI: totals over every test assembly.
awk '/^(Passed|Failed)!/ {
       for (i = 1; i <= NF; i++) {
         gsub(",", "", $(i + 1))
         if ($i == "Failed:") f += $(i + 1)
         if ($i == "Passed:") p += $(i + 1)
         if ($i == "Skipped:") s += $(i + 1)
       }
     }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
