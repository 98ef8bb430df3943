#!/usr/bin/env bash
# Runs README.md's "Calling the service" commands as written, in a directory
# laid out like a clone (build/ is the build tree, reports.log in the working
# directory), against lcio-server started as tools/serve.sh starts it with
# the README's flags; only the ports (ephemeral) and the load's duration (2 s)
# differ. Then stops the server and expects a clean exit.
# Usage: readme_check.sh BUILD_DIR REPO_ROOT
set -euo pipefail
bin=$1 repo=$2
tmp=$(mktemp -d)
# shellcheck source=tests/e2e/serve_lib.sh
source "$repo/tests/e2e/serve_lib.sh"
trap 'lcio_stop_server; rm -rf "$tmp"' EXIT
fail() { echo "readme_check: $*" >&2; exit 1; }

mkdir "$tmp/clone"
cd "$tmp/clone"
ln -s "$bin" build
ln -s "$repo/policy" policy
ln -s "$repo/data" data
# The block after "## Calling the service".
# shellcheck disable=SC2016 # the backticks are literal: a Markdown fence
sed -n '/^## Calling the service/,/^## /p' "$repo/README.md" | sed -n '/^```sh$/,/^```$/p' |
  sed '1d;$d' >commands.sh
grep -q "lcio-client decide" commands.sh || fail "no commands found in README.md"
# A command of a tool that is not installed (the README marks them "if installed") is skipped.
awk '!continued && $1 !~ /^build\// && system("command -v " $1 " >/dev/null") != 0 {
       print "# skipped (not installed): " $0; continued = /\\$/; next }
     { print; continued = /\\$/ }' commands.sh >commands.run
mv commands.run commands.sh

lcio_start_server build/server/lcio-server "$tmp/server.log" --policy=policy/default_policy.pt \
  --report_log=reports.log --metrics_listen=127.0.0.1:0
metrics=$(sed -n 's/.*"event":"server_started".*"metrics_port":\([0-9]*\).*/\1/p' "$tmp/server.log")
[[ -n "$metrics" ]] || fail "no metrics port in the server's log"
sed -i -e "s/127\.0\.0\.1:50051/127.0.0.1:$LCIO_PORT/g" -e "s/127\.0\.0\.1:9464/127.0.0.1:$metrics/g" \
  -e "s/--duration_s=10/--duration_s=2/" commands.sh
bash -euo pipefail commands.sh >"$tmp/out.txt" 2>&1 || { cat "$tmp/out.txt"; fail "a command failed"; }
[[ $(jq length traffic.json) == 1 ]] || fail "traffic.json: not 1 episode"
# What the README says of the decision and the Report's scale.
grep -q '^ "action": 1,$' "$tmp/out.txt" || { cat "$tmp/out.txt"; fail "the README says Decide answers action 1"; }
jq -e '.[0].interactions[0].score | . >= 0 and . <= 9' traffic.json >/dev/null ||
  fail "the README's Report score is outside M4A1's 0-9 scale"
kill -TERM "$LCIO_PID"
wait "$LCIO_PID" || fail "lcio-server exited with $? on SIGTERM"
LCIO_PID=""
echo "readme_check: README commands work as written"
