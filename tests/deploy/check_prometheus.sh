#!/usr/bin/env bash
# promtool on deploy/prometheus: the rules and the scrape configuration parse and are valid, the
# rule unit tests pass, every alert has a test that expects it to fire, and every query of the
# Grafana dashboard is valid PromQL (checked by promtool as recording rules, variables filled in).
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
echo "check_prometheus: OK"
