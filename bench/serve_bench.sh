#!/usr/bin/env bash
# Decide throughput and latency of lcio-server next to the no-op server (the
# transport's limit), both driven by lcio-loadgen on 127.0.0.1.
#   bench/serve_bench.sh BUILD_DIR POLICY [DURATION_S] [CONCURRENCIES] [EXTRA SERVER FLAGS...]
# Prints one JSON line per (server, concurrency) run and a summary table.
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

start noop "$build/bench/bench_noop_server" --listen=127.0.0.1:0
noop_port=$port
start lcio "$build/server/lcio-server" --policy="$policy" --listen=127.0.0.1:0 \
  --metrics_listen= --torch_device=cpu --log_level=warning "${extra[@]}"
lcio_port=$port

for c in $levels; do
  for target in noop lcio; do
    p=$([ $target = noop ] && echo $noop_port || echo $lcio_port)
    "$build/client/lcio-loadgen" --target=127.0.0.1:$p --concurrency=$c --duration_s=$duration \
      --warmup_requests=500 --data="$data" --json | sed "s/^{/{\"server\": \"$target\", /"
  done
done | tee "$tmp/results.jsonl"

python3 - "$tmp/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {(r["server"], r["concurrency"]): r for r in rows}
print("| concurrency | no-op QPS | lcio QPS | ratio | no-op p50/p99 us | lcio p50/p99 us | p99 diff us |")
print("|---|---|---|---|---|---|---|")
for c in sorted({r["concurrency"] for r in rows}):
    n, l = by[("noop", c)], by[("lcio", c)]
    print(f"| {c} | {n['qps']:.0f} | {l['qps']:.0f} | {l['qps']/n['qps']:.2f} | "
          f"{n['p50_us']:.0f} / {n['p99_us']:.0f} | {l['p50_us']:.0f} / {l['p99_us']:.0f} | "
          f"{l['p99_us']-n['p99_us']:.0f} |")
PY
