#!/usr/bin/env bash
# Container entrypoint of the trainer (CronJob lcio-train: train once, on demand; CronJob
# lcio-retrain: retrain from the servers' Report logs and publish). CI runs this same script with
# locally built binaries (tests/deploy/check_retrain_gate.sh: the gated nightly retrain;
# tests/deploy/e2e_prometheus.sh: Report -> retrain -> publish -> hot reload). Extra arguments go
# to lcio-train and override these.
#
#   LCIO_TRAIN_BIN          default lcio-train on PATH
#   LCIO_EXPORT_BIN         default lcio-report-export on PATH (Report log -> M4A1-schema JSON)
#   LCIO_BASE_DATA          M4A1 JSON always trained on (default /usr/local/share/lcio/M4A1.json;
#                           set to "" to train on the Report logs alone)
#   LCIO_REPORT_LOGS        directory of Report logs (*.log, one per server pod, each read with
#                           its rotated predecessors *.log.NNNNNN; empty ones are fine); unset =
#                           none. Records of another policy's views/tasks are set aside in
#                           $LCIO_WORK_DIR/reports-STAMP.rejects.log
#   LCIO_MIN_REPORT_EPISODES  with LCIO_REPORT_LOGS: fewer exported episodes than this means
#                           nothing new to learn from, exit 0 without training (default 1)
#   LCIO_WORK_DIR           scratch and output directory (default /var/lib/lcio/work)
#   LCIO_TRAIN_CONFIG       training configuration (default the shipped tuned one,
#                           /usr/local/share/lcio/default_train_config.json; "" for lcio-train's
#                           defaults)
#   LCIO_ALGO, LCIO_TIMESTEPS, LCIO_SEED  when set, override the configuration's
#   LCIO_RESPONSE_MODEL     the decision model's response family (default pessimistic, as the
#                           shipped policy; a simulator flag, not a configuration key)
#   LCIO_PUBLISH_DIR        when set, the new artifact is published there with publish-policy.sh
#                           (atomic rename; running servers hot-reload it), but only if
#                           gate-policy.sh finds it no worse than the policy serving there;
#                           otherwise it goes to LCIO_CANARY_DIR with the gate's report
#   LCIO_CANARY_DIR         default: LCIO_PUBLISH_DIR/../canary
#   LCIO_GATE               "off" publishes without the gate (plumbing tests; the CronJob never
#                           sets it)
#   LCIO_GATE_HOLDOUT_SHARE with LCIO_REPORT_LOGS: share in [0, 1) of the exported conversations,
#                           the newest by first report time over all pods, kept out of training and
#                           given to the gate's lcio-eval (default 0.2)
#   LCIO_DECISION_LOGS      directory of decision logs (*.jsonl, each with its rotated files); joined with the Report logs by
#                           lcio-join for the gate's lcio-ope (LCIO_JOIN_BIN, default lcio-join)
#   LCIO_GATE_DATA, LCIO_GATE_JOINED  the gate's inputs given directly (they win over the above);
#                           LCIO_GATE_MARGIN, LCIO_EVAL_BIN, LCIO_OPE_BIN: see gate-policy.sh
set -euo pipefail

log() { echo "entrypoint-train: $*" >&2; }

