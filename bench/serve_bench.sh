#!/usr/bin/env bash
# Decide throughput and latency of lcio-server next to the no-op server (the
# transport's limit), both driven by lcio-loadgen on 127.0.0.1.
#   bench/serve_bench.sh BUILD_DIR POLICY [DURATION_S] [CONCURRENCIES] [EXTRA SERVER FLAGS...]
# ROUNDS=N (default 1) repeats the whole sweep, interleaving the two servers
# (no-op, lcio, no-op, lcio, ...) so that both see the same machine; the
# table gives per-round medians. Prints one JSON line per run and the table.
# BASELINE_FLAGS="FLAGS..." (may be " ") compares against a second lcio-server started with
# those flags instead of the no-op (e.g. the decision log's cost: lcio with the log against lcio
# without); the "no-op" columns are then that server's. BASELINE_BIN=PATH (with BASELINE_FLAGS)
# runs that lcio-server binary as the comparison server, e.g. an older build (before/after).
set -euo pipefail
build=${1:?build dir}
policy=${2:?policy artifact}
duration=${3:-5}
levels=${4:-"1 8 32 64"}
shift $(( $# < 4 ? $# : 4 ))
extra=("$@")
data="$(cd "$(dirname "$0")/.." && pwd)/data/M4A1.json"
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

start() {  # name, command...; sets $port
  local name=$1; shift
  "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=($!)
  for _ in $(seq 600); do
    port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$tmp/$name.out" 2>/dev/null | sed 's/.*://') || true
    [ -n "${port:-}" ] && return 0
    sleep 0.1
  done
  echo "$name did not start" >&2; cat "$tmp/$name.err" >&2; exit 1
}

if [ -n "${BASELINE_FLAGS:-}" ]; then
  read -r -a baseline_flags <<<"$BASELINE_FLAGS"
  start noop "${BASELINE_BIN:-$build/server/lcio-server}" --policy="$policy" --listen=127.0.0.1:0 \
    --metrics_listen= --torch_device=cpu --log_level=warning "${baseline_flags[@]}"
else
  start noop "$build/bench/bench_noop_server" --listen=127.0.0.1:0
fi
noop_port=$port
start lcio "$build/server/lcio-server" --policy="$policy" --listen=127.0.0.1:0 \
  --metrics_listen= --torch_device=cpu --log_level=warning "${extra[@]}"
lcio_port=$port
lcio_pid=${pids[-1]}

rounds=${ROUNDS:-1}
for round in $(seq "$rounds"); do
for c in $levels; do
  for target in noop lcio; do
    p=$([ "$target" = noop ] && echo "$noop_port" || echo "$lcio_port")
    "$build/client/lcio-loadgen" --target="127.0.0.1:$p" --concurrency="$c" --duration_s="$duration" \
      --warmup_requests=500 --data="$data" --json |
      sed "s/^{/{\"server\": \"$target\", \"round\": $round, /"
  done
done
done | tee "$tmp/results.jsonl"

python3 - "$tmp/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(server, c, key):
    return statistics.median(r[key] for r in rows if r["server"] == server and r["concurrency"] == c)
def ratios(c, key):  # lcio / no-op within each round
    by = {(r["server"], r["round"]): r for r in rows if r["concurrency"] == c}
    return [by[("lcio", k)][key] / by[("noop", k)][key] for (s, k) in by if s == "lcio"]
def diffs(c, key):
    by = {(r["server"], r["round"]): r for r in rows if r["concurrency"] == c}
    return [by[("lcio", k)][key] - by[("noop", k)][key] for (s, k) in by if s == "lcio"]
rounds = max(r["round"] for r in rows)
print(f"medians over {rounds} round(s); ratio and p99 difference are per-round medians")
print("| concurrency | no-op QPS | lcio QPS | ratio | no-op p50/p99 us | lcio p50/p99 us | p99 diff us |")
print("|---|---|---|---|---|---|---|")
for c in sorted({r["concurrency"] for r in rows}):
    print(f"| {c} | {med('noop', c, 'qps'):.0f} | {med('lcio', c, 'qps'):.0f} | "
          f"{statistics.median(ratios(c, 'qps')):.2f} | "
          f"{med('noop', c, 'p50_us'):.0f} / {med('noop', c, 'p99_us'):.0f} | "
          f"{med('lcio', c, 'p50_us'):.0f} / {med('lcio', c, 'p99_us'):.0f} | "
          f"{statistics.median(diffs(c, 'p99_us')):+.0f} |")
PY

# With --decision_log among the flags: how much of lcio's traffic it holds
# (after lcio-server drained on SIGTERM; warm-up calls included; start from
# an absent log file).
for flag in "${extra[@]}"; do
  case $flag in
    --decision_log=*)
      { kill -TERM "$lcio_pid"; wait "$lcio_pid"; } || true
      calls=$(python3 -c 'import json, sys
print(sum(json.loads(l)["requests"] + 500 for l in open(sys.argv[1]) if json.loads(l)["server"] == "lcio"))' "$tmp/results.jsonl")
      echo "decision log: $(cat "${flag#--decision_log=}"* | wc -l) records for about $calls Decide calls to lcio"
      ;;
  esac
done
