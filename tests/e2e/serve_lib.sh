# shellcheck shell=bash
# Sourced by the end-to-end scripts: starts lcio-server on 127.0.0.1 with an
# ephemeral port and stops it. Bounded: the server must listen within
# LCIO_START_TIMEOUT_S (default 60) seconds or the script fails.
#   lcio_start_server SERVER_BIN LOG_FILE [server flags...]   sets LCIO_PORT, LCIO_PID
#   lcio_stop_server                                           SIGTERM, then waits
lcio_start_server() {
  local bin=$1 log=$2
  shift 2
  # Created here, not by the background job's redirection, which may not
  # have run yet when the loop below first reads it.
  : >"$log"
  "$bin" --listen=127.0.0.1:0 --metrics_listen= "$@" >"$log" 2>&1 &
  LCIO_PID=$!
  local deadline=$((SECONDS + ${LCIO_START_TIMEOUT_S:-60}))
  LCIO_PORT=""
  while [[ -z "$LCIO_PORT" ]]; do
    # The server prints "lcio-server listening on HOST:PORT" once it serves.
    LCIO_PORT=$(sed -n 's/^lcio-server listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$log")
    if [[ -n "$LCIO_PORT" ]]; then break; fi
    if ! kill -0 "$LCIO_PID" 2>/dev/null || ((SECONDS > deadline)); then
      echo "lcio-server did not start; its log:" >&2
      cat "$log" >&2
      return 1
    fi
    sleep 0.2
  done
}

lcio_stop_server() {
  if [[ -n "${LCIO_PID:-}" ]] && kill -0 "$LCIO_PID" 2>/dev/null; then
    kill -TERM "$LCIO_PID"
    wait "$LCIO_PID" || true
  fi
  LCIO_PID=""
}
