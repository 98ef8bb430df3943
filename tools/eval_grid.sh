#!/usr/bin/env bash
# The held-out protocol over every device x network of the built-in profiles:
# one lcio-eval run per cell, the worst case over the held-out scorers of
# each method collected into one table, and a heat map of one method's
# worst-case margin (docs/results.md, "Every device and network").
#
#   bash tools/eval_grid.sh OUT_DIR [lcio-eval arguments...]
#   e.g. bash tools/eval_grid.sh /tmp/grid --splits=10 --task_rule --response_model=pessimistic
#
# One OUT_DIR per set of arguments (a budget, a policy): OUT_DIR/args records
# them and a second run with other arguments into the same OUT_DIR is refused.
#
# Environment: LCIO_BUILD_DIR (default build), GRID_METHOD (the method drawn,
# default the report's last candidate, else its last baseline), GRID_DEVICES / GRID_NETWORKS (';'-separated, default
# every built-in one), GRID_REUSE=1 (keep a cell's JSON from an earlier run
# instead of evaluating it again), GRID_POLICY (per-split policy artifacts
# evaluated in every cell, passed as --policy: e.g.
# DIR/rc-ppo_split{split}.pt as lcio-eval --save_policies writes them; one
# policy serves every cell). Writes OUT_DIR/<device>__<network>.json,
# OUT_DIR/worst_case.tsv (each method's worst case over the held-out scorers,
# against the best baseline there), OUT_DIR/vs_greedy.tsv (the same against
# Greedy deciding with the training-side model), OUT_DIR/per_scorer.tsv
# (each shielded decision maker's reward and % of the scorer's Oracle under
# every scorer), OUT_DIR/overrides.tsv (each method's shield overrides, the
# largest share of decisions over the scorers) and, when gnuplot is
# installed, OUT_DIR/margin.png (GRID_METHOD's margin over Greedy).
set -euo pipefail
if [[ $# -lt 1 || "$1" == -* ]]; then
  echo "usage: bash tools/eval_grid.sh OUT_DIR [lcio-eval arguments...]" >&2
  exit 2
fi
out=$1
shift
cd "$(dirname "$0")/.."
eval_bin=${LCIO_BUILD_DIR:-build}/tools/lcio-eval
IFS=';' read -r -a devices <<<"${GRID_DEVICES:-Raspberry Pi-4B;Raspberry Pi-5;Jetson Nano;Jetson TX2;Jetson Xavier NX;Jetson Orin NX;Jetson AGX Orin;iPhone 15 Pro}"
IFS=';' read -r -a networks <<<"${GRID_NETWORKS:-Wired;WiFi;5G;4G}"
[[ -x "$eval_bin" ]] || { echo "eval_grid: $eval_bin is not built (cmake --build build --target lcio-eval)" >&2; exit 1; }
policy_args=()
[[ -n ${GRID_POLICY:-} ]] && policy_args=(--policy="$GRID_POLICY")
mkdir -p "$out"
args=$(printf '%s\n' "${policy_args[@]}" "$@")
if [[ -e "$out/args" && $(cat "$out/args") != "$args" ]]; then
  echo "eval_grid: $out holds a grid of other arguments ($(tr '\n' ' ' <"$out/args")); use one OUT_DIR per budget and policy" >&2
  exit 2
fi
printf '%s\n' "$args" >"$out/args"
cell_json() { echo "$out/${1// /_}__$2.json"; }
for device in "${devices[@]}"; do
  for network in "${networks[@]}"; do
    json=$(cell_json "$device" "$network")
    [[ ${GRID_REUSE:-0} == 1 && -s "$json" ]] && continue
    "$eval_bin" --device="$device" --network="$network" --format=json "${policy_args[@]}" "$@" \
      >"$json.tmp" 2>"${json%.json}.err" || { cat "${json%.json}.err" >&2; exit 1; }
    mv "$json.tmp" "$json"
    echo "eval_grid: $device x $network done" >&2
  done
done

tsv="$out/worst_case.tsv" vs="$out/vs_greedy.tsv" per="$out/per_scorer.tsv" ovr="$out/overrides.tsv"
printf 'device\tnetwork\tmethod\tworst_scorer\treward\tmargin\tmargin_se\tbest_baseline\tverdict\n' >"$tsv"
printf 'device\tnetwork\tmethod\tworst_scorer\tmargin\tmargin_se\n' >"$vs"
printf 'device\tnetwork\tscorer\theld_out\tmethod\treward\tpercent_of_oracle\n' >"$per"
printf 'device\tnetwork\tmethod\tscorer\tshield_overrides\tdecisions\tpercent\n' >"$ovr"
# Per scorer: each shielded row's reward and its share of the Oracle's.
# shellcheck disable=SC2016
per_scorer='.scorers[] | . as $s
  | ([$s.methods[] | select(.name == "Oracle")][0].reward // 0) as $o
  | $s.methods[] | select(.shield)
  | [$d, $n, $s.scorer, $s.held_out, .name, .reward, (if $o > 0 then 100 * .reward / $o else 0 end)] | @tsv'
# The shield overrides of each decision maker: the scorer where they are the
# largest share of its decisions.
# shellcheck disable=SC2016
overrides='[.scorers[] | .scorer as $sc | .methods[] | select(.shield and .name != "Oracle")
   | {name, scorer: $sc, o: .shield_overrides, d: .decisions}]
  | group_by(.name)[] | max_by(if .d > 0 then .o / .d else 0 end)
  | [$d, $n, .name, .scorer, .o, .d, (if .d > 0 then 100 * .o / .d else 0 end)] | @tsv' 
# The paired margin over Greedy under each held-out scorer (mean and standard
# error of the per-split differences), the smallest kept.
# shellcheck disable=SC2016
vs_greedy='def stats: (add / length) as $m
    | {m: $m, se: (if length > 1 then ((map((. - $m) * (. - $m)) | add) / (length - 1) / length | sqrt) else 0 end)};
  [.scorers[] | select(.held_out) | . as $s
   | ([$s.methods[] | select(.shield and .name == "Greedy")][0].reward_by_split) as $g
   | $s.methods[] | select(.shield)
   | {name, scorer: $s.scorer} + ([.reward_by_split, $g] | transpose | map(.[0] - .[1]) | stats)]
  | group_by(.name)[] | min_by(.m) | [$d, $n, .name, .scorer, .m, .se] | @tsv'
for device in "${devices[@]}"; do
  for network in "${networks[@]}"; do
    json=$(cell_json "$device" "$network")
    jq -r --arg d "$device" --arg n "$network" "$vs_greedy" "$json" >>"$vs"
    jq -r --arg d "$device" --arg n "$network" "$per_scorer" "$json" >>"$per"
    jq -r --arg d "$device" --arg n "$network" "$overrides" "$json" >>"$ovr"
    jq -r --arg d "$device" --arg n "$network" \
      '.worst_case[] | select(.shield) | [$d, $n, .name, .scorer, .reward, .margin, .margin_se, .best_baseline, .verdict] | @tsv' \
      "$json" >>"$tsv"
  done
done
first=$(cell_json "${devices[0]}" "${networks[0]}")
# The last candidate, else the last baseline; a cell written before rows had
# roles: its last row.
method=${GRID_METHOD:-$(jq -r '(([.worst_case[] | select(.role == "candidate")] | last)
  // ([.worst_case[] | select(.role == "baseline")] | last) // .worst_case[-1]).name' "$first")}
echo "eval_grid: GRID_METHOD $method" >&2
if command -v gnuplot >/dev/null; then
  budgets=$(jq -r '"\(.settings.latency_budget_s) s, \(.settings.money_budget_usd) USD"' "$first")
  data="$out/margin.dat"
  # gnuplot's matrix: one row per device, one column per network.
  for device in "${devices[@]}"; do
    row=()
    for network in "${networks[@]}"; do
      row+=("$(awk -F'\t' -v d="$device" -v n="$network" -v m="$method" \
        '$1 == d && $2 == n && $3 == m { printf "%.3f", $5 }' "$vs")")
    done
    echo "${row[*]}"
  done >"$data"
  ytics=$(i=0; for d in "${devices[@]}"; do printf '"%s" %d,' "$d" $((i++)); done)
  xtics=$(i=0; for n in "${networks[@]}"; do printf '"%s" %d,' "$n" $((i++)); done)
  gnuplot <<GP
set terminal pngcairo size 900,600 noenhanced
set output "$out/margin.png"
set title "$method: worst-case margin over Greedy (held-out scorers, shield on, $budgets)"
set xtics (${xtics%,})
set ytics (${ytics%,})
set cbrange [-0.6:0.6]
set palette defined (-0.6 "#b2182b", 0 "#f7f7f7", 0.6 "#2166ac")
unset key
plot "$data" matrix with image, "$data" matrix using 1:2:(sprintf("%.2f", \$3)) with labels
GP
fi
echo "eval_grid: $tsv $vs $per $ovr" >&2
