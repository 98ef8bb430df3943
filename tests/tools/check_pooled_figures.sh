#!/usr/bin/env bash
# docs/benchmarks.md quotes pooled serve_bench figures beside the
# bench/pool_rounds.py command that pools the runs kept in bench/runs/. This
# runs the same pooling over the same files and expects each figure, over the
# number of rounds the runs hold (a run lost or added changes it), and the
# figure still quoted in the docs within a few lines of every file pattern
# it was pooled from (so a figure cannot drift away from its command).
#   check_pooled_figures.sh SOURCE_DIR [PYTHON3]
set -euo pipefail
src="${1:?usage: check_pooled_figures.sh SOURCE_DIR [PYTHON3]}"
python=${2:-python3}
cd "$src"
fail=0
docs=$(sed 's/\*\*//g' docs/benchmarks.md)  # the docs may set a median in bold
near=8  # lines between a quoted figure and its command's file patterns
# expect ROUNDS "FIGURE" PATTERN...: the pooled concurrency-32 row of the
# files the patterns name, and the figure quoted near each pattern as written.
expect() {
  local rounds=$1 figure=$2
  shift 2
  local files=() pattern row
  for pattern in "$@"; do
    # shellcheck disable=SC2206  # the pattern is a glob, expanded on purpose
    files+=($pattern)
  done
  row=$("$python" bench/pool_rounds.py "${files[@]}" | grep '^| 32 |') || row="(no row for concurrency 32)"
  if [[ $row != "| 32 | $rounds | $figure |"* ]]; then
    echo "FAIL: bench/pool_rounds.py $*: expected $rounds rounds, $figure at concurrency 32; got: $row"
    fail=1
  fi
  grep -qF -- "$figure" <<<"$docs" || { echo "FAIL: docs/benchmarks.md no longer quotes $figure"; fail=1; return; }
  for pattern in "$@"; do
    awk -v f="$figure" -v p="$pattern" -v near="$near" '
      index($0, f) { fig[NR] = 1 } index($0, p) { pat[NR] = 1 }
      END { for (i in fig) for (j in pat) if (i - j <= near && j - i <= near) found = 1; exit !found }' \
      <<<"$docs" || { echo "FAIL: docs/benchmarks.md quotes $figure more than $near lines from $pattern"; fail=1; }
  done
}
runs=bench/runs/2026-12-03
expect 26 "0.80 [0.70-0.98]" "$runs/afternoon-default-*.txt"
expect 21 "0.79 [0.64-1.32]" "$runs/afternoon-final-*.txt"
expect 35 "0.79 [0.59-1.32]" "$runs/evening-lineclassifier-*.txt" "$runs/evening-final-*.txt"
expect 21 "0.78 [0.59-1.32]" "$runs/evening-final-*.txt"
runs=bench/runs/2026-12-04
expect 21 "0.83 [0.78-0.88]" "$runs/anchored-default-*.txt"
expect 14 "0.76 [0.68-0.79]" "$runs/network128-*.txt"
expect 14 "1.03 [1.00-1.13]" "$runs/inline-vs-batched-network128-*.txt"
expect 7 "1.04 [1.01-1.06]" "$runs/tcmalloc-vs-system-network128.txt"
expect 14 "0.79 [0.76-0.84]" "$runs/inline-network128-*.txt"
expect 14 "0.82 [0.80-0.87]" "$runs/tcmalloc-network128-*.txt"
expect 14 "0.86 [0.82-0.89]" "$runs/tcmalloc-default-*.txt"
[[ $fail == 0 ]] && echo "check_pooled_figures: the quoted pooled figures come from the kept runs"
exit $fail
