#!/usr/bin/env bash
# Load benchmark: builds Release, runs `flows` and `waiters` three times each against a server
# child process, and prints every run plus the median of each figure. Output goes to stdout only.
#   bench/run.sh — settings through the environment, e.g. FLOWS_ARGS="--agents 64" WAITERS_ARGS="--count 5000" bench/run.sh
#   bench/run.sh v1 — the /v1 figures of issue 13 instead, each beside its reference from the same run:
#     challenges  POST /v1/challenges at 32 clients (an administrator's API key) over 2048 users, nothing decided (the
#                 bench server raises Assent:Limits:MaxPendingPerAgentPerUser to 100000), vs CIBA bc-authorize
#     webhooks    decision -> webhook read by the driver's receiver at 500 decisions/s, from the decision's answer
#                 and from its send, vs the decision's own round trip
#     drain       50000 deliveries queued while the receiver is down; time from its return until all are read, and
#                 a probe's create/decide latency during the drain vs idle
#   e.g. RUNS=1 DRAIN_ARGS="--deliveries 20000" bench/run.sh v1
#   bench/run.sh signin — passkey sign-in for web clients (docs/http-api.md §17): the sign-in page, assertion (answered with the code), token
#                 at 16 clients on SQLite, server time per sign-in, vs a CIBA flow (ask, device approves, token)
#                 and vs node-oidc-provider signing as many users in (bench/peers/oidc-provider; needs node and npm)
#   bench/run.sh mandates — mandate-covered payments (request -> token, no human) beside plain flows in the same run,
#     as ratios: SQLite with 32 agents each spending their own mandate, and two PostgreSQL nodes spending one shared
#     mandate (the run fails if the remainder the tokens report disagrees with what they spent), and agent payments a
#     mandate covers (POST /v1/payments to the signed header, --payments); each phase reports server CPU per operation.
#     On SQLite a last phase asks node-oidc-provider for client credentials tokens (no human) at the same concurrency, a
#     peer from outside the project (bench/peers/oidc-provider; needs node and npm).
#     BASE_DLL=DIR/bench/Assent.Bench/bin/Release/net10.0/Assent.Bench.dll (another commit built apart) runs each mandates
#     figure against that build's server too, alternating, for a side-by-side ratio on a shared machine. Then a
#     quorum flow (2 of 3 users' CLI devices approving at once, docs/policies.md §3) beside a single-approver flow,
#     both open loops at the same rate (QUORUM_ARGS).
set -euo pipefail
cd "$(dirname "$0")/.."
SET=${1:-core}
case "$SET" in
  core | v1 | signin | mandates) ;;
  -h | --help) sed -n '2,/^set -euo/p' "bench/$(basename "$0")" | sed '$d'; exit 0 ;;
  *) echo "unknown set '$SET': core (the default), v1, signin or mandates; bench/run.sh --help" >&2; exit 64 ;;
esac

RUNS=${RUNS:-3}
# Warm-ups cover tiered JIT compilation (still a third of the machine 15 s in): the figures are steady state.
FLOWS_ARGS=${FLOWS_ARGS:-"--agents 32 --seconds 20 --warmup 20"}
WAITERS_ARGS=${WAITERS_ARGS:-"--count 10000 --seconds 20"}
# Scale-out: the same flows against two server nodes over PostgreSQL (fsync on), decisions crossing nodes.
SCALE_ARGS=${SCALE_ARGS:-"--engine postgres --nodes 2 --agents 32 --seconds 20 --warmup 30"}
CHALLENGES_ARGS=${CHALLENGES_ARGS:-"--clients 32 --users 2048 --seconds 10 --rounds 2 --warmup 10"}
WEBHOOKS_ARGS=${WEBHOOKS_ARGS:-"--rate 500 --seconds 20 --warmup 10"}
DRAIN_ARGS=${DRAIN_ARGS:-"--deliveries 50000 --probe-rate 50"}
SIGNIN_ARGS=${SIGNIN_ARGS:-"--clients 16 --seconds 10 --rounds 2 --warmup 20 --oidc-provider"}
MANDATES_ARGS=${MANDATES_ARGS:-"--agents 32 --seconds 10 --warmup 20 --oidc-provider"}
MANDATES_SCALE_ARGS=${MANDATES_SCALE_ARGS:-"--engine postgres --nodes 2 --shared --agents 32 --seconds 10 --warmup 20"}
PAYMENTS_ARGS=${PAYMENTS_ARGS:-"--payments --agents 32 --seconds 10 --warmup 20"}
QUORUM_ARGS=${QUORUM_ARGS:-"--users 32 --rate 200 --seconds 10 --warmup 10"}
BASE_DLL=${BASE_DLL:-}

