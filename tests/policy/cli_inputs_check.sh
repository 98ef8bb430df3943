#!/usr/bin/env bash
# Bad command-line values are refused before any work, exit 2, and the
# message names the flag and the rule; nothing crashes (a signal is a failure)
# and no output replaces a device.
# Usage: cli_inputs_check.sh LCIO_TRAIN LCIO_EVAL LCIO_OPE LCIO_CALIBRATE REPO_ROOT LCIO_JOIN
set -uo pipefail
train=$1 eval_bin=$2 ope=$3 calibrate=$4 repo=$5 join=$6
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$repo" || exit 1
failures=0
# refuse "expected text" command...: exit status 2 (what was asked is refused;
# 1 is a run that failed) and the text on stderr.
refuse() {
  local want=$1
  shift
  timeout 120 "$@" > "$tmp/out" 2> "$tmp/err"
  local rc=$?
  if ((rc != 2)); then
    echo "FAIL (exit $rc): $*"
    head -c 600 "$tmp/err"
    failures=$((failures + 1))
  elif ! grep -qF -- "$want" "$tmp/err"; then
    echo "FAIL (no \"$want\" in stderr): $*"
    head -c 600 "$tmp/err"
    failures=$((failures + 1))
  fi
}
refuse 'time_span = 10000: must be in [1, 1000]' "$eval_bin" --splits=1 --oracle=false --time_span=10000
refuse 'time_span = 10000: must be in [1, 1000]' "$train" --timesteps=64 --progress=off \
  --time_span=10000 --out="$tmp/p.pt"
refuse '--alpha = nan: must be a finite number' "$eval_bin" --splits=1 --oracle=false --alpha=nan
refuse '--beta_latency = 1e+308: must be a finite number in [-1e+06, 1e+06]' "$eval_bin" --splits=1 \
  --oracle=false --beta_latency=1e308
refuse '--latency_budget = nan: must be a finite number >= 0' "$eval_bin" --splits=1 \
  --oracle=false --latency_budget=nan
refuse '--money_budget = -5: must be a finite number >= 0' "$ope" --log=data/M4A1.json \
  --candidates=local --default_propensity=1 --money_budget=-5
refuse '--splits = 2000000000: must be in [1, 1000]' "$eval_bin" --splits=2000000000 --oracle=false
refuse '--default_propensity = 1e-300: must be in [1e-100, 1]' "$ope" --log=data/M4A1.json \
  --candidates=local --default_propensity=1e-300
refuse '--half_width = nan: must be a finite number > 0' "$ope" --log=data/M4A1.json \
  --candidates=local --default_propensity=1 --half_width=nan
refuse 'not a regular file' "$ope" --log=/dev/zero --candidates=local --default_propensity=1
refuse 'copies = 2000000000: must be in [1, 10000]' "$ope" --validate --copies=2000000000 \
  --repetitions=1 --candidates=local
refuse '--repetitions = 2000000000: must be in [1, 100000]' "$ope" --validate \
  --repetitions=2000000000 --candidates=local
refuse 'and 2 to 100000 points' "$calibrate" --policy=policy/default_policy.pt \
  --target_cloud_share=0.3 --grid=2000000000
refuse '--target_cloud_share = -0.5: must be in [0, 1]' "$calibrate" --policy=policy/default_policy.pt \
  --target_cloud_share=-0.5
refuse '--target_spend_usd = nan: must be a finite number > 0' "$calibrate" \
  --policy=policy/default_policy.pt --target_spend_usd=nan
refuse 'give exactly one of' "$calibrate" --policy=policy/default_policy.pt \
  --target_cloud_share=0.3 --target_spend_usd=-1
refuse 'needs 0 < min < max < inf' "$calibrate" --policy=policy/default_policy.pt \
  --target_cloud_share=0.3 --max_money=inf
# A huge value is cut in the message (its length named), never echoed whole.
long=$(head -c 100000 /dev/zero | tr '\0' x)
for cmd in "$eval_bin --splits=1 --oracle=false --device=$long" \
  "$eval_bin --splits=1 --oracle=false --network=$long" \
  "$ope --log=data/M4A1.json --default_propensity=1 --candidates=$tmp/$long" \
  "$train --timesteps=64 --progress=off --algo=$long --out=$tmp/q.pt" \
  "$train --timesteps=64 --progress=$long --out=$tmp/q.pt" \
  "$train --timesteps=64 --progress=off --split=$long --out=$tmp/q.pt" \
  "$train --timesteps=64 --progress=off --budget_dist=$long --out=$tmp/q.pt" \
  "$eval_bin --splits=1 --oracle=false --shield=$long" \
  "$eval_bin --splits=1 --oracle=false --knn_rule=$long" \
  "$eval_bin --splits=1 --oracle=false --data=$tmp/$long"; do
  # shellcheck disable=SC2086
  refuse '...(' $cmd
  size=$(wc -c < "$tmp/err")
  ((size < 2048)) || { echo "FAIL: $size bytes of stderr for a 100000-byte value: ${cmd:0:80}"; failures=$((failures + 1)); }
done
refuse 'n_steps = 1000000000 is more than timesteps = 256' "$train" --timesteps=256 --progress=off \
  --hp=n_steps=1000000000 --out="$tmp/r.pt"
# Flags that would be ignored in silence are refused.
refuse '--train_ids and --test_ids need --split random' "$train" --split=none --train_ids=0,1 \
  --test_ids=2 --timesteps=64 --progress=off --out="$tmp/r.pt"
