#!/usr/bin/env bash
# lcio-eval's protocol end to end: every scorer reported, in_sample labelled as
# such, a trained candidate in the worst case over the held-out scorers only,
# Greedy both as a baseline and as a clairvoyant bound, and bad scorer names refused.
# Usage: eval_protocol_check.sh LCIO_EVAL REPO_ROOT
set -euo pipefail
eval_bin=$1 repo=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$repo"
"$eval_bin" --splits=2 --fixed=false --shield=on --algos=rc-ppo --timesteps=2048 \
  --format=json > "$tmp/report.json"
jq -e '.settings | [.splits, .split_seed, .test_ratio, .seed, .shield] == [2, 1, 0.2, 1, "on"]' \
  "$tmp/report.json" > /dev/null || { echo "settings must say how to run it again"; exit 1; }
jq -e '[.scorers[].scorer] == ["in_sample", "held_out", "cross_fit", "task_action"]' \
  "$tmp/report.json" > /dev/null || { echo "scorers missing"; exit 1; }
jq -e '[.scorers[] | select(.scorer == "in_sample") | .held_out] == [false]' \
  "$tmp/report.json" > /dev/null || { echo "in_sample must not count as held out"; exit 1; }
jq -e '[.worst_case[] | select(.name == "rc-ppo") | .scorer] | length == 1 and
       (.[0] | IN("held_out", "cross_fit", "task_action"))' "$tmp/report.json" > /dev/null ||
  { echo "rc-ppo has no worst case over the held-out scorers"; exit 1; }
jq -e '[.worst_case[].name] | index("Oracle") == null and index("Greedy (clairvoyant)") == null' \
  "$tmp/report.json" > /dev/null || { echo "bounds must not be ranked"; exit 1; }
jq -e '[.scorers[] | select(.scorer == "held_out") | .methods[].name] |
       index("Greedy") != null and index("Greedy (clairvoyant)") != null' \
  "$tmp/report.json" > /dev/null || { echo "Greedy needs both rows"; exit 1; }
jq -e '.scorers[] | select(.scorer == "held_out") | .methods[] | select(.name == "rc-ppo") |
       (.reward_by_split | length) == 2' "$tmp/report.json" > /dev/null ||
  { echo "per-split rewards missing"; exit 1; }
jq -e '[.worst_case[].has_oracle] | all' "$tmp/report.json" > /dev/null ||
  { echo "worst-case rows of a run with the Oracle must say so"; exit 1; }
# The Oracle is a bound within the budgets: never shielded, whose reserve of
# cheap turns overruled 14 of its plans at WiFi / 1 s and lowered it.
"$eval_bin" --splits=10 --network=WiFi --latency_budget=1 --scorers=held_out --fixed=false \
  --shield=on --format=json > "$tmp/oracle.json"
jq -e '[.scorers[].methods[] | select(.name == "Oracle") | [.shield, .shield_overrides]] ==
       [[false, 0]]' "$tmp/oracle.json" > /dev/null ||
  { echo "the Oracle must run unshielded"; exit 1; }
# Without the Oracle no row claims a share of it: has_oracle false, '-' in Markdown.
"$eval_bin" --splits=1 --fixed=false --oracle=false --format=json > "$tmp/no_oracle.json"
jq -e '[.worst_case[].has_oracle] | length > 0 and (any | not)' "$tmp/no_oracle.json" > /dev/null ||
  { echo "has_oracle must be false without the Oracle"; exit 1; }
# An artifact trained on the evaluated data (the shipped policy on M4A1) has seen
# the test episodes: its rows are shown with role "not held out", never ranked.
"$eval_bin" --splits=1 --fixed=false --oracle=false --shield=on --policy=policy/default_policy.pt \
  --format=json > "$tmp/seen.json"
jq -e '[.scorers[] | select(.scorer == "held_out") | .methods[] | select(.name | startswith("rc-ppo"))
       | .role] == ["not held out"]' "$tmp/seen.json" > /dev/null ||
  { echo "the artifact's row is missing or not marked not held out"; exit 1; }
jq -e '[.worst_case[] | select(.name | startswith("rc-ppo"))] | length == 0' "$tmp/seen.json" \
  > /dev/null || { echo "an artifact that saw the test episodes was given a verdict"; exit 1; }
"$eval_bin" --splits=1 --fixed=false --oracle=false > "$tmp/no_oracle.md"
grep -q '^| Local | baseline | on | [a-z_]* | [0-9.]* | - |' "$tmp/no_oracle.md" ||
  { cat "$tmp/no_oracle.md"; exit 1; }
"$eval_bin" --splits=2 --scorers=in_sample,nonsense > "$tmp/out" 2> "$tmp/err" && exit 1
grep -q 'scorer "nonsense" is not one of' "$tmp/err" || { cat "$tmp/err"; exit 1; }
"$eval_bin" --splits=3 --model_validity > "$tmp/validity.md"
grep -q '^| task x action means (task_action) |' "$tmp/validity.md" || { cat "$tmp/validity.md"; exit 1; }
# The same table as JSON, on stdout and in --json_out alike.
"$eval_bin" --splits=3 --model_validity --format=json --json_out="$tmp/validity.json" > "$tmp/validity.stdout"
cmp "$tmp/validity.stdout" "$tmp/validity.json" || { echo "--json_out differs from stdout"; exit 1; }
jq -e '.splits == 3 and ([.model_validity[].family] == ["knn", "task_action"]) and
       (.model_validity[1].rmse.mean < .model_validity[1].rmse_of_training_mean.mean)' \
  "$tmp/validity.json" > /dev/null || { cat "$tmp/validity.json"; exit 1; }
# An output that cannot be replaced whole is refused before any work.
"$eval_bin" --splits=1 --json_out=/dev/null > "$tmp/out" 2> "$tmp/err" && exit 1
grep -q -- '--json_out: output /dev/null is a character device' "$tmp/err" || { cat "$tmp/err"; exit 1; }
# The shipped artifact was trained on every episode: flagged as not held out.
"$eval_bin" --policy=policy/default_policy.pt --splits=1 --scorers=held_out --fixed=false \
  --oracle=false > "$tmp/artifact.md"
grep -q '^Note: rc-ppo-[0-9a-f]* was trained on this data set' "$tmp/artifact.md" ||
  { cat "$tmp/artifact.md"; exit 1; }
# --train_seed given at its default value wins over --train_config's seed: the
# same figures as a file that says seed 1 itself.
jq '.seed = 7' policy/default_train_config.json > "$tmp/seed7.json"
jq '.seed = 1' policy/default_train_config.json > "$tmp/seed1.json"
candidate() {  # candidate CONFIG [FLAGS...]: rc-ppo's held-out rewards per split
  "$eval_bin" --splits=1 --scorers=held_out --fixed=false --oracle=false --shield=off \
    --algos=rc-ppo --timesteps=1024 --train_config "$@" --format=json |
    jq -c '.scorers[0].methods[] | select(.name == "rc-ppo") | .reward_by_split'
}
flag=$(candidate "$tmp/seed7.json" --train_seed=1)
file=$(candidate "$tmp/seed1.json")
other=$(candidate "$tmp/seed7.json")
[ "$flag" = "$file" ] || { echo "--train_seed=1 lost to the config file: $flag vs $file"; exit 1; }
[ "$flag" != "$other" ] || { echo "seeds 1 and 7 trained the same policy: the check proves nothing"; exit 1; }
echo "eval protocol: ok"
