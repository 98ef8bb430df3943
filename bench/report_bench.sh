#!/usr/bin/env bash
# Decide p50/p99 of one sequential caller while R clients Report back to back,
# with every fdatasync of the report log slowed by the fault shim
# (tests/faults/fault_shim.cc).
#   bench/report_bench.sh BUILD_DIR POLICY [FSYNC_DELAY_MS] [REPORTERS...] [-- SERVER_BIN]
# e.g. bench/report_bench.sh build /tmp/bench_policy.pt 50 0 4 16 64
set -euo pipefail
build=${1:?build dir}
policy=${2:?policy artifact}
delay=${3:-50}
shift $(( $# < 3 ? $# : 3 ))
levels=()
server="$build/server/lcio-server"
while (($#)); do
  if [[ $1 == -- ]]; then server=$2; break; fi
  levels+=("$1"); shift
done
((${#levels[@]})) || levels=(0 4 16 64)
tmp=$(mktemp -d)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
for r in "${levels[@]}"; do
  rm -f "$tmp"/reports.log* "$tmp/server.out"
  env LD_PRELOAD="$build/tests/faults/liblcio_fault_shim.so" LCIO_FAULT_PATH=reports.log \
    LCIO_FAULT_FSYNC_DELAY_MS="$delay" \
    "$server" --policy="$policy" --listen=127.0.0.1:0 --metrics_listen= --torch_device=cpu \
    --log_level=warning --report_log="$tmp/reports.log" >"$tmp/server.out" 2>"$tmp/server.err" &
  pid=$!
  port=
  for _ in $(seq 600); do
    port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$tmp/server.out" 2>/dev/null | sed 's/.*://') || true
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || { echo "server did not start" >&2; cat "$tmp/server.err" >&2; exit 1; }
  "$build/bench/bench_report" --target="127.0.0.1:$port" --reporters="$r" --duration_s="${DURATION_S:-5}" |
    sed "s/^{/{\"fsync_delay_ms\": $delay, /"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
