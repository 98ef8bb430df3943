#!/usr/bin/env bash
# The nightly retrain as deploy/docker/entrypoint-train.sh runs it, with the real binaries: it
# trains with the shipped configuration (policy/default_train_config.json), and publishes a
# candidate only when gate-policy.sh (lcio-eval on held-out data, lcio-ope on joined traffic) finds
# it no worse than the serving policy; otherwise the candidate goes to the canary track with the
# gate's report. docs/ope.md, "Gated retraining".
#
#   check_retrain_gate.sh SRC LCIO_TRAIN LCIO_EVAL LCIO_OPE LCIO_POLICY_INFO LCIO_REPORT_EXPORT
#                         LCIO_JOIN
set -euo pipefail
src="$1" train_bin="$2" eval_bin="$3" ope_bin="$4" export_bin="$6" join_bin="$7"
# publish-policy.sh validates every artifact with it before publishing.
export LCIO_POLICY_INFO="$5"
command -v jq >/dev/null 2>&1 || { echo "jq not installed"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "python3 not installed"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

store="$work/store"
"$src/deploy/docker/publish-policy.sh" "$src/policy/default_policy.pt" "$store/stable" >/dev/null
serving_sha=$(sha256sum <"$store/stable/policy.pt")
# Recent traffic, logged by the serving policy with 20% exploration.
"$ope_bin" --simulate_out="$work/traffic.json" --logging_policy="$src/policy/default_policy.pt" \
  --epsilon=0.2 --copies=1 2>/dev/null

retrain() {  # extra VAR=value settings; a short run of the shipped configuration
  env LCIO_TRAIN_BIN="$train_bin" LCIO_EVAL_BIN="$eval_bin" LCIO_OPE_BIN="$ope_bin" \
    LCIO_BASE_DATA="$src/data/M4A1.json" LCIO_TRAIN_CONFIG="$src/policy/default_train_config.json" \
    LCIO_TIMESTEPS=3000 LCIO_WORK_DIR="$work/w$1" LCIO_PUBLISH_DIR="$store/stable" \
    LCIO_GATE_SPLITS=2 "${@:2}" "$src/deploy/docker/entrypoint-train.sh" >"$work/run$1.log" 2>&1 ||
    { cat "$work/run$1.log"; fail "entrypoint-train.sh failed (run $1)"; }
}

# 1. A candidate that does not clear the gate: canary; stable untouched. A short-trained candidate
# is not reliably worse than the shipped policy under held-out scoring (docs/results.md: the shipped
# policy trails Local there), so the bar is raised instead: LCIO_GATE_MARGIN=-0.5 asks for a gain of
# 0.5 reward under every held-out scorer, more than the clairvoyant bound leaves on this traffic
# (at most about 0.4 over the serving policy).
retrain 1 LCIO_GATE_DATA="$work/traffic.json" LCIO_GATE_JOINED="$work/traffic.json" \
  LCIO_GATE_MARGIN=-0.5
grep -q -- "--config=$src/policy/default_train_config.json" "$work/run1.log" ||
  { cat "$work/run1.log"; fail "the retrain did not use the shipped training configuration"; }
grep -q -- "--response_model=pessimistic" "$work/run1.log" ||
  { cat "$work/run1.log"; fail "the retrain did not use the shipped decision model (pessimistic)"; }
[[ "$(sha256sum <"$store/stable/policy.pt")" == "$serving_sha" ]] ||
  { cat "$work/run1.log"; fail "a candidate that did not clear the gate was published"; }
[[ -s "$store/canary/policy.pt" ]] || fail "the candidate is not on the canary track"
grep -q "verdict: canary" "$store/canary/gate-report.md" || fail "no gate report with the canary"
grep -q "lcio-eval on" "$store/canary/gate-report.md" || fail "the report lacks lcio-eval's figures"
grep -q "lcio-ope on" "$store/canary/gate-report.md" || fail "the report lacks lcio-ope's figures"
# lcio-ope compared the candidate with the serving policy paired (--baseline), and the report gives
# that difference's interval, overall and per task.
gate_ope=$(find "$work/w1" -name gate-ope.json | head -1)
[[ -s "$gate_ope" ]] || fail "no gate-ope.json under $work/w1"
jq -e '[.[] | select(.baseline == true)] | length == 1' "$gate_ope" >/dev/null ||
  fail "the gate's lcio-ope had no baseline (the serving policy)"
high=$(jq -r '[.[] | select(.versus_baseline != null)][0].versus_baseline.overall.dr.high' \
  "$gate_ope")
[[ "$high" =~ ^-?[0-9] ]] || fail "no paired DR difference in gate-ope.json (high = $high)"
grep -Eq "^DR difference candidate - serving, paired .*: [-+][0-9.]+ \[[-+][0-9.]+, [-+][0-9.]+\]$" \
  "$store/canary/gate-report.md" || fail "the report lacks the paired DR difference's interval"
grep -Eq "^\| overall \| [0-9]+ \| [0-9]+ \| [-+][0-9.]+ \[" "$store/canary/gate-report.md" ||
  fail "the report lacks the paired per-scope table"
# lcio-eval scored the serving policy itself (rows are named by policy_version), not only the
# candidate: a repeated --policy flag would keep the last one alone.
serving_version=$("$LCIO_POLICY_INFO" "$store/stable/policy.pt" | jq -r .policy_version)
gate_eval=$(find "$work/w1" -name gate-eval.json | head -1)
[[ -s "$gate_eval" ]] || fail "no gate-eval.json under $work/w1"
jq -e --arg v "$serving_version" '[.scorers[].methods[].name] | index($v) != null' "$gate_eval" \
  >/dev/null || fail "the gate's lcio-eval did not score the serving policy $serving_version"
echo "candidate short of the gate: canary, with its report"

# 2. No evidence (no held-out data, no joined traffic): canary, never stable.
rm -rf "$store/canary"
retrain 2
[[ "$(sha256sum <"$store/stable/policy.pt")" == "$serving_sha" ]] ||
  fail "a candidate was published without evidence"
grep -q "no evidence" "$store/canary/gate-report.md" || fail "the report does not say why"
echo "no evidence: canary"

# 3. Joined traffic logged without exploration is no evidence, even for a margin no candidate can
# miss: the paired difference there is the response model's extrapolation.
"$ope_bin" --simulate_out="$work/unexplored.json" --logging_policy="$src/policy/default_policy.pt" \
  --epsilon=0 --copies=1 2>/dev/null
rm -rf "$store/canary"
retrain 4 LCIO_GATE_DATA="$work/traffic.json" LCIO_GATE_JOINED="$work/unexplored.json" \
  LCIO_GATE_MARGIN=1000
[[ "$(sha256sum <"$store/stable/policy.pt")" == "$serving_sha" ]] ||
  fail "a candidate was published on traffic without exploration"
grep -q "no evidence: [0-9]* of [0-9]* joined turns were logged without exploration" \
  "$store/canary/gate-report.md" || { cat "$store/canary/gate-report.md"; fail "the report does not say why"; }
echo "unexplored traffic: canary"

# 4. A candidate the gate accepts (a margin no candidate can miss) is published to stable.
retrain 3 LCIO_GATE_DATA="$work/traffic.json" LCIO_GATE_JOINED="$work/traffic.json" \
  LCIO_GATE_MARGIN=1000
[[ "$(sha256sum <"$store/stable/policy.pt")" != "$serving_sha" ]] ||
  { cat "$work/run3.log"; fail "an accepted candidate was not published"; }
echo "accepted candidate: published"

# 5. The hold-out comes from the pods' Report logs: the newest conversations by first report time
# over every pod, not the last pod's log. Pod a reported at even hours, pod b at odd ones; pod c
# served no Report (an empty log is nothing to export, not a failure). In file order the newest
# half would be all of pod b's; by time it is a05-a09 and b05-b09. All after the serving policy
# was created, so the report says neither policy trained on them.
logs="$work/reports" decisions="$work/decisions"
mkdir -p "$logs" "$decisions"
: >"$logs/pod-c.log"
python3 - "$logs" "$decisions" <<'PY'
import json, sys, zlib
tasks = ["Assistive System", "Message Editing", "Query", "Recommendation"]
actions = ["local", "cloud", "cloud+{0}", "cloud+{1}", "cloud+{2}", "cloud+{0,1}", "cloud+{0,2}",
           "cloud+{1,2}", "cloud+{0,1,2}"]
for pod, parity in (("a", 0), ("b", 1)):
    # Each Report's decision, as the pod's decision log has it (epsilon exploration).
    with open(f"{sys.argv[2]}/pod-{pod}.jsonl", "w") as log:
        for i in range(10):
            conversation = f"{pod}{i:02d}"
            hour = 2 * i + parity
            history = []
            for turn in range(2):
                cloud = (i + turn) % 2 == 1
                taken = 2 if cloud else 0
                task = tasks[(i + turn) % 4]
                probability = [0.8 if a == taken else 0.025 for a in range(9)]
                log.write(json.dumps({
                    "schema_version": 2, "decision_id": f"{conversation}/{turn}/{i:016x}",
                    "time_utc": f"2030-01-01T{hour - 1 if hour else 0:02d}:{turn:02d}:00.000000Z",
                    "policy_version": "serving", "conversation_id": conversation,
                    "turn_index": turn,
                    "context": {"task": task, "task_inferred": False, "task_confidence": 1.0,
                                "view_names": ["v0", "v1", "v2"], "association": [0.5, 0.3, 0.2],
                                "latency_budget_s": 30.0, "money_budget_usd": 0.05,
                                "request_money_budget_usd": 0.05, "device": "Jetson TX2",
                                "network": "Wired", "history": list(history)},
                    "actions": {"description": actions, "score": [0.0] * 9,
                                "probability": probability, "allowed": [True] * 9,
                                "expected_latency_s": [1.0] * 9, "expected_money_usd": [0.0] * 9},
                    "proposed_action": taken, "taken_action": taken, "shield_overridden": False,
                    "nothing_fits": False, "fallback": False,
                    "exploration": {"mode": "epsilon", "parameter": 0.225, "opted_out": False},
                    "explored": False, "expected_latency_s": 1.0, "expected_money_usd": 0.0,
                    "shadow": None}) + "\n")
                history.append({"action": taken, "task": task})
    with open(f"{sys.argv[1]}/pod-{pod}.log", "w") as log:
        for i in range(10):
            conversation = f"{pod}{i:02d}"
            hour = 2 * i + parity
            for turn in range(2):
                cloud = (i + turn) % 2 == 1
                record = {
                    "conversation_id": conversation, "turn_index": turn,
                    "decision_id": f"{conversation}/{turn}/{i:016x}",
                    "prompt": f"{conversation} turn {turn}: what is on the table?",
                    "task": tasks[(i + turn) % 4], "cloud": cloud,
                    "uploaded_views": [0] if cloud else [], "view_names": ["v0", "v1", "v2"],
                    "association": [0.5, 0.3, 0.2], "answer": "a cup",
                    "score": 5.0 + (i % 4) - turn, "interaction_time_s": 6.0 if cloud else 2.5,
                    "usage_cost_usd": 0.004 if cloud else 0.0, "tasks": tasks,
                    "policy_version": "serving",
                    "received_utc": f"2030-01-01T{hour:02d}:{turn:02d}:00.000000Z"}
                text = json.dumps(record)
                log.write(f"{zlib.crc32(text.encode()):08x} {text}\n")
PY
rm -rf "$store/canary"
retrain 5 LCIO_EXPORT_BIN="$export_bin" LCIO_REPORT_LOGS="$logs" LCIO_GATE_HOLDOUT_SHARE=0.5 \
  LCIO_DECISION_LOGS="$decisions" LCIO_JOIN_BIN="$join_bin"
gate_data=$(find "$work/w5" -name 'gate-*.json' -not -name 'gate-eval.json' -not -name 'gate-ope.json' | head -1)
[[ -s "$gate_data" ]] || { cat "$work/run5.log"; fail "no hold-out written under $work/w5"; }
held=$(jq -r '[.[].interactions[0].question[0:3]] | sort | join(" ")' "$gate_data")
[[ "$held" == "a05 a06 a07 a08 a09 b05 b06 b07 b08 b09" ]] ||
  fail "the hold-out is not the newest conversations over both pods: $held"
trained=$(find "$work/w5" -name 'reports-*.json' | head -1)
jq -e '[.[].interactions[0].question | select(test("^[ab][0-9]{2} "))] | length == 10' \
  "$trained" >/dev/null || fail "training did not get the other 10 exported conversations"
jq -e '[.[].interactions[0].question | select(test("^[ab]0[5-9] "))] | length == 0' \
  "$trained" >/dev/null || fail "training saw a held-out conversation"
grep -q "held-out conversations first reported since 2030-01-01T10:00:00.000000Z, after the serving policy was created (20[0-9-]*T[0-9:]*Z)" \
  "$store/canary/gate-report.md" || { cat "$store/canary/gate-report.md"; fail "the report does not date the hold-out"; }
grep -q "^| held_out | " "$store/canary/gate-report.md" ||
  { cat "$store/canary/gate-report.md"; fail "the gate did not score the hold-out"; }
# The gate's joined traffic is the hold-out alone: the candidate trained on the other conversations
# (every conversation was joined before, and lcio-ope scored the candidate on its own training data).
join_summary=$(find "$work/w5" -name 'joined-*.summary.json' | head -1)
[[ -s "$join_summary" ]] || { cat "$work/run5.log"; fail "the decision logs were not joined"; }
jq -e '.conversations == 10 and .turns == 20 and .decisions_first_reported_before_since == 20' \
  "$join_summary" >/dev/null || { cat "$join_summary"; fail "the joined traffic is not the hold-out"; }
joined=$(find "$work/w5" -name 'joined-*.json' -not -name '*.summary.json' | head -1)
[[ $(jq -r '[.[].interactions[0].question[0:3]] | sort | join(" ")' "$joined") == \
  "a05 a06 a07 a08 a09 b05 b06 b07 b08 b09" ]] || fail "joined conversations other than the hold-out"
echo "hold-out: the newest conversations over all pods, and the gate's joined traffic is them"

# 6. A serving policy whose creation time cannot be read leaves the question open (GNU date read ""
# as today's midnight, and the report claimed neither policy had seen the hold-out).
LCIO_POLICY_INFO=/bin/false LCIO_EVAL_BIN="$eval_bin" LCIO_OPE_BIN="$ope_bin" LCIO_GATE_SPLITS=2 \
  LCIO_GATE_DATA="$gate_data" LCIO_GATE_DATA_SINCE=2030-01-01T10:00:00.000000Z \
  "$src/deploy/docker/gate-policy.sh" "$store/canary/policy.pt" "$store/stable/policy.pt" \
  "$work/gate6" >/dev/null 2>&1 || true
grep -q "creation time is unknown: it may have been trained on some of them" "$work/gate6/gate-report.md" ||
  { cat "$work/gate6/gate-report.md"; fail "an unknown creation time was reported as known"; }
echo "unknown creation time: said so"
