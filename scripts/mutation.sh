#!/usr/bin/env bash
# Mutation testing of Assent's security-critical code with Stryker.NET (dotnet-stryker, pinned in
# .config/dotnet-tools.json). Each area names the code mutated and the tests that must kill the
# mutants; a surviving mutant is a change to that code no test notices. Too slow for every change,
# so not part of .ci/run: run it when touching one of these areas, and look at what survives.
#
#   scripts/mutation.sh                  # list the areas
#   scripts/mutation.sh payload webauthn # run those areas, one after the other
#   scripts/mutation.sh all              # every area (hours on a small machine)
#
# Environment: STRYKER_CONCURRENCY (default 1: one test run at a time), STRYKER_BREAK (fail below
# this score, default 0), STRYKER_LEVEL (Basic|Standard|Advanced|Complete, default Standard).
# To narrow one area on a slow machine: STRYKER_FILES (';'-separated globs, instead of the area's
# files) and STRYKER_FILTER (a test filter, instead of the area's), e.g.
#   STRYKER_FILES='**/Storage/ApprovalStore.cs' STRYKER_FILTER='FullyQualifiedName~SqliteStoreContract' scripts/mutation.sh transitions
# Reports (html, json, a text table) land in artifacts/mutation/<area>/; the score and every
# surviving mutant are printed at the end of each area.
set -euo pipefail
cd "$(dirname "$0")/.."

# area | test project | project under mutation | files mutated (';'-separated globs) | test filter
areas=(
  "tokens|tests/Assent.Client.Tests|Assent.Client.csproj|**/Verification/TokenVerifier.cs|"
  "jws|tests/Assent.Protocol.Tests|Assent.Protocol.csproj|**/Jose/Jws.cs;**/Jose/Jwk.cs|"
  "payload|tests/Assent.Protocol.Tests|Assent.Protocol.csproj|**/Approvals/ApprovalPayload.cs|"
  "evidence|tests/Assent.Client.Tests|Assent.Client.csproj|**/Verification/Evidence.cs|"
  "device-signatures|tests/Assent.Protocol.Tests|Assent.Protocol.csproj|**/Devices/DeviceSignatures.cs|"
  "device-auth|tests/Assent.Server.Tests|Assent.Server.csproj|**/Authentication/DeviceSignatureHandler.cs|FullyQualifiedName~DeviceAuthenticationTests|FullyQualifiedName~BadInputTests|FullyQualifiedName~DeviceOwnershipTests|FullyQualifiedName~AuditEndpointTests"
  "transitions|tests/Assent.Server.Tests|Assent.Server.csproj|**/Storage/ApprovalStore.cs;**/Storage/Postgres/PostgresApprovalStore.cs|FullyQualifiedName~StoreContract"
  "webauthn|tests/Assent.Protocol.Tests|Assent.Protocol.csproj|**/WebAuthn/WebAuthnVerifier.cs|"
  "passkeys|tests/Assent.Server.Tests|Assent.Server.csproj|**/Identity/PasskeyCeremonies.cs|FullyQualifiedName~Assent.Server.Tests.Passkeys|FullyQualifiedName~PasskeyDecisionTests|FullyQualifiedName~PasskeyUserVerificationTests"
)

usage() {
  echo "usage: scripts/mutation.sh AREA... | all" >&2
  echo "areas:" >&2
  for a in "${areas[@]}"; do
    IFS='|' read -r name tests project files _ <<<"$a"
    printf '  %-18s %s in %s, killed by %s\n' "$name" "$files" "${project%.csproj}" "${tests#tests/}" >&2
  done
  exit 64
}

[ $# -gt 0 ] || usage
wanted=("$@")
[ "${wanted[0]}" = all ] && wanted=($(for a in "${areas[@]}"; do echo "${a%%|*}"; done))

dotnet tool restore >/dev/null
root=$(pwd)
status=0
for want in "${wanted[@]}"; do
  line=""
  for a in "${areas[@]}"; do [ "${a%%|*}" = "$want" ] && line=$a; done
  [ -n "$line" ] || { echo "unknown area: $want" >&2; usage; }
  IFS='|' read -r name tests project files filter <<<"$line"
  # The filter may itself hold '|' (alternatives): everything after the fifth field is the filter.
  filter=${line#*|*|*|*|}
  files=${STRYKER_FILES:-$files}
  filter=${STRYKER_FILTER:-$filter}
  out="$root/artifacts/mutation/$name"
  rm -rf "$out"
  mkdir -p "$out"
  args=(--project "$project" --concurrency "${STRYKER_CONCURRENCY:-1}" --break-at "${STRYKER_BREAK:-0}"
        --mutation-level "${STRYKER_LEVEL:-Standard}" --reporter Html --reporter Json --reporter ClearText
        --reporter Progress --output "$out" --skip-version-check)
  IFS=';' read -r -a globs <<<"$files"
  for g in "${globs[@]}"; do args+=(--mutate "$g"); done
  [ -n "$filter" ] && args+=(--test-case-filter "$filter")
  echo "== $name: mutating $files in $project, tests $tests${filter:+ ($filter)}"
  set +e
  (cd "$tests" && dotnet stryker "${args[@]}") | tee "$out/stryker.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  set -e
  report=$(ls "$out"/reports/mutation-report.json 2>/dev/null || true)
  if [ -n "$report" ]; then
    python3 - "$report" "$name" <<'PY'
import json, sys
report, name = json.load(open(sys.argv[1])), sys.argv[2]
counts, survivors = {}, []
for path, f in report["files"].items():
    lines = f["source"].split("\n")
    for m in f["mutants"]:
        counts[m["status"]] = counts.get(m["status"], 0) + 1
        if m["status"] in ("Survived", "NoCoverage"):
            l = m["location"]["start"]["line"]
            replacement = " ".join(m.get("replacement", "").split())[:100]
            survivors.append(f'  {m["status"]:<10} {path.split("/src/")[-1]}:{l} {m["mutatorName"]}: {replacement}')
killed = counts.get("Killed", 0) + counts.get("Timeout", 0)
valid = killed + counts.get("Survived", 0) + counts.get("NoCoverage", 0)
print(f"== {name}: {killed}/{valid} mutants killed ({100 * killed / max(valid, 1):.1f}%), {counts}")
print("\n".join(survivors))
PY
  fi
done
exit "$status"
