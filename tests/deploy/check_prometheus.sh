#!/usr/bin/env bash
# promtool on deploy/prometheus: the rules and the scrape configuration parse and are valid, the
# rule unit tests pass, every alert has a test that expects it to fire, and every query of the
# Grafana dashboard is valid PromQL (checked by promtool as recording rules, variables filled in).
# The dashboard's annotations (policy reloads) are evaluated by a promtool unit test on the series a
# server exports around a reload, so one that can never show anything fails; legends and annotation
# texts must use well-formed {{label}} placeholders.
#   check_prometheus.sh SOURCE_DIR
set -euo pipefail
src="${1:?usage: check_prometheus.sh SOURCE_DIR}"
for tool in promtool jq; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool not found (Debian packages: prometheus, jq)"
    exit 77
  fi
done
prom="$src/deploy/prometheus"
dashboard="$src/deploy/k8s/monitoring/lcio-dashboard.json"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

promtool check rules "$prom/lcio-rules.yml"
promtool check config "$prom/prometheus.yml"
(cd "$prom" && promtool test rules lcio-rules.test.yml)

# Every alert of the rules file is expected to fire in at least one test.
alerts=$(grep -E '^\s*- alert:' "$prom/lcio-rules.yml" | sed -E 's/.*alert:\s*//' | sort -u)
missing=0
for a in $alerts; do
  # An alertname line followed (before the next alertname) by a non-empty exp_alerts list.
  if ! awk -v a="$a" '
      /alertname:/ { current = ($2 == a) }
      current && /exp_alerts:/ && $0 !~ /\[\]/ { found = 1 }
      END { exit found ? 0 : 1 }' "$prom/lcio-rules.test.yml"; then
    echo "FAIL: alert $a has no promtool test in which it fires"
    missing=1
  fi
done
((missing == 0)) || exit 1
echo "every alert ($(echo "$alerts" | wc -w)) has a firing test"

# Dashboard queries as recording rules: promtool parses each expression.
# shellcheck disable=SC2016 # the $ in the sed scripts are Grafana's variables, not the shell's
{
  echo "groups:"
  echo "  - name: dashboard-queries"
  echo "    rules:"
  jq -r '[.panels[].targets[].expr, (.annotations.list[] | select(.expr) | .expr)] | .[]' "$dashboard" |
    sed -e 's/\$__rate_interval/1m/g' -e 's/\$job/lcio-server/g' -e 's/\$namespace/.*/g' -e 's/\$track/.*/g' |
    awk '{ gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); printf "      - record: dashboard:query_%d\n        expr: \"%s\"\n", NR, $0 }'
} >"$work/dashboard-rules.yml"
if grep -q '\$' "$work/dashboard-rules.yml"; then
  echo "FAIL: a dashboard query uses a variable this check does not know:"
  grep '\$' "$work/dashboard-rules.yml"
  exit 1
fi
promtool check rules "$work/dashboard-rules.yml"

# Grafana fills {{label}} in a legend or annotation text; anything else with braces ("{{{{reason}}}}",
# "{reason}") is shown literally.
bad_formats=$(jq -r '
  [(.panels[] | .title as $t | .targets[] | select(.legendFormat) | [$t, .legendFormat, .expr]),
   (.annotations.list[] | select(.expr) | .name as $n | .expr as $e |
    (.titleFormat, .textFormat) | select(.) | ["annotation " + $n, ., $e])][] |
  . as [$where, $format, $expr] |
  ($format | gsub("\\{\\{ *[A-Za-z_][A-Za-z0-9_]* *\\}\\}"; "")) as $rest |
  [$format | scan("\\{\\{ *([A-Za-z_][A-Za-z0-9_]*) *\\}\\}") | .[0]] as $labels |
  select(($rest | test("[{}]")) or any($labels[]; . as $l | $expr | test("\\b" + $l + "\\b") | not)) |
  "\($where): \($format | @json)"' "$dashboard")
if [[ -n "$bad_formats" ]]; then
  echo "FAIL: malformed {{label}} placeholders, or labels the query does not have:"
  echo "$bad_formats"
  exit 1
fi

# Annotations, evaluated: pod a reloads its policy at 5m, exported as Metrics::SetPolicy does it
# (the old version's lcio_policy_info series goes away, the new one appears at 1; the "ok" reload
# counter steps from 1, the start's load, to 2); pod b never reloads. Each annotation query must
# return data just after the reload (Grafana evaluates it at every step) and none 15 minutes later.
# shellcheck disable=SC2016 # Grafana's variables again
mapfile -t annotation_exprs < <(jq -r '.annotations.list[] | select(.expr) | .expr' "$dashboard" |
  sed -e 's/\$__rate_interval/1m/g' -e 's/\$job/lcio-server/g' -e 's/\$namespace/.*/g' -e 's/\$track/.*/g' |
  awk '{ gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); print }')
if ((${#annotation_exprs[@]} > 0)); then
  echo "groups: []" >"$work/no-rules.yml"
  {
    echo "rule_files: [no-rules.yml]"
    echo "evaluation_interval: 15s"
    echo "tests:"
    echo "  - interval: 15s"
    echo "    input_series:"
    for pod in a b; do
      l="job=\"lcio-server\",namespace=\"lcio\",track=\"stable\",instance=\"$pod:9464\""
      if [[ "$pod" == a ]]; then
        echo "      - {series: 'lcio_policy_info{$l,version=\"v1\",algo=\"rc-ppo\"}', values: '1x19 stale'}"
        echo "      - {series: 'lcio_policy_info{$l,version=\"v2\",algo=\"rc-ppo\"}', values: '_x20 1x99'}"
        echo "      - {series: 'lcio_policy_reloads_total{$l,result=\"ok\"}', values: '1x19 2x99'}"
      else
        echo "      - {series: 'lcio_policy_info{$l,version=\"v1\",algo=\"rc-ppo\"}', values: '1x119'}"
        echo "      - {series: 'lcio_policy_reloads_total{$l,result=\"ok\"}', values: '1x119'}"
      fi
      echo "      - {series: 'lcio_policy_reloads_total{$l,result=\"error\"}', values: '0x119'}"
      echo "      - {series: 'lcio_policy_loaded{$l}', values: '1x119'}"
    done
    echo "    promql_expr_test:"
    for e in "${annotation_exprs[@]}"; do
      echo "      - {expr: \"count($e)\", eval_time: 5m30s, exp_samples: [{labels: '{}', value: 1}]}"
      echo "      - {expr: \"count($e)\", eval_time: 20m, exp_samples: []}"
    done
  } >"$work/annotations.test.yml"
  if ! (cd "$work" && promtool test rules annotations.test.yml); then
    echo "FAIL: a dashboard annotation does not mark a policy reload (exactly then) on the series the server exports"
    exit 1
  fi
  echo "dashboard annotations (${#annotation_exprs[@]}) mark a policy reload"
fi
echo "check_prometheus: OK"
