#!/usr/bin/env bash
# The retraining gate: is a candidate artifact no worse than the serving one? (docs/ope.md, "Gated
# retraining")
#
#   gate-policy.sh CANDIDATE.pt SERVING.pt REPORT_DIR
#
# Two checks, both required; a check without its data is a failed check (no evidence, no publish;
# for lcio-ope that includes joined traffic of which more than half the turns were logged without
# exploration):
#   lcio-eval  on LCIO_GATE_DATA (M4A1 JSON that neither artifact was trained on, e.g. the newest
#              Reports held out of training): under every held-out scorer, the candidate's mean
#              reward (shield on) >= the serving policy's - LCIO_GATE_MARGIN;
#   lcio-ope   on LCIO_GATE_JOINED (recent joined traffic, lcio-join), paired with the serving
#              policy (--baseline): the doubly robust difference candidate - serving
#              >= -LCIO_GATE_MARGIN (no worse on the traffic the fleet serves, the same reading
#              as the lcio-eval check; its 95% interval goes into the report: with little
#              exploration it is wide, and "not significantly worse" would let a clearly worse
#              candidate through). Both are estimated on the same conversations, so the interval
#              is of their per-conversation difference, where the shared noise cancels.
# Writes REPORT_DIR/gate-report.md (the verdict and why) and the tools' JSON.
# Exit 0: no worse (publish); 1: worse or no evidence (canary); 2: usage or a tool failed.
#
#   LCIO_EVAL_BIN (lcio-eval), LCIO_OPE_BIN (lcio-ope), LCIO_GATE_MARGIN (0; negative: the
#   candidate must be better by that much),
#   LCIO_GATE_SPLITS (5): lcio-eval splits of LCIO_GATE_DATA,
#   LCIO_GATE_DATA_SINCE: the first report time of LCIO_GATE_DATA's oldest conversation (RFC 3339);
#   the report says whether the serving policy, created before or after it, can have trained on
#   them (found with lcio-policy-info: $LCIO_POLICY_INFO, beside this script, or on PATH),
#   LCIO_PROFILES: the fleet's extra profiles (the servers' LCIO_PROFILES), passed as --profiles
#   to both tools so that traffic served for those devices and networks is priced as served
set -euo pipefail

