#!/usr/bin/env bash
# The retraining gate: is a candidate artifact no worse than the serving one? (docs/ope.md, "Gated
# retraining")
#
#   gate-policy.sh CANDIDATE.pt SERVING.pt REPORT_DIR
#
# Two checks, both required; a check without its data is a failed check (no evidence, no publish):
#   lcio-eval  on LCIO_GATE_DATA (M4A1 JSON that neither artifact was trained on, e.g. the newest
#              Reports held out of training): under every held-out scorer, the candidate's mean
#              reward (shield on) >= the serving policy's - LCIO_GATE_MARGIN;
#   lcio-ope   on LCIO_GATE_JOINED (recent joined traffic, lcio-join): the upper end of the
#              candidate's doubly robust 95% interval >= the serving policy's DR estimate -
#              LCIO_GATE_MARGIN (not significantly worse on the traffic the fleet serves).
# Writes REPORT_DIR/gate-report.md (the verdict and why) and the tools' JSON.
# Exit 0: no worse (publish); 1: worse or no evidence (canary); 2: usage or a tool failed.
#
#   LCIO_EVAL_BIN (lcio-eval), LCIO_OPE_BIN (lcio-ope), LCIO_GATE_MARGIN (0),
#   LCIO_GATE_SPLITS (5): lcio-eval splits of LCIO_GATE_DATA
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
    --splits="$splits" --shield=on --oracle=false --fixed=false --format=json \
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
  if ! "$ope_bin" --log="$LCIO_GATE_JOINED" --candidates="$serving,$candidate" --format=json \
    >"$dir/gate-ope.json" 2>"$dir/gate-ope.stderr"; then
    echo "gate-policy: lcio-ope failed: $(head -c 500 "$dir/gate-ope.stderr")" >&2
    exit 2
  fi
  line=$(jq -r --argjson m "$margin" '
    (.[0].overall.dr.estimate) as $s | (.[1].overall.dr) as $c
    | "\($c.estimate) \($c.low) \($c.high) \($s) \(if $c.high >= $s - $m then "ok" else "worse" end)"' \
    "$dir/gate-ope.json")
  read -r c lo hi s v <<<"$line"
  note "## lcio-ope on $LCIO_GATE_JOINED (doubly robust)"
  note
  note "candidate $c [$lo, $hi], serving $s: $v"
  note
  note "$(jq -r '.[1].advice' "$dir/gate-ope.json")"
  [[ "$v" == ok ]] || verdict=1
else
  note "## lcio-ope: no joined traffic (LCIO_GATE_JOINED unset or unreadable): no evidence"
  verdict=1
fi

note
if ((verdict == 0)); then note "verdict: no worse than the serving policy: publish"; else note "verdict: canary"; fi
exit "$verdict"
