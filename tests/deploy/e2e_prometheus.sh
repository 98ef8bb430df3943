#!/usr/bin/env bash
# End to end, as deployed: lcio-server started by the container entrypoint
# (deploy/docker/entrypoint-server.sh, policy directory seeded from the "baked-in" default), a real
# Prometheus from Debian scraping its /metrics with lcio's alert rules loaded, Decide traffic from
# lcio-loadgen, then through the Prometheus HTTP API:
#   - every query of the Grafana dashboard is accepted, and the core panels return data;
#   - the Decide counter Prometheus holds equals the calls lcio-loadgen made;
#   - a bad artifact published with publish-policy.sh is rejected by the server, which keeps
#     serving, and the LcioPolicyReloadFailed alert fires; republishing the good one reloads;
#   - with lcio-report-export: a Report lands in the log and exports as M4A1 JSON; with lcio-train
#     too, entrypoint-train.sh retrains on it and publishes, and the server hot-reloads the result;
#   - SIGTERM: the server drains and exits 0.
# Everything on 127.0.0.1, ports picked free, bounded in time; exits 77 (SKIP) when a tool or the
# server binaries are missing.
#   e2e_prometheus.sh SOURCE_DIR SERVER LOADGEN [CLIENT] [REPORT_EXPORT] [TRAIN] [POLICY_INFO]
set -euo pipefail
src="${1:?usage: e2e_prometheus.sh SOURCE_DIR SERVER LOADGEN [CLIENT] [REPORT_EXPORT] [TRAIN] [POLICY_INFO]}"
server_bin="${2:-}"
loadgen_bin="${3:-}"
client_bin="${4:-}"
export_bin="${5:-}"
train_bin="${6:-}"
policy_info_bin="${7:-}"
for tool in prometheus curl jq ss; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not found (Debian packages: prometheus, curl, jq, iproute2)"; exit 77; }
done
for b in "$server_bin" "$loadgen_bin" "$policy_info_bin"; do
  [[ -n "$b" && -x "$b" ]] || { echo "SKIP: lcio-server, lcio-loadgen and lcio-policy-info are not built"; exit 77; }
done
# publish-policy.sh validates every artifact with it.
export LCIO_POLICY_INFO="$policy_info_bin"
default_policy="${LCIO_E2E_POLICY:-$src/policy/default_policy.pt}"
[[ -s "$default_policy" ]] || { echo "SKIP: no default policy at $default_policy"; exit 77; }

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  echo "---- server log (tail)"
  tail -n 30 "$work/server.log" 2>/dev/null || true
  echo "---- prometheus log (tail)"
  tail -n 15 "$work/prometheus.log" 2>/dev/null || true
  exit 1
}
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: polls every 0.25 s
  local deadline=$((SECONDS + $1)) what="$2"
  shift 2
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out waiting for $what"
    sleep 0.25
  done
}
free_port() {  # a TCP port nothing listens on now (Prometheus cannot report one it picked itself)
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
}

# ---- the server, started the way the image starts it ------------------------------------------
mkdir -p "$work/policy" "$work/reports"
LCIO_SERVER_BIN="$server_bin" \
  LCIO_DEFAULT_POLICY="$default_policy" \
  LCIO_POLICY_DIR="$work/policy" \
  LCIO_LISTEN=127.0.0.1:0 \
  LCIO_METRICS_LISTEN=127.0.0.1:0 \
  LCIO_TORCH_DEVICE=cpu \
  LCIO_DRAIN_TIMEOUT_S=5 \
  LCIO_WATCH_INTERVAL_MS=200 \
  LCIO_REPORT_LOG="$work/reports/e2e.log" \
  "$src/deploy/docker/entrypoint-server.sh" >"$work/server.log" 2>&1 &