train_bin="${LCIO_TRAIN_BIN:-lcio-train}"
export_bin="${LCIO_EXPORT_BIN:-lcio-report-export}"
base_data="${LCIO_BASE_DATA-/usr/local/share/lcio/M4A1.json}"
work="${LCIO_WORK_DIR:-/var/lib/lcio/work}"
min_episodes="${LCIO_MIN_REPORT_EPISODES:-1}"
here="$(dirname "$(readlink -f "$0")")"
publish="$here/publish-policy.sh"
[[ -x "$publish" ]] || publish="publish-policy.sh"
gate="$here/gate-policy.sh"
[[ -x "$gate" ]] || gate="gate-policy.sh"
train_config="${LCIO_TRAIN_CONFIG-/usr/local/share/lcio/default_train_config.json}"
gate_data="${LCIO_GATE_DATA:-}"
gate_joined="${LCIO_GATE_JOINED:-}"

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
  reports="$work/reports-$stamp.json"
  rejects="$work/reports-$stamp.rejects.log"
  # The newest LCIO_GATE_HOLDOUT_SHARE of the conversations, by first report time over every pod's
  # log, are held out of training for the gate's lcio-eval (unless LCIO_GATE_DATA is given).
  holdout_share="${LCIO_GATE_HOLDOUT_SHARE:-0.2}"
  holdout_args=()
  if [[ -z "$gate_data" ]]; then
    holdout_args=("--holdout_share=$holdout_share" "--holdout_out=$work/gate-$stamp.json")
  fi
  # With a base data set, its view count and tasks are the schema (a record of another policy's
  # views or tasks is a reject), and its episodes come first in the training data.
  base_args=()
  if [[ -n "$base_data" ]]; then base_args=("--base=$base_data"); fi
  if ((${#logs[@]})); then
    # One export over all logs: a conversation whose Reports went to two pods is one episode, and
    # the hold-out is the fleet's newest, not the last pod's. Flag lists are comma-separated.
    summary=$("$export_bin" --log="$(IFS=,; echo "${logs[*]}")" --out="$reports" \
      --rejects="$rejects" --allow_empty "${base_args[@]}" "${holdout_args[@]}")
    if [[ -s "$rejects" ]]; then
      log "records of another policy's views or tasks set aside in $rejects"
    fi
  else
    summary='{"episodes": 0, "held_out": 0, "held_out_since": ""}'
  fi
  count=$(jq -r '.episodes' <<<"$summary")
  held_out=$(jq -r '.held_out' <<<"$summary")
  log "exported $count episodes from ${#logs[@]} Report logs in $LCIO_REPORT_LOGS"
  if ((count < min_episodes)); then
    log "fewer than LCIO_MIN_REPORT_EPISODES=$min_episodes episodes: nothing to retrain on"
    exit 0
  fi
  if ((held_out > 0)); then
    gate_data="$work/gate-$stamp.json"
    gate_data_since=$(jq -r '.held_out_since' <<<"$summary")
    log "held out the newest $held_out exported conversations for the gate ($gate_data)," \
      "first reported since ${gate_data_since:-an unknown time}"
  fi
  # The base's episodes and the exported ones, numbered after the base's (the export merged them).
  if ((${#logs[@]})); then data="$reports"; fi
  # Only with a dated hold-out: without one every Report trains the candidate, and joined traffic
  # would score it on conversations it trained on (the gate then has no traffic: no evidence).
  if [[ -z "$gate_joined" && -n "${LCIO_DECISION_LOGS:-}" && -n "${gate_data_since:-}" ]]; then
    shopt -s nullglob
    decision_logs=("$LCIO_DECISION_LOGS"/*.jsonl)
    shopt -u nullglob
    if ((${#decision_logs[@]} && ${#logs[@]})); then
      gate_joined="$work/joined-$stamp.json"
      # The held-out conversations alone: the candidate trains on the others, and its simulator
      # is fitted on their responses, so joined traffic it trained on would favour it.
      # Flag lists are comma-separated (a repeated flag would replace, not add).
      "${LCIO_JOIN_BIN:-lcio-join}" --decisions="$(IFS=,; echo "${decision_logs[*]}")" \
        --reports="$(IFS=,; echo "${logs[*]}")" --out="$gate_joined" \
        --first_reported_since="$gate_data_since" \
        >"$work/joined-$stamp.summary.json"
      log "joined ${#decision_logs[@]} decision logs with the Report logs: $gate_joined"
    fi
  fi
fi
if [[ -z "$data" || ! -r "$data" ]]; then
  log "no training data: set LCIO_BASE_DATA and/or LCIO_REPORT_LOGS"
  exit 1
fi

out="$work/policy-$stamp.pt"
# The shipped tuned configuration unless told otherwise; flags only where asked for, since a flag
# given to lcio-train wins over the file.
args=("--data=$data" "--out=$out")
if [[ -n "$train_config" ]]; then
  [[ -r "$train_config" ]] || { log "training configuration '$train_config' not readable"; exit 1; }
  args+=("--config=$train_config")
fi
[[ -n "${LCIO_ALGO:-}" ]] && args+=("--algo=$LCIO_ALGO")
[[ -n "${LCIO_TIMESTEPS:-}" ]] && args+=("--timesteps=$LCIO_TIMESTEPS")
[[ -n "${LCIO_SEED:-}" ]] && args+=("--seed=$LCIO_SEED")
args+=("--response_model=${LCIO_RESPONSE_MODEL:-pessimistic}")
log "$train_bin ${args[*]} $*"
"$train_bin" "${args[@]}" "$@"
[[ -s "$out" ]] || { log "$train_bin wrote no artifact at $out"; exit 1; }
log "trained $out"
if [[ -n "${LCIO_PUBLISH_DIR:-}" ]]; then
  serving="$LCIO_PUBLISH_DIR/policy.pt"
  if [[ ! -s "$serving" ]]; then
    log "no policy serving in $LCIO_PUBLISH_DIR yet: publishing the first one"
    "$publish" "$out" "$LCIO_PUBLISH_DIR"
    exit 0
  fi
  if [[ "${LCIO_GATE:-on}" == off ]]; then
    log "LCIO_GATE=off: publishing without the gate"
    "$publish" "$out" "$LCIO_PUBLISH_DIR"
    exit 0
  fi
  canary="${LCIO_CANARY_DIR:-$(dirname "$LCIO_PUBLISH_DIR")/canary}"
  gate_dir="$work/gate-$stamp"
  set +e
  LCIO_GATE_DATA="$gate_data" LCIO_GATE_DATA_SINCE="${gate_data_since:-}" \
    LCIO_GATE_JOINED="$gate_joined" "$gate" "$out" "$serving" "$gate_dir"
  verdict=$?
  set -e
  case "$verdict" in
    0)
      log "gate: no worse than the serving policy ($gate_dir/gate-report.md): publishing"
      "$publish" "$out" "$LCIO_PUBLISH_DIR"
      ;;
    1)
      log "gate: worse than the serving policy, or no evidence: canary track ($canary)"
      "$publish" "$out" "$canary"
      cp "$gate_dir/gate-report.md" "$canary/gate-report.md"
      ;;
    *)
      log "gate failed (exit $verdict): nothing published"
      exit 1
      ;;
  esac
fi
