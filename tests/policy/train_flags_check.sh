#!/usr/bin/env bash
# Checks lcio-train's precedence rule: a flag given on the command line wins
# over the --config file, field by field, and what the command line does not
# name keeps the file's value. Reads the recorded training configuration back
# from the artifact.
# Usage: train_flags_check.sh LCIO_TRAIN LCIO_POLICY_INFO REPO_ROOT
set -euo pipefail
train=$1 info=$2 repo=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$repo"

run() {
  local out=$1
  shift
  "$train" --config policy/default_train_config.json --timesteps 256 --split none \
    --progress off --out "$out" "$@" > "$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; exit 1; }
}
expect() {  # expect ARTIFACT JQ_FILTER VALUE
  local got
  got=$("$info" "$1" | jq -c "$2")
  if [ "$got" != "$3" ]; then
    echo "$1: $2 is $got, expected $3" >&2
    exit 1
  fi
}

# The file alone: its distribution stands.
run "$tmp/file.pt"
expect "$tmp/file.pt" '.training_config.budget_distribution.fixed' '{"latency_s":30,"money_usd":0.05}'
expect "$tmp/file.pt" '.training_config.budget_distribution.extreme_share' '0.5'

# Flags on top: the named fields change, the others keep the file's values.
run "$tmp/flags.pt" --latency_budget 8 --money_budget 0.01 --budget_extreme_share 0.3 \
  --budget_dist normal --budget_high_latency 40 --seed 7
expect "$tmp/flags.pt" '.training_config.budget_distribution.fixed' '{"latency_s":8,"money_usd":0.01}'
expect "$tmp/flags.pt" '.training_config.budget_distribution.extreme_share' '0.3'
expect "$tmp/flags.pt" '.training_config.budget_distribution.kind' '"normal"'
expect "$tmp/flags.pt" '.training_config.budget_distribution.high' '{"latency_s":40,"money_usd":0.1}'
expect "$tmp/flags.pt" '.training_config.budget_distribution.low' '{"latency_s":2,"money_usd":0.002}'
expect "$tmp/flags.pt" '.training_config.seed' '7'
expect "$tmp/flags.pt" '.training_config.hyperparameters.hidden_size' '128'
# A flag given at its default value still wins: the config file says 512 steps
# and seed 7, the command line says 30000 (the default) and 1 (the default).
jq '.timesteps = 512 | .seed = 7' policy/default_train_config.json > "$tmp/short.json"
"$train" --config "$tmp/short.json" --timesteps 30000 --seed 1 --hidden_size 64 --split none \
  --progress off --out "$tmp/defaults.pt" > "$tmp/train.log" 2>&1 || { cat "$tmp/train.log"; exit 1; }
expect "$tmp/defaults.pt" '.training_config.timesteps' '30000'
expect "$tmp/defaults.pt" '.training_config.seed' '1'
expect "$tmp/defaults.pt" '.training_config.hyperparameters.hidden_size' '64'
expect "$tmp/defaults.pt" '.training_config.hyperparameters.violation_cost' '0.3'
echo "command-line flags win over the config file, field by field, even at their defaults"
# The closing evaluation scores the trained policy in-sample, and says so; Greedy
# and the exhaustive Oracle (seconds of search) only with --compare_baselines.
"$train" --timesteps 100 --progress off --out "$tmp/short.pt" > "$tmp/eval.log" 2>&1 ||
  { cat "$tmp/eval.log"; exit 1; }
grep -q "in-sample" "$tmp/eval.log" || { cat "$tmp/eval.log"; echo "evaluation not labelled in-sample"; exit 1; }
if grep -q "^| Oracle " "$tmp/eval.log"; then echo "Oracle evaluated without --compare_baselines"; exit 1; fi
"$train" --timesteps 100 --compare_baselines --progress off --out "$tmp/short.pt" > "$tmp/eval.log" 2>&1 ||
  { cat "$tmp/eval.log"; exit 1; }
grep -q "^| Oracle " "$tmp/eval.log" || { cat "$tmp/eval.log"; echo "--compare_baselines shows no Oracle"; exit 1; }
echo "the closing evaluation: in-sample, baselines on request"
