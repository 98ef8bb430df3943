#!/usr/bin/env bash
# Container entrypoint of lcio-server; CI runs this same script with locally built binaries
# (tests/deploy/e2e_prometheus.sh). Environment -> flags; extra arguments are appended and, being
# later on the command line, override these.
#
#   LCIO_SERVER_BIN       the binary (default: lcio-server on PATH)
#   LCIO_POLICY           policy artifact to serve; when unset, $LCIO_POLICY_DIR/policy.pt, seeded
#                         from $LCIO_DEFAULT_POLICY when the directory is writable and empty
#   LCIO_POLICY_DIR       directory publish-policy.sh writes into (default /var/lib/lcio/policy)
#   LCIO_DEFAULT_POLICY   policy baked into the image (/usr/local/share/lcio/default_policy.pt)
#   LCIO_LISTEN           gRPC address (default 0.0.0.0:50051)
#   LCIO_METRICS_LISTEN   Prometheus /metrics address (default 0.0.0.0:9464)
#   LCIO_TORCH_DEVICE     auto | cpu | cuda[:N] (default auto)
#   LCIO_DRAIN_TIMEOUT_S  SIGTERM drain deadline in seconds (default 20; keep the pod's
#                         terminationGracePeriodSeconds above preStop sleep + grace + drain + 2 s)
#   LCIO_SHUTDOWN_GRACE_MS
#                         on SIGTERM, how long health reports NOT_SERVING while calls are still
#                         answered, before new Decides are refused and the drain starts (default 0)
#   LCIO_MAX_CONNECTION_AGE_S
#                         connections older than this get a GOAWAY, so that round_robin clients
#                         re-resolve DNS and reach pods added since (default 0: never)
#   LCIO_REPORT_LOG       Report log file (enables Report); its directory is created
#   LCIO_DECISION_LOG     decision log file (docs/decision_log.md); its directory is created
#   LCIO_PROFILES, LCIO_LOG_LEVEL, LCIO_MAX_INFLIGHT, LCIO_BATCH_MAX, LCIO_BATCH_WAIT_US,
#   LCIO_MICRO_BATCHING,
#   LCIO_MAX_CONVERSATIONS, LCIO_CONVERSATION_IDLE_S, LCIO_WATCH_INTERVAL_MS,
#   LCIO_TLS_CERT, LCIO_TLS_KEY, LCIO_TLS_CLIENT_CA, LCIO_REPORT_QUEUE_MAX,
#   LCIO_REPORT_MAX_RECORD_BYTES, LCIO_REPORT_ROTATE_MB, LCIO_REPORT_MIN_FREE_MB,
#   LCIO_DECISION_LOG_QUEUE_MAX, LCIO_DECISION_LOG_ROTATE_MB, LCIO_DECISION_LOG_KEEP_FILES,
#   LCIO_DECISION_LOG_MIN_FREE_MB, LCIO_DECISION_LOG_COMMIT_MS, LCIO_EXPLORE, LCIO_SHADOW_POLICY,
#   LCIO_FLEET_TARGET, LCIO_FLEET_CONTROL, LCIO_FLEET_CONTROL_KP, LCIO_FLEET_CONTROL_KI,
#   LCIO_FLEET_CONTROL_MIN_SCALE, LCIO_FLEET_CONTROL_INITIAL_SCALE, LCIO_FLEET_CONTROL_EVERY,
#   LCIO_FLEET_WINDOW, LCIO_METRICS_BASIC_AUTH_FILE, LCIO_MAX_PROMPT_BYTES, LCIO_MAX_VIEWS
#                         passed as the flags of the same name
set -euo pipefail

log() { echo "entrypoint-server: $*" >&2; }

server_bin="${LCIO_SERVER_BIN:-lcio-server}"
if ! command -v "$server_bin" >/dev/null 2>&1; then
  log "server binary '$server_bin' not found"
  exit 127
fi
policy_dir="${LCIO_POLICY_DIR:-/var/lib/lcio/policy}"
default_policy="${LCIO_DEFAULT_POLICY:-/usr/local/share/lcio/default_policy.pt}"
publish="$(dirname "$(readlink -f "$0")")/publish-policy.sh"
[[ -x "$publish" ]] || publish="publish-policy.sh"

if [[ -n "${LCIO_POLICY:-}" ]]; then
  policy="$LCIO_POLICY"
elif [[ -f "$policy_dir/policy.pt" ]]; then
  policy="$policy_dir/policy.pt"
