#!/usr/bin/env bash
# Web app figures in the browser test setup (headless Debian Chromium, CDP virtual authenticator,
# server on http://localhost): bytes transferred by the first load of /app, and tap to token —
# from the approve button's click event to the agent's Prefer: wait token response — with its
# parts (passkey ceremony, decision POST, decision response to token). Printed, not asserted.
#   bench/web.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export ASSENT_WEB_BENCH_SAMPLES=${ASSENT_WEB_BENCH_SAMPLES:-100}
dotnet test tests/Assent.Web.Tests --nologo -v quiet \
  --filter "FullyQualifiedName~The_app_first_load_is_small_and_tap_to_token_is_measured" \
  --logger "console;verbosity=detailed" | grep '^bench:'
