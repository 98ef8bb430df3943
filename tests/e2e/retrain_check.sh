#!/usr/bin/env bash
# Retraining from Reports with the tools: small data says how to train
# anyway (--split none); lcio-report-export --base merges Reports into base
# data; a Report of a conversation whose start was never reported (turn 7
# of an unknown conversation) is counted as orphaned, not made an episode.
# Usage: retrain_check.sh BUILD_DIR REPO_ROOT
set -euo pipefail
bin=$1 repo=$2
tmp=$(mktemp -d)
# shellcheck source=tests/e2e/serve_lib.sh
source "$repo/tests/e2e/serve_lib.sh"
trap 'lcio_stop_server; rm -rf "$tmp"' EXIT
fail() { echo "retrain_check: $*" >&2; exit 1; }

# Small data: the random split has no test side; the error names the way out.
"$bin/data/lcio-synth" --episodes=3 --out="$tmp/small.json" 2>/dev/null
if "$bin/tools/lcio-train" --data "$tmp/small.json" --timesteps 64 --progress off \
  --out "$tmp/small.pt" 2>"$tmp/small.log"; then
  fail "training 3 episodes with a random split succeeded"
fi
grep -q -- "--split none" "$tmp/small.log" || { cat "$tmp/small.log"; fail "no --split none hint"; }
"$bin/tools/lcio-train" --data "$tmp/small.json" --split none --timesteps 64 --progress off \
  --out "$tmp/small.pt" >/dev/null 2>&1 || fail "--split none"

# Reports through the real server: conversation c1 turns 0 and 1, and turn 7
# of a conversation the log never saw start.
lcio_start_server "$bin/server/lcio-server" "$tmp/server.log" \
  --report_log="$tmp/reports.log" --report_min_free_mb=0
report() {  # report CONVERSATION TURN
  "$bin/client/lcio-client" report --target="127.0.0.1:$LCIO_PORT" --conversation="$1" \
    --turn="$2" --prompt="turn $2" --task=Query --target_llm=local --association=0.1,0.2,0.3 \
    --answer="an answer" --score=700 --latency_s=1 --cost_usd=0.0001 >/dev/null
}
report c1 0
report late 7
report c1 1
lcio_stop_server

"$bin/server/lcio-report-export" --log "$tmp/reports.log" --out "$tmp/merged.json" \
  --base "$repo/data/M4A1.json" --rejects "$tmp/rejects.log" >"$tmp/summary.json" ||
  fail "export --base"
jq -e '.base_episodes == 100 and .episodes == 1 and .turns == 2 and .orphaned == 1' \
  "$tmp/summary.json" >/dev/null || { cat "$tmp/summary.json"; fail "summary"; }
[[ $(jq length "$tmp/merged.json") == 101 ]] || fail "merged: not 101 episodes"
[[ $(jq '[.[].id] | unique | length' "$tmp/merged.json") == 101 ]] || fail "merged: ids not unique"
[[ $(wc -l <"$tmp/rejects.log") == 1 ]] || fail "the orphan is not in the rejects log"
"$bin/tools/lcio-train" --data "$tmp/merged.json" --timesteps 256 --progress off \
  --out "$tmp/merged.pt" >/dev/null 2>&1 || fail "training on the merged data"
echo "retrain_check: small data hint, merge with base, orphaned Reports"
