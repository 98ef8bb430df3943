#!/usr/bin/env bash
# Retraining from Reports: the servers' Report logs -> one training data set
# (the base data's episodes, then the exported ones) -> a new policy ->
# published where the servers hot-reload it.
#
#   examples/retrain_from_reports.sh REPORT_LOG[,REPORT_LOG...] POLICY_DIR [lcio-train flags...]
#
#   LCIO_BIN       directory of the lcio binaries (default: build, as built by tools/test.sh)
#   LCIO_BASE      base data (default data/M4A1.json; "" to train on the Reports alone)
#   LCIO_WORK      scratch directory (default: a new temporary one)
# Needs: lcio-report-export, lcio-train, lcio-policy-info, deploy/docker/publish-policy.sh.
set -euo pipefail
if (($# < 2)); then
  sed -n '2,12p' "$0" >&2
  exit 2
fi
logs=$1 policy_dir=$2
shift 2
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${LCIO_BIN:-$repo/build}
base=${LCIO_BASE-$repo/data/M4A1.json}
work=${LCIO_WORK:-$(mktemp -d)}
mkdir -p "$work"

# 1. Merge: stream the logs (and their rotated files) into M4A1 JSON after the
#    base's episodes. Records of another policy's views or tasks, and turns past
#    a gap in their conversation, go to the rejects log instead.
merge=(--log "$logs" --out "$work/train.json" --rejects "$work/rejects.log")
[[ -n "$base" ]] && merge+=(--base "$base")
"$bin/server/lcio-report-export" "${merge[@]}" | tee "$work/export.json"
[[ -s "$work/rejects.log" ]] && echo "retrain: set aside in $work/rejects.log" >&2

# 2. Retrain. Few episodes leave no test side: train on all of them.
episodes=$(jq '.base_episodes + .episodes' "$work/export.json")
split=random
((episodes < 10)) && split=none
"$bin/tools/lcio-train" --data "$work/train.json" --split "$split" --out "$work/policy.pt" "$@"

# 3. Publish (validated as the servers load it, then an atomic rename; running servers watching
#    POLICY_DIR/policy.pt reload it).
LCIO_POLICY_INFO=${LCIO_POLICY_INFO:-$bin/tools/lcio-policy-info} "$repo/deploy/docker/publish-policy.sh" "$work/policy.pt" "$policy_dir"
