#!/usr/bin/env bash
# N views end to end, with 4: synth -> train -> policy-info -> serve -> decide
# -> eval, with the documented 4-view profiles file (docs/profiles.md). Also:
# the built-in 3-view tables fail with a message naming the fix.
# Usage: n_views_check.sh BIN_DIR REPO_ROOT   (BIN_DIR: the build directory)
set -euo pipefail
bin=$1 repo=$2
tmp=$(mktemp -d)
# shellcheck source=tests/e2e/serve_lib.sh
source "$repo/tests/e2e/serve_lib.sh"
trap 'lcio_stop_server; rm -rf "$tmp"' EXIT
fail() { echo "n_views_check: $*" >&2; exit 1; }
profiles=$repo/examples/profiles_4views.json

"$bin/data/lcio-synth" --views=4 --episodes=30 --seed=3 --out="$tmp/d4.json"

# Built-in profiles: a clear refusal pointing at the profiles documentation.
if "$bin/tools/lcio-train" --data "$tmp/d4.json" --timesteps 64 --split none --progress off \
  --out "$tmp/bad.pt" 2>"$tmp/bad.log"; then
  fail "training 4-view data with the 3-view built-in profiles succeeded"
fi
grep -q "docs/profiles.md" "$tmp/bad.log" || { cat "$tmp/bad.log"; fail "no pointer to docs/profiles.md"; }

"$bin/tools/lcio-train" --data "$tmp/d4.json" --profiles "$profiles" --timesteps 512 \
  --progress off --out "$tmp/p4.pt" >"$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; fail "train"; }

"$bin/tools/lcio-policy-info" "$tmp/p4.pt" >"$tmp/info.json"
[[ $(jq '.view_names | length' "$tmp/info.json") == 4 ]] || fail "policy-info: not 4 views"
[[ $(jq '.actions.num_actions' "$tmp/info.json") == 17 ]] || fail "policy-info: not 17 actions"

lcio_start_server "$bin/server/lcio-server" "$tmp/server.log" --policy="$tmp/p4.pt"
target=127.0.0.1:$LCIO_PORT
"$bin/client/lcio-client" policy --target="$target" >"$tmp/policy.json"
[[ $(jq '.view_names | length' "$tmp/policy.json") == 4 ]] || { cat "$tmp/policy.json"; fail "GetPolicy"; }
for turn in 0 1 2; do
  "$bin/client/lcio-client" decide --target="$target" --conversation=four --turn=$turn \
    --prompt="Which view shows the door? ($turn)" --association=0.1,0.2,0.3,0.9 \
    --latency_budget=30 --money_budget=0.05 --explain >"$tmp/decide$turn.json" ||
    { cat "$tmp/decide$turn.json"; fail "decide turn $turn"; }
  [[ $(jq '.scores | length' "$tmp/decide$turn.json") == 17 ]] || fail "decide: not 17 scores"
done
# Every view of another count is refused, naming the rule.
if "$bin/client/lcio-client" decide --target="$target" --conversation=three --turn=0 \
  --prompt="three views" --association=0.1,0.2,0.3 >"$tmp/three.json" 2>&1; then
  fail "a 3-view request to a 4-view policy was decided"
fi
lcio_stop_server

# lcio-eval costs the artifact with the profiles it carries (no --profiles).
"$bin/tools/lcio-eval" --data "$tmp/d4.json" --policy "$tmp/p4.pt" --splits 1 --format json \
  >"$tmp/eval.json" 2>"$tmp/eval.log" || { cat "$tmp/eval.log"; fail "eval --policy"; }
jq -e '[.scorers[].methods[].name | select(startswith("rc-ppo"))] | length > 0' "$tmp/eval.json" \
  >/dev/null ||
  fail "eval: the artifact's row is missing"
echo "n_views_check: 4 views work end to end"
