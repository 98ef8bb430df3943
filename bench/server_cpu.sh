#!/usr/bin/env bash
# Server CPU per Decide call: each server runs under lcio-loadgen (M4A1 replay, 127.0.0.1) at one
# concurrency; its CPU time (utime + stime of every thread, /proc/PID/task/*/stat) over the
# measured calls, per thread name, and the load generator's. Servers alternate round by round;
# the summary gives medians and per-round ratios. A measure that survives a busy machine better
# than QPS (still noisy: caches and the scheduler are shared).
#   bench/server_cpu.sh BUILD_DIR POLICY ROUNDS DURATION_S CONCURRENCY SERVER...
# SERVER: LABEL=BINARY[,FLAG...]; a binary named *noop* is started as bench_noop_server.
# The string LOG in a flag becomes a fresh file under a temporary directory, e.g.
#   bench/server_cpu.sh build policy/default_policy.pt 5 5 32 noop=build/bench/bench_noop_server \
#     lcio=build/server/lcio-server lcio+log=build/server/lcio-server,--decision_log=LOG
set -euo pipefail
build=${1:?build dir}
policy=${2:?policy artifact}
rounds=${3:?rounds}
duration=${4:?duration_s}
concurrency=${5:?concurrency}
shift 5
[ $# -gt 0 ] || { echo "give at least one LABEL=BINARY[,FLAG...]" >&2; exit 2; }
data="$(cd "$(dirname "$0")/.." && pwd)/data/M4A1.json"
tmp=$(mktemp -d)
spid=""
cleanup() { [ -n "$spid" ] && kill "$spid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

snap() { for t in /proc/"$1"/task/*; do
  echo "$(tr ' ' _ <"$t/comm") $(awk '{print $14 + $15}' "$t/stat")"; done; }

measure() {  # label binary flags...
  local label=$1 bin=$2; shift 2
  local flags=() f
  for f in "$@"; do flags+=("${f//LOG/$tmp/decisions.jsonl}"); done
  rm -f "$tmp"/decisions.jsonl*
  if [[ $(basename "$bin") == *noop* ]]; then
    "$bin" --listen=127.0.0.1:0 >"$tmp/out" 2>&1 &
  else
    "$bin" --policy="$policy" --listen=127.0.0.1:0 --metrics_listen= --torch_device=cpu \
      --log_level=warning "${flags[@]}" >"$tmp/out" 2>&1 &
  fi
  spid=$!
  local port=""
  for _ in $(seq 600); do
    port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$tmp/out" | sed 's/.*://' || true)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "$label did not start" >&2; cat "$tmp/out" >&2; exit 1; }
  local lg=("$build/client/lcio-loadgen" --target="127.0.0.1:$port" --concurrency="$concurrency"
    --warmup_requests=500 --data="$data" --json)
  "${lg[@]}" --duration_s=1 >/dev/null  # warm-up: connections, conversations, caches
  snap "$spid" >"$tmp/a"
  /usr/bin/time -f "%U %S" -o "$tmp/lgcpu" "${lg[@]}" --duration_s="$duration" >"$tmp/lg"
  snap "$spid" >"$tmp/b"
  kill "$spid"; wait "$spid" 2>/dev/null || true; spid=""
  python3 - "$tmp" "$label" "$(getconf CLK_TCK)" <<'PY'
import collections, json, sys
d, label, hz = sys.argv[1], sys.argv[2], int(sys.argv[3])
def read(f):
    c = collections.Counter()
    for line in open(f"{d}/{f}"):
        name, ticks = line.split()
        c[name] += int(ticks)
    return c
a, b = read("a"), read("b")
lg = json.load(open(f"{d}/lg"))
n = lg["ok"]
per = {k: (b[k] - a[k]) / hz / n * 1e6 for k in b if b[k] - a[k] > 0}
lgcpu = sum(map(float, open(f"{d}/lgcpu").read().split()[-2:])) / n * 1e6
print(json.dumps({"label": label, "calls": n, "qps": lg["qps"], "server_us": round(sum(per.values()), 2),
                  "threads_us": {k: round(v, 2) for k, v in sorted(per.items(), key=lambda x: -x[1])},
                  "loadgen_us": round(lgcpu, 2)}))
PY
}

for round in $(seq "$rounds"); do
  for server in "$@"; do
    label=${server%%=*}
    IFS=, read -r -a parts <<<"${server#*=}"
    measure "$label" "${parts[@]}" | sed "s/^{/{\"round\": $round, /"
  done
done | tee "$tmp/results.jsonl"

python3 - "$tmp/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
labels = list(dict.fromkeys(r["label"] for r in rows))
med = lambda xs: statistics.median(xs)
print(f"server CPU per call, µs: medians over {max(r['round'] for r in rows)} round(s) [min-max]")
for l in labels:
    s = [r["server_us"] for r in rows if r["label"] == l]
    log = [sum(v for k, v in r["threads_us"].items() if k.startswith("lcio-")) for r in rows if r["label"] == l]
    lg = [r["loadgen_us"] for r in rows if r["label"] == l]
    print(f"  {l}: {med(s):.1f} [{min(s):.1f}-{max(s):.1f}], of which the log's threads {med(log):.1f};"
          f" load generator {med(lg):.1f}; QPS {med([r['qps'] for r in rows if r['label'] == l]):.0f}")
by = {(r["label"], r["round"]): r for r in rows}
for i, a in enumerate(labels):
    for b in labels[:i]:
        x = [by[(a, k)]["server_us"] / by[(b, k)]["server_us"] for (l, k) in by if l == a and (b, k) in by]
        print(f"  {a} / {b}: median {med(x):.2f} [{min(x):.2f}-{max(x):.2f}] per round")
PY