server_pid=$!
pids+=("$server_pid")
wait_for 120 "the server's start-up lines" grep -q "lcio-server metrics on" "$work/server.log"
grpc_addr=$(sed -n 's/^lcio-server listening on \(.*\)$/\1/p' "$work/server.log" | head -1)
metrics_addr=$(sed -n 's/^lcio-server metrics on \(.*\)$/\1/p' "$work/server.log" | head -1)
[[ -n "$grpc_addr" && -n "$metrics_addr" ]] || fail "no listening lines"
[[ -s "$work/policy/policy.pt" ]] || fail "the entrypoint did not seed the policy directory"
cmp -s "$work/policy/policy.pt" "$default_policy" || fail "the seeded policy differs from the default"
echo "server: gRPC $grpc_addr, metrics $metrics_addr, policy seeded into $work/policy"

# ---- Prometheus on loopback --------------------------------------------------------------------
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $src/deploy/prometheus/lcio-rules.yml
scrape_configs:
  - job_name: lcio-server
    scrape_interval: 1s
    scrape_timeout: 900ms
    static_configs:
      - targets: ['$metrics_addr']
        labels:
          namespace: e2e
          track: stable
EOF
for attempt in 1 2 3; do
  prom_port=$(free_port)
  prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$prom_port" --storage.tsdb.retention.time=1h \
    >"$work/prometheus.log" 2>&1 &
  prom_pid=$!
  pids+=("$prom_pid")
  api="http://127.0.0.1:$prom_port"
  ready=0
  for _ in $(seq 1 120); do
    if curl -fsS "$api/-/ready" >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$prom_pid" 2>/dev/null || break
    sleep 0.25
  done
  ((ready)) && break
  kill "$prom_pid" 2>/dev/null || true
  ((attempt < 3)) || fail "Prometheus did not start"
done
echo "prometheus: $api"

query() {  # query PROMQL: prints the JSON answer of an instant query
  curl -fsS --get "$api/api/v1/query" --data-urlencode "query=$1"
}
scalar() {  # scalar PROMQL: the first sample's value, or "none"
  query "$1" | jq -r '.data.result[0].value[1] // "none"'
}
metric() {  # metric NAME_WITH_LABELS: the value on the server's /metrics page now (0 if absent)
  curl -fsS "http://$metrics_addr/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v == "" ? 0 : v }'
}
has_target_up() { [[ "$(scalar 'up{job="lcio-server"}')" == "1" ]]; }
wait_for 30 "Prometheus to scrape the server" has_target_up
has_policy() { [[ "$(scalar 'lcio_policy_loaded{job="lcio-server"}')" == "1" ]]; }
wait_for 30 "lcio_policy_loaded == 1" has_policy

# ---- traffic -----------------------------------------------------------------------------------
"$loadgen_bin" --target="$grpc_addr" --concurrency=2 --duration_s=4 --json --fail_on_error \
  --data="$src/data/M4A1.json" >"$work/load1.json" || fail "lcio-loadgen failed: $(cat "$work/load1.json")"
sleep 1.5
"$loadgen_bin" --target="$grpc_addr" --concurrency=2 --duration_s=2 --json --fail_on_error \
  --data="$src/data/M4A1.json" >"$work/load2.json" || fail "lcio-loadgen failed: $(cat "$work/load2.json")"
sent=$(jq -s 'map(.codes.OK // 0) | add' "$work/load1.json" "$work/load2.json")
((sent > 0)) || fail "lcio-loadgen made no successful call"
echo "load: $sent Decide calls OK"
counted() { [[ "$(scalar 'sum(lcio_decide_requests_total{job="lcio-server",code="OK"})')" == "$sent" ]]; }
wait_for 15 "Prometheus to hold lcio_decide_requests_total{code=\"OK\"} == $sent" counted

