#!/usr/bin/env bash
# A fleet target held online, measured: lcio-server with --fleet_target TARGET and
# --fleet_control=pi, lcio-loadgen replaying a traffic log (M4A1 schema) on 127.0.0.1; after
# SETTLE decisions (the controller starts at s = 1 unless --fleet_control_initial_scale is among
# the extra flags), the next MEASURE decisions give the
# achieved figure from the server's counters (independent of the controller's own window):
#   cloud share = d lcio_decisions_total{target="cloud"} / d lcio_decisions_total
#   spend       = d lcio_expected_cost_usd_total / d lcio_conversations_started_total
#   bench/fleet_replay.sh BUILD_DIR POLICY TRAFFIC TARGET [MONEY_BUDGET] [EXTRA SERVER FLAGS...]
# TARGET: cloud_share:S or spend_usd:X. SETTLE (10000), MEASURE (20000), CONCURRENCY (4).
# Prints one line: target, achieved, error (points of share, or % of spend), final scale.
set -euo pipefail
build=${1:?build dir}
policy=${2:?policy artifact}
traffic=${3:?traffic log (M4A1 JSON, e.g. from lcio-synth)}
target=${4:?cloud_share:S or spend_usd:X}
money=${5:-0.05}
shift $(( $# < 5 ? $# : 5 ))
extra=("$@")
settle=${SETTLE:-10000}
measure=${MEASURE:-20000}
concurrency=${CONCURRENCY:-4}
tmp=$(mktemp -d)
pid=""
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$tmp"; }
trap cleanup EXIT

"$build/server/lcio-server" --listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 \
  --torch_device=cpu --policy="$policy" --fleet_target="$target" --fleet_control=pi \
  "${extra[@]}" >"$tmp/server.out" 2>"$tmp/server.err" &
pid=$!
port="" metrics=""
for _ in $(seq 600); do
  port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$tmp/server.out" 2>/dev/null | sed 's/.*://') || true
  metrics=$(grep -o 'metrics on [0-9.]*:[0-9]*' "$tmp/server.out" 2>/dev/null | sed 's/.*://') || true
  [ -n "$port" ] && [ -n "$metrics" ] && break
  sleep 0.1
done
if [ -z "$port" ] || [ -z "$metrics" ]; then cat "$tmp/server.err" >&2; exit 1; fi

load() {  # requests
  "$build/client/lcio-loadgen" --target="127.0.0.1:$port" --concurrency="$concurrency" \
    --requests="$1" --duration_s=0 --money_budget="$money" --data="$traffic" \
    --fail_on_error --json >"$tmp/loadgen.json"
}
scrape() {  # file
  curl -sf "http://127.0.0.1:$metrics/metrics" >"$1"
}
value() {  # file, metric line prefix (exact series)
  awk -v k="$2" '$1 == k { print $2 }' "$1"
}

load "$settle"
scrape "$tmp/a"
load "$measure"
scrape "$tmp/b"
cloud=$(( $(value "$tmp/b" 'lcio_decisions_total{target="cloud"}' | cut -d. -f1) -
          $(value "$tmp/a" 'lcio_decisions_total{target="cloud"}' | cut -d. -f1) ))
local_=$(( $(value "$tmp/b" 'lcio_decisions_total{target="local"}' | cut -d. -f1) -
           $(value "$tmp/a" 'lcio_decisions_total{target="local"}' | cut -d. -f1) ))
cost_a=$(value "$tmp/a" lcio_expected_cost_usd_total)
cost_b=$(value "$tmp/b" lcio_expected_cost_usd_total)
starts=$(( $(value "$tmp/b" lcio_conversations_started_total | cut -d. -f1) -
           $(value "$tmp/a" lcio_conversations_started_total | cut -d. -f1) ))
scale=$(value "$tmp/b" lcio_fleet_budget_scale_ratio)
kind=${target%%:*}
goal=${target#*:}
awk -v kind="$kind" -v goal="$goal" -v cloud="$cloud" -v local_="$local_" -v ca="$cost_a" \
    -v cb="$cost_b" -v starts="$starts" -v scale="$scale" -v money="$money" 'BEGIN {
  n = cloud + local_
  if (kind == "cloud_share") {
    achieved = cloud / n
    printf "target cloud_share %.3f  achieved %.4f  error %+.2f points  ", goal, achieved, 100 * (achieved - goal)
  } else {
    achieved = (cb - ca) / starts
    printf "target spend_usd %.5f  achieved %.5f  error %+.2f%%  ", goal, achieved, 100 * (achieved / goal - 1)
  }
  printf "(%d decisions, %d conversations; scale %.4f = %.5f USD of %.3f)\n", n, starts, scale, scale * money, money
}'
