#!/usr/bin/env bash
# docs/benchmarks.md quotes pooled serve_bench figures beside the
# bench/pool_rounds.py command that pools the runs kept in bench/runs/. This
# runs the same pooling over the same files and expects each figure, over the
# number of rounds the runs hold (a run lost or added changes it), and the
# figure still quoted in the docs.
#   check_pooled_figures.sh SOURCE_DIR [PYTHON3]
set -euo pipefail
src="${1:?usage: check_pooled_figures.sh SOURCE_DIR [PYTHON3]}"
python=${2:-python3}
cd "$src"
fail=0
docs=$(sed 's/\*\*//g' docs/benchmarks.md)  # the docs may set a median in bold
expect() {  # expect ROUNDS "FIGURE" FILES...: the pooled concurrency-32 row
  local rounds=$1 figure=$2
  shift 2
  local row
  row=$("$python" bench/pool_rounds.py "$@" | grep '^| 32 |') || row="(no row for concurrency 32)"
  if [[ $row != "| 32 | $rounds | $figure |"* ]]; then
    echo "FAIL: bench/pool_rounds.py $*: expected $rounds rounds, $figure at concurrency 32; got: $row"
    fail=1
  fi
  grep -qF -- "$figure" <<<"$docs" || { echo "FAIL: docs/benchmarks.md no longer quotes $figure"; fail=1; }
}
runs=bench/runs/2026-12-03
expect 26 "0.80 [0.70-0.98]" $runs/afternoon-default-*.txt
expect 21 "0.79 [0.64-1.32]" $runs/afternoon-final-*.txt
expect 35 "0.79 [0.59-1.32]" $runs/evening-lineclassifier-*.txt $runs/evening-final-*.txt
expect 21 "0.78 [0.59-1.32]" $runs/evening-final-*.txt
[[ $fail == 0 ]] && echo "check_pooled_figures: the quoted pooled figures come from the kept runs"
exit $fail