# ---- the dashboard's queries -------------------------------------------------------------------
dashboard="$src/deploy/k8s/monitoring/lcio-dashboard.json"
# Panels that must show data after Decide traffic (others, e.g. reloads, may rightly be empty).
must_have_data='Decisions per second|Cloud share|Spend per hour|Decisions per second by target|Decide latency percentiles|Local vs cloud share|Decide requests by status code|Policy version|Load'
checked=0
while IFS=$'\t' read -r title expr; do
  # shellcheck disable=SC2016 # Grafana's variables, not the shell's
  q=$(sed -e 's/\$__rate_interval/15s/g' -e 's/\$job/lcio-server/g' -e 's/\$namespace/.*/g' -e 's/\$track/.*/g' <<<"$expr")
  answer=$(query "$q") || fail "panel '$title': Prometheus rejected $q"
  [[ "$(jq -r .status <<<"$answer")" == success ]] || fail "panel '$title': $answer"
  if [[ "$title" =~ ^($must_have_data)$ ]]; then
    n=$(jq '[.data.result[] | select(.value[1] != "NaN")] | length' <<<"$answer")
    ((n > 0)) || fail "panel '$title' shows no data: $q"
  fi
  checked=$((checked + 1))
done < <(jq -r '.panels[] | .title as $t | .targets[] | [$t, .expr] | @tsv' "$dashboard")
echo "dashboard: $checked queries answered, core panels have data"
latency_p99=$(scalar 'histogram_quantile(0.99, sum by (le) (rate(lcio_decide_latency_seconds_bucket{job="lcio-server"}[15s])))')
echo "dashboard: Decide p99 $latency_p99 s, decisions/s $(scalar 'sum(rate(lcio_decisions_total{job="lcio-server"}[15s]))')"

rules_ok=$(curl -fsS "$api/api/v1/rules" | jq '[.data.groups[].rules[] | select(.health == "ok")] | length')
rules_all=$(grep -c -- '- alert:' "$src/deploy/prometheus/lcio-rules.yml")
[[ "$rules_ok" == "$rules_all" ]] || fail "$rules_ok of $rules_all alert rules evaluate without error"
echo "alerts: $rules_ok rules loaded and evaluating"

# ---- rolling a policy: a bad artifact is refused and alerted on, the good one reloads ----------
errors_before=$(metric 'lcio_policy_reloads_total{result="error"}')
head -c 4096 /dev/urandom >"$work/garbage.pt"
if "$src/deploy/docker/publish-policy.sh" "$work/garbage.pt" "$work/policy" >/dev/null 2>&1; then
  fail "publish-policy.sh published an artifact lcio-policy-info refuses"
fi
# What publish-policy.sh prevents, done by hand: a bad file reaches the servers.
cp "$work/garbage.pt" "$work/policy/.garbage" && mv -f "$work/policy/.garbage" "$work/policy/policy.pt"
reload_failed() { [[ "$(metric 'lcio_policy_reloads_total{result="error"}')" != "$errors_before" ]]; }
wait_for 20 "the server to refuse the bad artifact" reload_failed
alert_firing() { [[ "$(scalar 'ALERTS{alertname="LcioPolicyReloadFailed",alertstate="firing"}')" == "1" ]]; }
wait_for 20 "LcioPolicyReloadFailed to fire" alert_firing
"$loadgen_bin" --target="$grpc_addr" --concurrency=1 --requests=20 --duration_s=10 --json --fail_on_error \
  --data="$src/data/M4A1.json" >"$work/load3.json" || fail "calls failed after a bad publish: $(cat "$work/load3.json")"
[[ "$(metric lcio_policy_loaded)" == 1 ]] || fail "the server dropped its policy after a bad publish"
echo "reload: bad artifact refused by publish-policy.sh and (copied by hand) by the server, LcioPolicyReloadFailed firing, still serving"
ok_before=$(metric 'lcio_policy_reloads_total{result="ok"}')
"$src/deploy/docker/publish-policy.sh" "$default_policy" "$work/policy" >/dev/null
reloaded() { [[ "$(metric 'lcio_policy_reloads_total{result="ok"}')" != "$ok_before" ]]; }
wait_for 20 "the server to reload the good artifact" reloaded
echo "reload: good artifact republished and reloaded"

