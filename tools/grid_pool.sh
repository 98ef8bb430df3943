#!/usr/bin/env bash
# One method's figures per cell of tools/eval_grid.sh folders, pooled over
# training seeds (one folder per seed, every other argument the same): each
# split's reward is averaged over the seeds, then the paired margins are taken
# over the splits (docs/results.md, "Held-out scoring"). With one folder the
# figures are that run's (worst_case.tsv, vs_greedy.tsv). Baselines and the
# Oracle come from the first folder (they do not depend on the training
# seed; later folders may be run with --oracle=false, and where they have a
# baseline it must be the same).
#
#   bash tools/grid_pool.sh PREFIX METHOD GRID_DIR [GRID_DIR...]
#   e.g. bash tools/grid_pool.sh /tmp/pooled 'rc-ppo_split{split}' /tmp/grid_s1 /tmp/grid_s2
#
# Writes PREFIX.tsv, one row per cell: the worst case over the held-out
# scorers (scorer, reward, % of that scorer's Oracle, best baseline there,
# paired margin and standard error, verdict: ahead, tie or behind as in
# docs/evaluation.md), the worst-case margin over Greedy (deciding with the
# training-side model), METHOD's shield overrides and decisions (summed over
# the seeds, under the scorer where they are the largest share), then per
# scorer METHOD's reward, % of Oracle, the best baseline and its reward.
# With gnuplot, PREFIX.png draws the margin over Greedy (devices x networks).
set -euo pipefail
if [[ $# -lt 3 ]]; then
  echo "usage: bash tools/grid_pool.sh PREFIX METHOD GRID_DIR [GRID_DIR...]" >&2
  exit 2
fi
prefix=$1 method=$2
shift 2
dirs=("$@")
mapfile -t cells < <(cd "${dirs[0]}" && ls -- *__*.json)
[[ ${#cells[@]} -gt 0 ]] || { echo "grid_pool: no cell JSON in ${dirs[0]}" >&2; exit 1; }
# shellcheck disable=SC2016
pool='def stats: (add / length) as $m
    | {m: $m, se: (if length > 1 then ((map((. - $m) * (. - $m)) | add) / (length - 1) / length | sqrt) else 0 end)};
  def paired($a; $b): [$a, $b] | transpose | map(.[0] - .[1]) | stats;
  # Averaging identical rewards over seeds leaves rounding noise: |m| <= 1e-9 is 0.
  def verdict: if .m > 1e-9 then "ahead" elif .m >= -.se - 1e-9 then "tie" else "behind" end;
  def pct($r; $o): if $o > 0 then 100 * $r / $o else 0 end;
  . as $runs
  | if ([$runs[] | .settings | del(.decision_makers)] | unique | length) != 1
    then error("the folders were run with different settings") else . end
  # The baselines of docs/evaluation.md: Local, each fixed action, Greedy.
  | ([$runs[0].scorers[0].methods[].name | select(. == "Local" or . == "Greedy" or startswith("Fixed "))]
     - [$m] | unique) as $baselines
  # The baselines and bounds come from the first folder; a later folder may
  # leave them out (e.g. --oracle=false) but must agree where it has them.
  | if [range(0; $runs[0].scorers | length) as $i | $runs[0].scorers[$i].methods[] as $b
         | select($b.name != $m) | $runs[1:][] | .scorers[$i].methods[]
         | select(.name == $b.name and .shield == $b.shield and .reward_by_split != $b.reward_by_split)]
       | length > 0
    then error("a baseline differs between the folders: not the same splits") else . end
  | [range(0; $runs[0].scorers | length) as $i
     | $runs[0].scorers[$i] as $s
     | [$runs[] | .scorers[$i].methods[] | select(.shield and .name == $m)] as $own
     | if ($own | length) != ($runs | length) then error("\($m) missing under \($s.scorer)") else . end
     | ($own | map(.reward_by_split) | transpose | map(add / length)) as $pol
     | [$s.methods[] | select(.shield)] as $rows
     # The first baseline of highest reward, as env::WorstCase picks it.
     | (reduce ($rows[] | select(.name as $n | $baselines | index($n))) as $r
          (null; if . == null or $r.reward > .reward then $r else . end)) as $best
     | {scorer: $s.scorer, held_out: $s.held_out, reward: ($pol | add / length), best: $best,
        oracle: ([$s.methods[] | select(.name == "Oracle")][0].reward // 0),
        margin: paired($pol; $best.reward_by_split),
        greedy: paired($pol; [$rows[] | select(.name == "Greedy")][0].reward_by_split),
        overrides: ($own | map(.shield_overrides) | add), decisions: ($own | map(.decisions) | add)}]
  | . as $per
  | ([$per[] | select(.held_out)] | min_by(.margin.m)) as $w
  | ([$per[] | select(.held_out)] | min_by(.greedy.m)) as $g
  | ($per | max_by(if .decisions > 0 then .overrides / .decisions else 0 end)) as $o
  | if $header then
      ["device", "network", "worst_scorer", "reward", "percent_of_oracle", "best_baseline", "margin",
       "margin_se", "verdict", "greedy_worst_scorer", "margin_vs_greedy", "margin_vs_greedy_se",
       "shield_overrides", "decisions"]
      + ($per | map(.scorer | ., "\(.)_percent_of_oracle", "\(.)_best_baseline", "\(.)_best_reward"))
    else
      [$runs[0].settings.device, $runs[0].settings.network, $w.scorer, $w.reward, pct($w.reward; $w.oracle),
       $w.best.name, $w.margin.m, $w.margin.se, ($w.margin | verdict), $g.scorer, $g.greedy.m,
       $g.greedy.se, $o.overrides, $o.decisions]
      + ($per | map(.reward, pct(.reward; .oracle), .best.name, .best.reward))
    end
  | @tsv'
tsv=$prefix.tsv
for cell in "${cells[@]}"; do
  files=()
  for dir in "${dirs[@]}"; do
    [[ -s "$dir/$cell" ]] || { echo "grid_pool: $dir/$cell missing" >&2; exit 1; }
    files+=("$dir/$cell")
  done
  if [[ $cell == "${cells[0]}" ]]; then
    jq -rs --arg m "$method" --argjson header true "$pool" "${files[@]}" >"$tsv"
  fi
  jq -rs --arg m "$method" --argjson header false "$pool" "${files[@]}" >>"$tsv"
done
# Rows in the order of the built-in profiles (eval_grid.sh's), others after.
order='Raspberry Pi-4B;Raspberry Pi-5;Jetson Nano;Jetson TX2;Jetson Xavier NX;Jetson Orin NX;Jetson AGX Orin;iPhone 15 Pro;Wired;WiFi;5G;4G'
{
  head -n 1 "$tsv"
  tail -n +2 "$tsv" | awk -F'\t' -v order="$order" \
    'BEGIN { n = split(order, o, ";"); for (i = 1; i <= n; i++) rank[o[i]] = i }
     { printf "%03d\t%03d\t%s\n", ($1 in rank) ? rank[$1] : 99, ($2 in rank) ? rank[$2] : 99, $0 }' |
    sort -t$'\t' -k1,1 -k2,2 -k3,3 -k4,4 | cut -f3-
} >"$tsv.sorted"
mv "$tsv.sorted" "$tsv"
if command -v gnuplot >/dev/null; then
  # One row per device (the first on top), one column per network.
  mapfile -t devices < <(awk -F'\t' 'NR > 1 && !seen[$1]++ { print $1 }' "$tsv")
  mapfile -t networks < <(awk -F'\t' 'NR > 1 && !seen[$2]++ { print $2 }' "$tsv")
  for device in "${devices[@]}"; do
    row=()
    for network in "${networks[@]}"; do
      row+=("$(awk -F'\t' -v d="$device" -v n="$network" '$1 == d && $2 == n { printf "%.3f", $11 }' "$tsv")")
    done
    echo "${row[*]}"
  done >"$prefix.dat"
  ytics=$(i=0; for d in "${devices[@]}"; do printf '"%s" %d,' "$d" $((i++)); done)
  xtics=$(i=0; for n in "${networks[@]}"; do printf '"%s" %d,' "$n" $((i++)); done)
  budgets=$(jq -r '"\(.settings.latency_budget_s) s, \(.settings.money_budget_usd) USD"' "${dirs[0]}/${cells[0]}")
  gnuplot <<GP
set terminal pngcairo size 900,600 noenhanced
set output "$prefix.png"
set yrange [${#devices[@]}-0.5:-0.5]
set title "$method, ${#dirs[@]} training seed(s): worst-case margin over Greedy\n(held-out scorers, shield on, $budgets)"
set xtics (${xtics%,})
set ytics (${ytics%,})
set cbrange [-0.6:0.6]
set palette defined (-0.6 "#b2182b", 0 "#f7f7f7", 0.6 "#2166ac")
unset key
plot "$prefix.dat" matrix with image, "$prefix.dat" matrix using 1:2:(sprintf("%.2f", \$3)) with labels
GP
fi
echo "grid_pool: $tsv" >&2
