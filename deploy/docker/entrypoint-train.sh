#!/usr/bin/env bash
# Container entrypoint of the trainer (Job: train once; CronJob: retrain from the servers' Report
# logs and publish). CI runs this same script with locally built binaries
# (tests/deploy/entrypoint_train.sh). Extra arguments go to lcio-train and override these.
#
#   LCIO_TRAIN_BIN          default lcio-train on PATH
#   LCIO_EXPORT_BIN         default lcio-report-export on PATH (Report log -> M4A1-schema JSON)
#   LCIO_BASE_DATA          M4A1 JSON always trained on (default /usr/local/share/lcio/M4A1.json;
#                           set to "" to train on the Report logs alone)
#   LCIO_REPORT_LOGS        directory of Report logs (*.log, one per server pod, each read with
#                           its rotated predecessors *.log.NNNNNN); unset = none. Records of
#                           another policy's views/tasks are set aside in $LCIO_WORK_DIR/*.rejects.log
#   LCIO_MIN_REPORT_EPISODES  with LCIO_REPORT_LOGS: fewer exported episodes than this means
#                           nothing new to learn from, exit 0 without training (default 1)
#   LCIO_WORK_DIR           scratch and output directory (default /var/lib/lcio/work)
#   LCIO_ALGO (rc-ppo), LCIO_TIMESTEPS (200000), LCIO_SEED (1)
#   LCIO_PUBLISH_DIR        when set, the new artifact is published there with publish-policy.sh
#                           (atomic rename; running servers hot-reload it)
set -euo pipefail

log() { echo "entrypoint-train: $*" >&2; }

train_bin="${LCIO_TRAIN_BIN:-lcio-train}"
export_bin="${LCIO_EXPORT_BIN:-lcio-report-export}"
base_data="${LCIO_BASE_DATA-/usr/local/share/lcio/M4A1.json}"
work="${LCIO_WORK_DIR:-/var/lib/lcio/work}"
min_episodes="${LCIO_MIN_REPORT_EPISODES:-1}"
publish="$(dirname "$(readlink -f "$0")")/publish-policy.sh"
[[ -x "$publish" ]] || publish="publish-policy.sh"

command -v "$train_bin" >/dev/null 2>&1 || { log "trainer binary '$train_bin' not found"; exit 127; }
mkdir -p "$work"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
data="$base_data"

if [[ -n "${LCIO_REPORT_LOGS:-}" ]]; then
  command -v "$export_bin" >/dev/null 2>&1 || { log "export binary '$export_bin' not found"; exit 127; }
  command -v jq >/dev/null 2>&1 || { log "jq not found"; exit 127; }
  shopt -s nullglob
  logs=("$LCIO_REPORT_LOGS"/*.log)
  shopt -u nullglob
  exported=()
  for f in "${logs[@]}"; do
    out="$work/reports-$stamp-$(basename "$f" .log).json"
    rejects="$work/reports-$stamp-$(basename "$f" .log).rejects.log"
    "$export_bin" --log "$f" --out "$out" --rejects "$rejects"
    if [[ -s "$rejects" ]]; then
      log "$f: records of another policy's views or tasks set aside in $rejects"
    fi
    exported+=("$out")
  done
  # One array of episodes, ids renumbered after the base data's so that they stay unique.
  reports="$work/reports-$stamp.json"
  if ((${#exported[@]})); then jq -s 'add // []' "${exported[@]}" >"$reports"; else echo '[]' >"$reports"; fi
  count=$(jq 'length' "$reports")
  log "exported $count episodes from ${#logs[@]} Report logs in $LCIO_REPORT_LOGS"
  if ((count < min_episodes)); then
    log "fewer than LCIO_MIN_REPORT_EPISODES=$min_episodes episodes: nothing to retrain on"
    exit 0
  fi
  data="$work/train-$stamp.json"
  if [[ -n "$base_data" ]]; then
    jq -s '.[0] as $base | (([$base[].id] | max) // -1) as $last
           | $base + [.[1] | to_entries[] | .value + {id: ($last + 1 + .key)}]' \
      "$base_data" "$reports" >"$data"
  else
    jq '[to_entries[] | .value + {id: .key}]' "$reports" >"$data"
  fi
fi
if [[ -z "$data" || ! -r "$data" ]]; then
  log "no training data: set LCIO_BASE_DATA and/or LCIO_REPORT_LOGS"
  exit 1
fi

out="$work/policy-$stamp.pt"
args=(
  "--algo=${LCIO_ALGO:-rc-ppo}"
  "--data=$data"
  "--timesteps=${LCIO_TIMESTEPS:-200000}"
  "--seed=${LCIO_SEED:-1}"
  "--out=$out"
)
log "$train_bin ${args[*]} $*"
"$train_bin" "${args[@]}" "$@"
[[ -s "$out" ]] || { log "$train_bin wrote no artifact at $out"; exit 1; }
log "trained $out"
if [[ -n "${LCIO_PUBLISH_DIR:-}" ]]; then
  "$publish" "$out" "$LCIO_PUBLISH_DIR"
fi