# ---- Report -> export -> retrain -> publish -> hot reload ---------------------------------------
if [[ -n "$client_bin" && -x "$client_bin" && -n "$export_bin" && -x "$export_bin" ]]; then
  decision=$("$client_bin" decide --target="$grpc_addr" --conversation=e2e-report --turn=0 \
    --prompt="What is on the table next to the sofa?" --association=0.4,0.7,0.2) || fail "lcio-client decide: $decision"
  decision_id=$(jq -r '.decisionId // .decision_id // empty' <<<"$decision")
  target=$(jq -r '.target // empty' <<<"$decision" | tr '[:upper:]' '[:lower:]' | sed 's/^target_//')
  [[ -n "$decision_id" ]] || fail "no decision id in $decision"
  task=$(jq -r '.task // empty' <<<"$decision")
  uploaded=$(jq -r '[.upload[]?.name] | join(",")' <<<"$decision")
  "$client_bin" report --target="$grpc_addr" --conversation=e2e-report --turn=0 \
    --decision_id="$decision_id" --target_llm="${target:-local}" --task="$task" \
    --prompt="What is on the table next to the sofa?" --association=0.4,0.7,0.2 \
    --uploaded="$uploaded" --answer="A lamp." --score=0.8 \
    --latency_s=1.5 --cost_usd=0.001 >"$work/report.json" || fail "lcio-client report: $(cat "$work/report.json")"
  reported() { [[ "$(scalar 'sum(lcio_reports_total{job="lcio-server"})')" == 1 ]]; }
  wait_for 15 "lcio_reports_total == 1 in Prometheus" reported
  "$export_bin" --log "$work/reports/e2e.log" --out "$work/exported.json" || fail "lcio-report-export failed"
  episodes=$(jq 'length' "$work/exported.json")
  ((episodes >= 1)) || fail "the Report log exported no episode"
  echo "report: 1 Report counted by Prometheus, exported as $episodes M4A1 episode(s)"
  if [[ -n "$train_bin" && -x "$train_bin" ]]; then
    read -r -a train_args <<<"${LCIO_E2E_TRAIN_ARGS:-}"
    version_before=$(query 'lcio_policy_info{job="lcio-server"}' | jq -r '.data.result | map(.metric.version) | join(",")')
    ok_before=$(metric 'lcio_policy_reloads_total{result="ok"}')
    LCIO_TRAIN_BIN="$train_bin" LCIO_EXPORT_BIN="$export_bin" LCIO_BASE_DATA="$src/data/M4A1.json" \
      LCIO_REPORT_LOGS="$work/reports" LCIO_MIN_REPORT_EPISODES=1 LCIO_WORK_DIR="$work/train" \
      LCIO_TIMESTEPS="${LCIO_E2E_TIMESTEPS:-2048}" LCIO_SEED=7 LCIO_PUBLISH_DIR="$work/policy" \
      "$src/deploy/docker/entrypoint-train.sh" "${train_args[@]}" >"$work/train.log" 2>&1 ||
      { cat "$work/train.log"; fail "entrypoint-train.sh failed"; }
    wait_for 60 "the server to hot-reload the retrained policy" reloaded
    new_version() { [[ "$(query 'lcio_policy_info{job="lcio-server"}' | jq -r '.data.result | map(.metric.version) | join(",")')" != "$version_before" ]]; }
    wait_for 15 "Prometheus to see the new policy version" new_version
    echo "retrain: trained on base data + Reports, published, hot-reloaded (was version $version_before)"
  else
    echo "note: lcio-train not built: the retrain step is not exercised"
  fi
else
  echo "note: lcio-client or lcio-report-export not built: the Report path is not exercised"
fi

# ---- graceful shutdown -------------------------------------------------------------------------
kill -TERM "$server_pid"
deadline=$((SECONDS + 20))
while kill -0 "$server_pid" 2>/dev/null; do
  ((SECONDS < deadline)) || fail "the server did not exit within 20 s of SIGTERM"
  sleep 0.2
done
rc=0
wait "$server_pid" || rc=$?
((rc == 0)) || fail "the server exited with $rc after SIGTERM"
echo "shutdown: SIGTERM -> exit 0"
echo "e2e_prometheus: OK"