refuse '--train_config: needs --algos' "$eval_bin" --splits=1 --oracle=false \
  --train_config=policy/default_train_config.json
refuse '--validate simulates its own traffic' "$ope" --validate --log=data/M4A1.json \
  --candidates=local --repetitions=1
refuse '--simulate_out simulates its own traffic' "$ope" --log=data/M4A1.json \
  --simulate_out="$tmp/sim.json"
refuse 'budget distribution: stddev.money_usd = -1: must be finite and >= 0' "$train" \
  --timesteps=64 --progress=off --budget_dist=normal --budget_sd_money=-1 --out="$tmp/r.pt"
# A DQN minibatch of a billion rows aborted out of memory ("terminate called ...").
refuse 'batch_size = 1000000000 is more than the replay buffer holds' "$train" --algo=dqn \
  --timesteps=2000 --progress=off --hp=batch_size=1000000000,learning_starts=0 --out="$tmp/r.pt"
refuse 'hyperparameter gamma is given twice (0.5 and 0.9)' "$train" --timesteps=64 --progress=off \
  --hp=gamma=0.5,gamma=0.9 --out="$tmp/r.pt"
printf '{"timesteps": 2000, "timesteps": 3000}' > "$tmp/twice.json"
refuse 'key "timesteps" appears twice in one object' "$train" --config="$tmp/twice.json" \
  --progress=off --out="$tmp/r.pt"
# A setting that asks for more memory than the machine has (a replay buffer of a billion
# observations) ends in one line and exit 1, not an abort. Only where the kernel refuses
# such an allocation (overcommit_memory 0 or 2); with 1 it would be granted and then fill memory.
if [[ $(cat /proc/sys/vm/overcommit_memory 2>/dev/null) != 1 ]]; then
  timeout 120 "$train" --algo=dqn --timesteps=1000000000 --hp=buffer_size=1000000000 \
    --progress=off --out="$tmp/m.pt" > "$tmp/out" 2> "$tmp/err"
  rc=$?
  if ((rc != 1)) || ! grep -qF 'out of memory: the settings ask for more memory' "$tmp/err"; then
    echo "FAIL (exit $rc, want 1 and 'out of memory'): lcio-train with a 1e9-row replay buffer"
    head -c 600 "$tmp/err"
    failures=$((failures + 1))
  fi
fi
# Every candidate is checked before any report is printed.
refuse 'candidates' "$ope" --log=data/M4A1.json --default_propensity=1 --candidates=local,,fixed:1
[[ ! -s $tmp/out ]] || { echo "FAIL: lcio-ope printed a report before refusing a candidate"; failures=$((failures + 1)); }
mkfifo "$tmp/fifo.pt"
# Before training: a run of 1e9 steps would otherwise end in the timeout.
refuse 'is a FIFO' "$train" --timesteps=1000000000 --progress=off --out="$tmp/fifo.pt"
[[ -p $tmp/fifo.pt ]] || { echo "FAIL: lcio-train replaced the FIFO"; failures=$((failures + 1)); }
# An input that is not a regular file is refused before it is opened: a device was read without end
# (gigabytes of memory), a FIFO without a writer waited for ever. (lcio-join reads its logs once, in
# order: a pipe is welcome there, a device is not.)
mkfifo "$tmp/input.fifo"
refuse 'not a regular file' "$train" --config=/dev/zero --timesteps=64 --progress=off --out="$tmp/z.pt"
refuse 'not a regular file' "$eval_bin" --splits=1 --oracle=false --profiles=/dev/zero
refuse 'not a regular file' "$eval_bin" --splits=1 --oracle=false --data="$tmp/input.fifo"
refuse 'a device, not a file' "$join" --decisions=/dev/zero --reports=/dev/zero --out="$tmp/j.json"
# Bytes that are not UTF-8, in an input line, a path or a flag, end in a report, never in an abort
# when the JSON is written (nlohmann's dump threw on them).
# succeed command...: exit status 0 and JSON on stdout.
succeed() {
  timeout 120 "$@" > "$tmp/out" 2> "$tmp/err"
  local rc=$?
  if ((rc != 0)); then
    echo "FAIL (exit $rc): $(echo "$*" | head -c 200)"
    head -c 600 "$tmp/err"
    failures=$((failures + 1))
  elif ! python3 -c 'import json, sys; json.load(sys.stdin)' < "$tmp/out"; then
    echo "FAIL (not JSON on stdout): $(echo "$*" | head -c 200)"
    failures=$((failures + 1))
  fi
}
printf '{"schema_version\xff":2}\n' > "$tmp/decisions.jsonl"
: > "$tmp/reports.log"
refuse '--reward_window_s = inf: must be in [0, 31622400]' "$join" --decisions="$tmp/decisions.jsonl" \
  --reports="$tmp/reports.log" --out="$tmp/j.json" --reward_window_s=inf
succeed "$join" --decisions="$tmp/decisions.jsonl" --reports="$tmp/reports.log" --out="$tmp/j.json"
grep -q "decision_skipped_lines\": 1" "$tmp/out" || { echo "FAIL: the bad line was not counted"; failures=$((failures + 1)); }
cp policy/default_policy.pt "$tmp/p"$'\xff'".pt"
succeed "$ope" --log=data/M4A1.json --default_propensity=1 --format=json \
  --candidates="$tmp/p"$'\xff'".pt"
succeed "$eval_bin" --splits=1 --oracle=false --fixed=false --format=json \
  --refusal_phrases=$'sorry,\xff'
exit $((failures > 0))
