#!/usr/bin/env python3
"""Test-side arithmetic behind docs/experiments.md section 6 ("mixed fallback"): per cell of the
default-budget grid, the worst case over the held-out scorers of the margin over the best baseline
(Local, every fixed action, Greedy) for the best single fixed action, for the best mixture of two
fixed actions (weights on a 0.01 grid), and for the evaluated policy, averaged over seeds.

  python3 docs/experiments/mixed_fallback_estimate.py GRID_DIR [POLICY_ROW]

GRID_DIR holds grid_defaults_seed{1,2,3}/ as tools/eval_grid.sh writes them (with --fixed=true);
POLICY_ROW defaults to 'rc-ppo_split{split}'. Chosen on the test side, so an upper bound on what a
training-side choice can reach."""
import glob
import itertools
import json
import os
import statistics
import sys


def cell_margins(path, policy_row):
    d = json.load(open(path))
    rewards, best, policy = {}, {}, {}
    for s in d["scorers"]:
        if not s["held_out"]:
            continue
        ms = {m["name"]: m["reward"] for m in s["methods"]}
        baselines = [n for n in ms if n.startswith("Fixed") or n in ("Local", "Greedy")]
        best[s["scorer"]] = max(ms[n] for n in baselines)
        fixed = sorted((n for n in ms if n.startswith("Fixed")), key=lambda n: int(n.split()[1]))
        rewards[s["scorer"]] = [ms[n] for n in fixed]
        policy[s["scorer"]] = ms[policy_row]
    scorers = list(rewards)
    n = len(next(iter(rewards.values())))

    def worst(weights):
        return min(sum(w * rewards[s][a] for a, w in weights.items()) - best[s] for s in scorers)

    pure = max(worst({a: 1.0}) for a in range(n))
    mixed = pure
    for a, b in itertools.combinations(range(n), 2):
        for i in range(101):
            mixed = max(mixed, worst({a: i / 100, b: 1 - i / 100}))
    return pure, mixed, min(policy[s] - best[s] for s in scorers)


def main():
    base = sys.argv[1]
    policy_row = sys.argv[2] if len(sys.argv) > 2 else "rc-ppo_split{split}"
    cells = {}
    for seed in (1, 2, 3):
        for path in sorted(glob.glob(f"{base}/grid_defaults_seed{seed}/*.json")):
            cells.setdefault(os.path.basename(path)[:-5], []).append(cell_margins(path, policy_row))
    print("| cell | best fixed action | best two-action mixture | policy |\n|---|---|---|---|")
    for cell, rows in sorted(cells.items()):
        print(f"| {cell} | " + " | ".join(f"{statistics.mean(r[i] for r in rows):+.3f}" for i in range(3)) + " |")


if __name__ == "__main__":
    main()
