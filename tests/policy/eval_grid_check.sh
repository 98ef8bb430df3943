#!/usr/bin/env bash
# tools/eval_grid.sh end to end on a 2 x 2 grid: one worst-case row per cell
# and method (the task rule and its bound in hindsight among them), the
# margins drawn when gnuplot is
# installed, and a usage error without an output folder. Then per-split
# policies: trained and saved by lcio-eval --save_policies, evaluated in
# every cell with GRID_POLICY, counted as held out, a swapped split refused.
# Usage: eval_grid_check.sh BUILD_DIR REPO_ROOT
set -euo pipefail
build=$1 repo=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$repo"
bash tools/eval_grid.sh > /dev/null 2>&1 && { echo "no output folder must be a usage error"; exit 1; }
LCIO_BUILD_DIR=$build GRID_DEVICES="Jetson TX2;Raspberry Pi-4B" GRID_NETWORKS="Wired;4G" \
  bash tools/eval_grid.sh "$tmp/grid" --splits=2 --fixed=false --task_rule \
  2> "$tmp/err" || { cat "$tmp/err"; exit 1; }
rows=$(awk -F'\t' 'NR > 1 && $3 == "Task rule"' "$tmp/grid/worst_case.tsv" | wc -l)
[[ $rows == 4 ]] || { echo "expected 4 task rule rows, got $rows"; cat "$tmp/grid/worst_case.tsv"; exit 1; }
awk -F'\t' 'NR > 1 && !($4 ~ /^(held_out|cross_fit|task_action)$/) { bad = 1 } END { exit bad }' \
  "$tmp/grid/worst_case.tsv" || { echo "a worst case under a scorer that is not held out"; exit 1; }
# Greedy against itself: every paired difference is zero.
awk -F'\t' 'NR > 1 && $3 == "Greedy" { n++; if ($5 != 0) bad = 1 } END { exit bad || n != 4 }' \
  "$tmp/grid/vs_greedy.tsv" || { echo "margins over Greedy are not paired"; cat "$tmp/grid/vs_greedy.tsv"; exit 1; }
[[ $(awk -F'\t' 'NR > 1 && $3 == "Task rule"' "$tmp/grid/vs_greedy.tsv" | wc -l) == 4 ]] ||
  { echo "task rule rows missing from vs_greedy.tsv"; exit 1; }
# The task rule in hindsight: a worst-case row per cell, marked as hindsight,
# never drawn by default (the picture is the last candidate's).
grep -qx "eval_grid: GRID_METHOD Task rule" "$tmp/err" ||
  { echo "the method drawn must be the last candidate, the task rule"; cat "$tmp/err"; exit 1; }
rows=$(awk -F'\t' 'NR > 1 && $3 == "Task rule (hindsight)"' "$tmp/grid/worst_case.tsv" | wc -l)
[[ $rows == 4 ]] || { echo "expected 4 task rule in hindsight rows, got $rows"; exit 1; }
[[ $(jq -r '.worst_case[] | select(.name == "Task rule (hindsight)") | .role' "$tmp/grid/Jetson_TX2__Wired.json") == hindsight &&
   $(jq -r '.worst_case[] | select(.name == "Task rule") | .role' "$tmp/grid/Jetson_TX2__Wired.json") == candidate ]] ||
  { echo "worst-case roles missing"; exit 1; }
# The 4G cells differ from the Wired ones: the profile reached lcio-eval.
[[ $(jq -r .settings.network "$tmp/grid/Jetson_TX2__4G.json") == 4G ]] || { echo "network not passed"; exit 1; }
if command -v gnuplot > /dev/null; then
  [[ -s "$tmp/grid/margin.png" ]] || { echo "margin.png missing"; exit 1; }
  [[ $(wc -l < "$tmp/grid/margin.dat") == 2 ]] || { echo "margin.dat must have a row per device"; exit 1; }
  drawn=$(awk 'NR == 1 { print $1 }' "$tmp/grid/margin.dat")
  want=$(awk -F'\t' '$1 == "Jetson TX2" && $2 == "Wired" && $3 == "Task rule" { printf "%.3f", $5 }' "$tmp/grid/vs_greedy.tsv")
  [[ $drawn == "$want" ]] || { echo "margin.png must draw the task rule: $drawn against $want"; exit 1; }
fi

# Per-split policies, trained once on each split's training side.
eval_bin=$build/tools/lcio-eval
"$eval_bin" --algos=rc-ppo --timesteps=2000 --splits=2 --fixed=false --shield=on \
  --save_policies="$tmp/p" --format=json --json_out="$tmp/train.json" > /dev/null 2> "$tmp/err" ||
  { cat "$tmp/err"; exit 1; }
