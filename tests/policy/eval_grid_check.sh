#!/usr/bin/env bash
# tools/eval_grid.sh end to end on a 2 x 2 grid: one worst-case row per cell
# and method (the task rule among them), the margins drawn when gnuplot is
# installed, and a usage error without an output folder.
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
# The 4G cells differ from the Wired ones: the profile reached lcio-eval.
[[ $(jq -r .settings.network "$tmp/grid/Jetson_TX2__4G.json") == 4G ]] || { echo "network not passed"; exit 1; }
if command -v gnuplot > /dev/null; then
  [[ -s "$tmp/grid/margin.png" ]] || { echo "margin.png missing"; exit 1; }
  [[ $(wc -l < "$tmp/grid/margin.dat") == 2 ]] || { echo "margin.dat must have a row per device"; exit 1; }
fi
echo "eval_grid: OK"