elif [[ -d "$policy_dir" && -w "$policy_dir" ]]; then
  # Serve from the directory, not from the baked-in path, so that a later publish is hot-reloaded.
  "$publish" --if-absent "$default_policy" "$policy_dir" >&2
  policy="$policy_dir/policy.pt"
else
  log "no $policy_dir/policy.pt and the directory is not writable: serving the baked-in" \
    "$default_policy, which is never replaced (publish into a writable policy directory to roll policies)"
  policy="$default_policy"
fi
if [[ ! -r "$policy" ]]; then
  log "policy '$policy' is not readable"
  exit 1
fi

flags=(
  "--policy=$policy"
  "--listen=${LCIO_LISTEN:-0.0.0.0:50051}"
  "--metrics_listen=${LCIO_METRICS_LISTEN:-0.0.0.0:9464}"
  "--torch_device=${LCIO_TORCH_DEVICE:-auto}"
  "--drain_timeout_s=${LCIO_DRAIN_TIMEOUT_S:-20}"
)
# The server makes a log's missing directory itself, and syncs its entry in
# its parent (a `mkdir -p` here was not synced: a power loss could take the
# directory and the records acknowledged in it).
if [[ -n "${LCIO_REPORT_LOG:-}" ]]; then
  flags+=("--report_log=$LCIO_REPORT_LOG")
fi
if [[ -n "${LCIO_DECISION_LOG:-}" ]]; then
  flags+=("--decision_log=$LCIO_DECISION_LOG")
fi
add_flag() {  # add_flag ENV_NAME flag_name: passes the variable when it is set and non-empty
  local value="${!1:-}"
  if [[ -n "$value" ]]; then flags+=("--$2=$value"); fi
}
add_flag LCIO_SHUTDOWN_GRACE_MS shutdown_grace_ms
add_flag LCIO_MAX_CONNECTION_AGE_S max_connection_age_s
add_flag LCIO_PROFILES profiles
add_flag LCIO_LOG_LEVEL log_level
add_flag LCIO_MAX_INFLIGHT max_inflight
add_flag LCIO_BATCH_MAX batch_max
add_flag LCIO_BATCH_WAIT_US batch_wait_us
add_flag LCIO_MICRO_BATCHING micro_batching
add_flag LCIO_MAX_CONVERSATIONS max_conversations
add_flag LCIO_CONVERSATION_IDLE_S conversation_idle_s
add_flag LCIO_WATCH_INTERVAL_MS watch_interval_ms
add_flag LCIO_TLS_CERT tls_cert
add_flag LCIO_TLS_KEY tls_key
add_flag LCIO_TLS_CLIENT_CA tls_client_ca
add_flag LCIO_REPORT_QUEUE_MAX report_queue_max
add_flag LCIO_REPORT_MAX_RECORD_BYTES report_max_record_bytes
add_flag LCIO_REPORT_ROTATE_MB report_rotate_mb
add_flag LCIO_REPORT_MIN_FREE_MB report_min_free_mb
add_flag LCIO_DECISION_LOG_QUEUE_MAX decision_log_queue_max
add_flag LCIO_DECISION_LOG_ROTATE_MB decision_log_rotate_mb
add_flag LCIO_DECISION_LOG_KEEP_FILES decision_log_keep_files
add_flag LCIO_DECISION_LOG_MIN_FREE_MB decision_log_min_free_mb
add_flag LCIO_DECISION_LOG_COMMIT_MS decision_log_commit_ms
add_flag LCIO_EXPLORE explore
add_flag LCIO_SHADOW_POLICY shadow_policy
add_flag LCIO_FLEET_TARGET fleet_target
add_flag LCIO_FLEET_CONTROL fleet_control
add_flag LCIO_FLEET_CONTROL_KP fleet_control_kp
add_flag LCIO_FLEET_CONTROL_KI fleet_control_ki
add_flag LCIO_FLEET_CONTROL_MIN_SCALE fleet_control_min_scale
add_flag LCIO_FLEET_CONTROL_INITIAL_SCALE fleet_control_initial_scale
add_flag LCIO_FLEET_CONTROL_EVERY fleet_control_every
add_flag LCIO_FLEET_WINDOW fleet_window
add_flag LCIO_METRICS_BASIC_AUTH_FILE metrics_basic_auth_file
add_flag LCIO_MAX_PROMPT_BYTES max_prompt_bytes
add_flag LCIO_MAX_VIEWS max_views

log "exec $server_bin ${flags[*]} $*"
# exec: the server itself receives SIGTERM (from tini or the test) and drains.
exec "$server_bin" "${flags[@]}" "$@"