[[ -s $tmp/p/rc-ppo_split1.pt && -s $tmp/p/rc-ppo_split2.pt ]] || { echo "--save_policies wrote no artifacts"; ls "$tmp/p"; exit 1; }
name='rc-ppo_split{split}'
LCIO_BUILD_DIR=$build GRID_DEVICES="Jetson TX2" GRID_NETWORKS="Wired;4G" GRID_POLICY="$tmp/p/$name.pt" \
  bash tools/eval_grid.sh "$tmp/policy" --splits=2 --fixed=false --shield=on 2> "$tmp/err" ||
  { cat "$tmp/err"; exit 1; }
for f in worst_case vs_greedy overrides; do
  [[ $(awk -F'\t' -v m="$name" 'NR > 1 && $3 == m' "$tmp/policy/$f.tsv" | wc -l) == 2 ]] ||
    { echo "$f.tsv: expected a $name row per cell"; cat "$tmp/policy/$f.tsv"; exit 1; }
done
[[ $(awk -F'\t' -v m="$name" 'NR > 1 && $5 == m && $7 > 0' "$tmp/policy/per_scorer.tsv" | wc -l) == 8 ]] ||
  { echo "per_scorer.tsv: expected $name under 4 scorers x 2 cells"; cat "$tmp/policy/per_scorer.tsv"; exit 1; }
cell=$tmp/policy/Jetson_TX2__Wired.json
[[ $(jq -r --arg m "$name" '.settings.decision_makers[] | select(.name == $m) | .held_out' "$cell") == true ]] ||
  { echo "a verified per-split artifact must be held out"; jq .settings "$cell"; exit 1; }
# The saved artifacts decide as the networks trained in memory did.
trained=$(jq -r '.worst_case[] | select(.name == "rc-ppo") | .reward' "$tmp/train.json")
loaded=$(jq -r --arg m "$name" '.worst_case[] | select(.name == $m) | .reward' "$cell")
[[ -n $trained && $trained == "$loaded" ]] || { echo "saved policies score $loaded, trained ones $trained"; exit 1; }
# tools/grid_pool.sh: one folder gives eval_grid's own worst case and margin
# over Greedy; a seed pooled with itself gives the same margins.
bash tools/grid_pool.sh "$tmp/pool1" "$name" "$tmp/policy" 2> /dev/null
bash tools/grid_pool.sh "$tmp/pool2" "$name" "$tmp/policy" "$tmp/policy" 2> /dev/null
[[ $(wc -l < "$tmp/pool1.tsv") == 3 ]] || { echo "grid_pool: expected a header and 2 cells"; cat "$tmp/pool1.tsv"; exit 1; }
pooled=$(awk -F'\t' 'NR > 1 { print $1, $2, $3, $7, $9, $11 }' "$tmp/pool1.tsv" | sort)
own=$(join -t'|' <(awk -F'\t' -v m="$name" 'NR > 1 && $3 == m { print $1 " " $2 "|" $4 " " $6 " " $9 }' "$tmp/policy/worst_case.tsv" | sort) \
  <(awk -F'\t' -v m="$name" 'NR > 1 && $3 == m { print $1 " " $2 "|" $5 }' "$tmp/policy/vs_greedy.tsv" | sort) | tr '|' ' ')
[[ "$pooled" == "$own" ]] || { echo "grid_pool differs from eval_grid:"; echo "$pooled"; echo "$own"; exit 1; }
cmp <(cut -f1-12 "$tmp/pool1.tsv") <(cut -f1-12 "$tmp/pool2.tsv") ||
  { echo "a seed pooled with itself must give the same margins"; exit 1; }
# Another budget into the same folder is refused (one OUT_DIR per budget).
LCIO_BUILD_DIR=$build GRID_DEVICES="Jetson TX2" GRID_NETWORKS="Wired;4G" GRID_POLICY="$tmp/p/$name.pt" \
  bash tools/eval_grid.sh "$tmp/policy" --splits=2 --fixed=false --shield=on --latency_budget=8 \
  > /dev/null 2>&1 && { echo "a second budget in one OUT_DIR must be refused"; exit 1; }
# Split 1's artifact offered as split 2's (and the reverse) is refused.
mkdir "$tmp/swap"
cp "$tmp/p/rc-ppo_split1.pt" "$tmp/swap/rc-ppo_split2.pt"
cp "$tmp/p/rc-ppo_split2.pt" "$tmp/swap/rc-ppo_split1.pt"
"$eval_bin" --policy="$tmp/swap/$name.pt" --splits=2 --fixed=false --shield=on > /dev/null 2> "$tmp/err" &&
  { echo "a swapped split must be refused"; exit 1; }
grep -q "training_split is split seed 2 .* but expected the training side of split seed 1" "$tmp/err" ||
  { echo "unclear refusal:"; cat "$tmp/err"; exit 1; }
# Without {split} nothing changes: trained on this data set, not held out.
plain=$("$eval_bin" --policy="$tmp/p/rc-ppo_split1.pt" --splits=2 --fixed=false --shield=on --format=json)
[[ $(jq '[.settings.decision_makers[] | select(.held_out == false)] | length' <<<"$plain") == 1 ]] ||
  { echo "a plain artifact path must stay not held out"; exit 1; }
echo "eval_grid: OK"
