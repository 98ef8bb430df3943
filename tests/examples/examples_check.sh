#!/usr/bin/env bash
# Runs examples/ against a real lcio-server: the Python conversation, the
# request JSON with lcio-client, and the Report -> merge -> retrain -> publish
# script, ending with the server serving the retrained policy.
# Usage: examples_check.sh BUILD_DIR REPO_ROOT PYTHONPATH PYTHON3
set -euo pipefail
bin=$1 repo=$2 pythonpath=$3 python=$4
tmp=$(mktemp -d)
# shellcheck source=tests/e2e/serve_lib.sh
source "$repo/tests/e2e/serve_lib.sh"
trap 'lcio_stop_server; rm -rf "$tmp"' EXIT
fail() { echo "examples_check: $*" >&2; exit 1; }
version() { "$bin/client/lcio-client" policy --target="$target" | jq -r .policy_version; }

# The servers' policy directory, seeded with the shipped policy.
LCIO_POLICY_INFO=$bin/tools/lcio-policy-info "$repo/deploy/docker/publish-policy.sh" --if-absent "$repo/policy/default_policy.pt" "$tmp/policies"
lcio_start_server "$bin/server/lcio-server" "$tmp/server.log" \
  --policy="$tmp/policies/policy.pt" --report_log="$tmp/reports.log" --report_min_free_mb=0 \
  --watch_interval_ms=200
target=127.0.0.1:$LCIO_PORT
before=$(version)

# A multi-turn conversation in Python (reports every turn).
PYTHONPATH=$pythonpath "$python" "$repo/examples/python/conversation.py" "$target" py-1 \
  >"$tmp/python.txt" || { cat "$tmp/python.txt"; fail "python conversation"; }
[[ $(grep -c ", reported$" "$tmp/python.txt") == 3 ]] || { cat "$tmp/python.txt"; fail "3 reported turns"; }

# The request JSON, as docs/api.md shows it.
"$bin/client/lcio-client" decide --target="$target" --json "$repo/examples/request.json" \
  >"$tmp/decide.json" || { cat "$tmp/decide.json"; fail "request.json"; }
jq -e '.decision_id and (.scores | length == 9)' "$tmp/decide.json" >/dev/null || fail "decision"

# Report -> merge -> retrain -> publish; the running server reloads it.
LCIO_WORK=$tmp/work "$repo/examples/retrain_from_reports.sh" "$tmp/reports.log" "$tmp/policies" \
  --timesteps 256 --progress off >"$tmp/retrain.log" 2>&1 || { cat "$tmp/retrain.log"; fail "retrain"; }
jq -e '.base_episodes == 100 and .episodes == 1 and .turns == 3' "$tmp/work/export.json" \
  >/dev/null || { cat "$tmp/work/export.json"; fail "merge"; }
[[ $(jq length "$tmp/work/train.json") == 101 ]] || fail "merged data: not 101 episodes"
deadline=$((SECONDS + 60))
until [[ "$(version)" != "$before" ]]; do
  ((SECONDS < deadline)) || { cat "$tmp/server.log"; fail "the server did not reload"; }
  sleep 0.2
done

# Run as the docs show it (no id), twice: each run is a new
# conversation (a fixed id's turn 0 was refused the second time).
for run in 1 2; do
  PYTHONPATH=$pythonpath "$python" "$repo/examples/python/conversation.py" "$target" \
    >"$tmp/python-$run.txt" 2>&1 || { cat "$tmp/python-$run.txt"; fail "python conversation, run $run"; }
done

# The installed Python package lands where the interpreter looks under the prefix
# (it went to lib/python3/dist-packages, which Debian's python3 never searches), and
# the conversation runs from there alone.
cmake --install "$bin" --component python --prefix "$tmp/py" >"$tmp/py-install.log"
site=$("$python" -c 'import site; print(next(p[len("/usr/local/"):] for p in site.getsitepackages()
                                             if p.startswith("/usr/local/lib/")))')
[[ -f "$tmp/py/$site/lcio_client/__init__.py" && -d "$tmp/py/$site/lcio/v1" ]] ||
  { cat "$tmp/py-install.log"; fail "the Python package is not in $site under the prefix"; }
PYTHONPATH=$tmp/py/$site "$python" "$repo/examples/python/conversation.py" "$target" py-installed \
  >"$tmp/python-installed.txt" || { cat "$tmp/python-installed.txt"; fail "installed package"; }

echo "examples_check: conversation, request.json, retraining from Reports and the installed Python package work"
