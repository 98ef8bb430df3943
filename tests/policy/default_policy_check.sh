#!/usr/bin/env bash
# Checks that the command documented in docs/training.md reproduces an
# artifact of the same format as the shipped policy/default_policy.pt: same
# format and layout version, algorithm, observation layout, action table,
# tasks, views, network shape, cost profile and training data.
# Usage: default_policy_check.sh LCIO_TRAIN LCIO_POLICY_INFO REPO_ROOT
set -euo pipefail
train=$1 info=$2 repo=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$repo"
test -s policy/default_policy.pt || { echo "policy/default_policy.pt is missing"; exit 1; }
# Its fallback table in one line, with the entries' count.
"$info" policy/default_policy.pt |
  jq -e '(.fallback.entries | length) as $n | (.fallback_summary | startswith("policy in ")) and
         (.fallback_summary | contains(" of \($n) cells"))' >/dev/null ||
  { echo "lcio-policy-info: no fallback_summary matching the table"; exit 1; }

# The documented command, writing to a temporary file instead of the repository.
"$train" --config policy/default_train_config.json --algo rc-ppo --timesteps 600000 \
  --split none --seed 1 --response_model=pessimistic --out "$tmp/policy.pt" \
  > "$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; exit 1; }

format='{format, format_version, algo, actions, tasks, view_names, data_sha256,
         cost_profile, reference_budget, reward_weights,
         observation: (.observation | del(.feature_names)),
         network: {activation: .network.activation, layer_sizes: .network.layer_sizes},
         hyperparameters: .training_config.hyperparameters,
         response_model: .training_config.simulator.response_model,
         training_profiles: .training_config.training_profiles}'
"$info" policy/default_policy.pt | jq -S "$format" > "$tmp/shipped.json"
"$info" "$tmp/policy.pt" | jq -S "$format" > "$tmp/fresh.json"
if ! diff -u "$tmp/shipped.json" "$tmp/fresh.json"; then
  echo "the documented command no longer reproduces the shipped policy's format" >&2
  exit 1
fi
shipped=$("$info" policy/default_policy.pt | jq -r .policy_version)
fresh=$("$info" "$tmp/policy.pt" | jq -r .policy_version)
echo "format identical; shipped version $shipped, rebuilt version $fresh"