if (($# != 3)); then
  echo "usage: gate-policy.sh CANDIDATE.pt SERVING.pt REPORT_DIR" >&2
  exit 2
fi
candidate="$1" serving="$2" dir="$3"
eval_bin="${LCIO_EVAL_BIN:-lcio-eval}"
ope_bin="${LCIO_OPE_BIN:-lcio-ope}"
margin="${LCIO_GATE_MARGIN:-0}"
splits="${LCIO_GATE_SPLITS:-5}"
profiles=()
[[ -n "${LCIO_PROFILES:-}" ]] && profiles=(--profiles="$LCIO_PROFILES")
mkdir -p "$dir"
report="$dir/gate-report.md"
verdict=0
{
  echo "# Retraining gate"
  echo
  echo "candidate: $candidate"
  echo "serving: $serving"
  echo "margin: $margin"
  echo
} >"$report"
note() { echo "$*" >>"$report"; }

if [[ -n "${LCIO_GATE_DATA:-}" && -r "$LCIO_GATE_DATA" ]]; then
  # One comma-separated list: a repeated --policy keeps only its last value.
  if ! "$eval_bin" --data="$LCIO_GATE_DATA" --policy="$serving,$candidate" \
    --splits="$splits" --shield=on --oracle=false --fixed=false --format=json "${profiles[@]}" \
    >"$dir/gate-eval.json" 2>"$dir/gate-eval.stderr"; then
    echo "gate-policy: lcio-eval failed: $(head -c 500 "$dir/gate-eval.stderr")" >&2
    exit 2
  fi
  # Per held-out scorer; the rows end with serving, candidate (then the bounds, skipped).
  rows=$(jq -r --argjson m "$margin" '
    .scorers[] | select(.held_out) | . as $s
    | [.methods[] | select(.name != "Greedy (clairvoyant)")] as $rows
    | ($rows[-2].reward) as $serving | ($rows[-1].reward) as $candidate
    | "\($s.scorer) \($candidate) \($serving) \(if $candidate >= $serving - $m then "ok" else "worse" end)"' \
    "$dir/gate-eval.json")
  note "## lcio-eval on $LCIO_GATE_DATA ($splits splits, shield on)"
  note
  if [[ -n "${LCIO_GATE_DATA_SINCE:-}" ]]; then
    # The candidate never saw the hold-out; the serving policy saw none of it only if it was
    # trained before the hold-out's first Report. Otherwise the comparison favours it.
    info="${LCIO_POLICY_INFO:-}"
    [[ -n "$info" ]] || info="$(dirname "$(readlink -f "$0")")/lcio-policy-info"
    [[ -x "$info" ]] || info="$(command -v lcio-policy-info || true)"
    created=""
    [[ -n "$info" ]] && created=$("$info" "$serving" 2>/dev/null | jq -r '.created_utc // ""' || true)
    # GNU date reads "" as today's midnight: an unknown time stays unknown.
    since_s=$(date -u -d "$LCIO_GATE_DATA_SINCE" +%s 2>/dev/null || echo "")
    created_s=""
    [[ -n "$created" ]] && created_s=$(date -u -d "$created" +%s 2>/dev/null || echo "")
    if [[ -z "$since_s" || -z "$created_s" ]]; then
      note "held-out conversations first reported since $LCIO_GATE_DATA_SINCE; the serving" \
        "policy's creation time is unknown: it may have been trained on some of them"
    elif ((created_s < since_s)); then
      note "held-out conversations first reported since $LCIO_GATE_DATA_SINCE, after the serving" \
        "policy was created ($created): neither policy was trained on them"
    else
      note "held-out conversations first reported since $LCIO_GATE_DATA_SINCE, before the serving" \
        "policy was created ($created): it may have been trained on some of them, which favours it"
    fi
    note
  fi
  note "| scorer | candidate | serving | verdict |"
  note "|---|---|---|---|"
  while read -r scorer c s v; do
    note "| $scorer | $c | $s | $v |"
    [[ "$v" == ok ]] || verdict=1
  done <<<"$rows"
  [[ -n "$rows" ]] || { note "no held-out scorer in the report"; verdict=1; }
  note
else
  note "## lcio-eval: no held-out data (LCIO_GATE_DATA unset or unreadable): no evidence"
  verdict=1
fi

if [[ -n "${LCIO_GATE_JOINED:-}" && -r "$LCIO_GATE_JOINED" ]]; then
  if ! "$ope_bin" --log="$LCIO_GATE_JOINED" --candidates="$serving,$candidate" \
    --baseline="$serving" --format=json "${profiles[@]}" >"$dir/gate-ope.json" \
    2>"$dir/gate-ope.stderr"; then
    echo "gate-policy: lcio-ope failed: $(head -c 500 "$dir/gate-ope.stderr")" >&2
    exit 2
  fi
  # The candidate's entry is the one paired with the baseline. A NaN is null in JSON: "nan" here.
  # shellcheck disable=SC2016 # jq's variables, not the shell's
  pick='def n: if . == null then "nan" else . end;
    [.[] | select(.versus_baseline != null)][0] as $c | (.[] | select(.baseline == true)) as $s'
  line=$(jq -r --argjson m "$margin" "$pick"'
    | ($c.versus_baseline.overall.dr) as $d
    | [($d.estimate | n), ($d.low | n), ($d.high | n), ($c.overall.dr.estimate | n),
       ($s.overall.dr.estimate | n), $c.versus_baseline.overall.disagreements,
       $c.versus_baseline.overall.turns,
       (if $d.estimate != null and $d.estimate >= -$m then "ok" else "worse" end)] | @tsv' \
    "$dir/gate-ope.json")
  IFS=$'\t' read -r d lo hi c s differs turns v <<<"$line"
  # An interval without bounds (null: the sample shows no spread) reads "undefined".
  ci() {
    if [[ "$2" == nan || "$3" == nan ]]; then
      printf '%+.3f [undefined]' "$1"
    else
      printf '%+.3f [%+.3f, %+.3f]' "$1" "$2" "$3"
    fi
  }
  note "## lcio-ope on $LCIO_GATE_JOINED (doubly robust, paired with the serving policy)"
  note
  note "DR difference candidate - serving, paired (95% CI clustered by conversation): $(ci "$d" "$lo" "$hi")"
  note "gate: the paired difference >= -margin ($margin): $v (the interval says how sure that is)"
  note
  note "$(printf 'candidate DR %.3f, serving DR %.3f; they choose differently on %s of %s turns' \
    "$c" "$s" "$differs" "$turns")"
  note
  note "| scope | turns | differs | DR difference [95% CI] |"
  note "|---|---|---|---|"
  while IFS=$'\t' read -r scope n k e l h; do
    note "| $scope | $n | $k | $(ci "$e" "$l" "$h") |"
  done < <(jq -r "$pick"'
    | $c.versus_baseline | ([{task: "overall", differences: .overall}] + .per_task)[]
    | .differences as $x
    | [.task, $x.turns, $x.disagreements, ($x.dr.estimate | n), ($x.dr.low | n), ($x.dr.high | n)]
    | @tsv' "$dir/gate-ope.json")
  note
  note "$(jq -r "$pick"' | $c.advice' "$dir/gate-ope.json")"
  [[ "$v" == ok ]] || verdict=1
  # Evidence: turns logged without exploration (propensity above 0.999, lcio-ope's
  # deterministic_turns) show only the serving policy's own
  # action, so where the two policies differ there the DR difference is the response model's
  # extrapolation alone. More than half such turns: no evidence.
  read -r deterministic all_turns < <(jq -r "$pick"' | "\($c.overall.deterministic_turns) \($c.overall.turns)"' \
    "$dir/gate-ope.json")
  if ((all_turns == 0 || 2 * deterministic > all_turns)); then
    note
    note "no evidence: $deterministic of $all_turns joined turns were logged without exploration" \
      "(propensity above 0.999); the difference there is the response model's extrapolation"
    verdict=1
  fi
else
  note "## lcio-ope: no joined traffic (LCIO_GATE_JOINED unset or unreadable): no evidence"
  verdict=1
fi

note
if ((verdict == 0)); then note "verdict: no worse than the serving policy: publish"; else note "verdict: canary"; fi
exit "$verdict"
