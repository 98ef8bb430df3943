#!/usr/bin/env python3
"""Pools bench/serve_bench.sh runs: the per-round lcio / no-op ratios of QPS
and p99 differences of every round of every file given, per concurrency,
as a median [min-max]. A single run of 5-7 rounds on a shared 2-core machine
moves by more than the changes it is meant to judge; pooled rounds of
several runs of the same two builds say more.

  bench/serve_bench.sh ... | tee run1.txt      # (twice or more)
  bench/pool_rounds.py run1.txt run2.txt ...

Reads the JSON lines serve_bench prints (other lines are skipped); a round
counts when both servers answered at that concurrency in it.
"""
import json
import statistics
import sys


def rounds(paths):
    """(concurrency, file, round) -> {server: row}."""
    by = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                by.setdefault((r["concurrency"], path, r["round"]), {})[r["server"]] = r
    return by


def main(paths):
    if not paths:
        sys.exit(__doc__)
    by = rounds(paths)
    print(f"per-round medians [min-max] pooled over {len(paths)} run(s)")
    print("| concurrency | rounds | QPS ratio lcio / no-op | p99 difference, us |")
    print("|---|---|---|---|")
    for c in sorted({k[0] for k in by}):
        pairs = [v for k, v in sorted(by.items()) if k[0] == c and "lcio" in v and "noop" in v]
        if not pairs:
            continue
        ratio = [p["lcio"]["qps"] / p["noop"]["qps"] for p in pairs]
        p99 = [p["lcio"]["p99_us"] - p["noop"]["p99_us"] for p in pairs]
        print(f"| {c} | {len(pairs)} | {statistics.median(ratio):.2f} "
              f"[{min(ratio):.2f}-{max(ratio):.2f}] | {statistics.median(p99):+.0f} "
              f"[{min(p99):+.0f} to {max(p99):+.0f}] |")


if __name__ == "__main__":
    main(sys.argv[1:])