# Every held waiter is a socket in the driver and one in the server: raise the open-file limit to
# 65536 (root may raise the hard limit too, unless the container forbids it; then up to the hard limit).
ulimit -Hn 65536 2>/dev/null || true
want=65536
hard=$(ulimit -Hn)
if [ "$hard" != "unlimited" ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
ulimit -Sn "$want"
echo "open-file limit: soft $(ulimit -Sn), hard $(ulimit -Hn)"

dotnet build bench/Assent.Bench -c Release -nologo -v quiet
BENCH=(dotnet bench/Assent.Bench/bin/Release/net10.0/Assent.Bench.dll)

results=$(mktemp)
trap 'rm -f "$results"' EXIT

run() {
  local mode=$1; shift
  for i in $(seq 1 "$RUNS"); do
    echo
    echo "\$ ${BENCH[*]} $mode $*   # run $i of $RUNS"
    "${BENCH[@]}" "$mode" "$@" | sed -u "s/^RESULT mode=/RESULT mode=${RESULT_PREFIX:-}/" | tee -a "$results"
  done
}

if [ "$SET" = v1 ]; then
  # shellcheck disable=SC2086
  run challenges $CHALLENGES_ARGS
  # shellcheck disable=SC2086
  run webhooks $WEBHOOKS_ARGS
  # shellcheck disable=SC2086
  run drain $DRAIN_ARGS
  modes="challenges webhooks drain"
elif [ "$SET" = signin ]; then
  # shellcheck disable=SC2086
  run signin $SIGNIN_ARGS
  modes="signin"
elif [ "$SET" = mandates ]; then
  for args in "$MANDATES_ARGS" "$MANDATES_SCALE_ARGS"; do
    # shellcheck disable=SC2086
    run mandates $args
    if [ -n "$BASE_DLL" ]; then
      # shellcheck disable=SC2086
      RESULT_PREFIX=base_ run mandates $args --server-dll "$BASE_DLL"
    fi
  done
  # shellcheck disable=SC2086
  run mandates $PAYMENTS_ARGS
  # shellcheck disable=SC2086
  run quorum $QUORUM_ARGS
  modes="mandates mandates_postgres_2n payments quorum"
  if [ -n "$BASE_DLL" ]; then modes="$modes base_mandates base_mandates_postgres_2n"; fi
else
  # shellcheck disable=SC2086
  run flows $FLOWS_ARGS
  # shellcheck disable=SC2086
  run flows $SCALE_ARGS
  # shellcheck disable=SC2086
  run waiters $WAITERS_ARGS
  modes="flows flows_postgres_2n waiters"
fi

echo
echo "== medians of $RUNS runs =="
for mode in $modes; do
  grep "^RESULT mode=$mode " "$results" | awk -v mode="$mode" '
    { for (i = 3; i <= NF; i++) { split($i, kv, "="); keys[i] = kv[1]; v[kv[1], NR] = kv[2] } n = NR; last = NF }
    END {
      printf "%s:", mode
      for (i = 3; i <= last; i++) {
        k = keys[i]; m = 0
        # Labels (engine=sqlite, nodes=2) are printed as they are; figures get their median.
        if (v[k, 1] !~ /^-?[0-9.]+$/) { printf " %s=%s", k, v[k, 1]; continue }
        for (r = 1; r <= n; r++) a[++m] = v[k, r] + 0
        # insertion sort, then the middle value
        for (x = 2; x <= m; x++) { t = a[x]; y = x - 1; while (y > 0 && a[y] > t) { a[y + 1] = a[y]; y-- } a[y + 1] = t }
        med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
        printf " %s=%s", k, med
        delete a
      }
      printf "\n"
    }'
done
