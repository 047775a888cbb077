#!/usr/bin/env bash
# The keep-alive close race in one run: nginx, HAProxy and needle, each with its default
# upstream keep-alive behaviour, in front of the same upstream through the same kind of delay
# line (1 ms each way; one delay line per proxy, so each proxy's upstream connections are
# counted apart). Two upstreams:
#   express  examples/app (Node 20), KEEP_ALIVE_TIMEOUT_MS=1000 (Node says "Keep-Alive:
#            timeout=1" and closes idle connections ~1 s late, ~2 s); shortened from Node's
#            default 5 s to keep the run short (RACE_EXPRESS_KEEPALIVE_MS to change it)
#   nginx    nginx as the app server, keepalive_timeout 1s, no Keep-Alive hint
# Proxies:
#   nginx    upstream keepalive 32, proxy_http_version 1.1, Connection "", all else default
#   haproxy  defaults (http-reuse safe), timeouts set
#   needle   quick mode (--upstream, default cluster config), 1 worker
# The three proxies run at the same time, each driven by bench/race_load.py: VUs virtual users
# with one keep-alive client connection each, GET and POST alternating, rounds alternating a
# short gap and a gap swept across the upstream's measured idle close time (-20 ms .. +8 ms).
#
# The same run also gives the reuse figure: upstream connections opened per 1,000 requests
# (the delay line's accept count), and needle's ratio to nginx's and HAProxy's.
#
#   bench/race.sh                      # 32 VUs x 64 rounds = 2048 requests per proxy per upstream
#   VUS=32 ROUNDS=64 bench/race.sh     # (environment overrides)
#   RACE_CASES=nginx bench/race.sh     # one upstream only (express, nginx; both by default)
#   RACE_CASES=restart bench/race.sh   # issue 17: needle alone in front of nginx (keepalive 10 s,
#                                      # no hint), load, nginx restarted right after it, load
#                                      # again: conns per 1k requests before and after the
#                                      # restart must match (RESTART_PHASES load phases after)
#
# The table is also written to bench/out/race-<UTC time>.txt.
#
# Needs: nginx, haproxy, node (examples/app with node_modules), python3, a C++20 compiler if
# the needle-delay-line target is not built. NEEDLE_BIN defaults to build/race/src/needle, else
# build/release/src/needle.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VUS="${VUS:-32}"
ROUNDS="${ROUNDS:-64}"
DELAY_MS="${DELAY_MS:-1}"
EXPRESS_KEEPALIVE_MS="${RACE_EXPRESS_KEEPALIVE_MS:-1000}"
RACE_CASES="${RACE_CASES:-express nginx}"
NGINX_BIN="${NGINX_BIN:-/usr/sbin/nginx}"
HAPROXY_BIN="${HAPROXY_BIN:-/usr/sbin/haproxy}"
if [[ -z "${NEEDLE_BIN:-}" ]]; then
  for candidate in "$ROOT/build/race/src/needle" "$ROOT/build/release/src/needle"; do
    if [[ -x "$candidate" ]]; then NEEDLE_BIN="$candidate"; break; fi
  done
fi
[[ -x "${NEEDLE_BIN:-}" ]] || { echo "race.sh: needle binary not found; set NEEDLE_BIN" >&2; exit 1; }

TMP="$(mktemp -d /tmp/needle-race-XXXXXX)"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ -n "${RACE_KEEP_TMP:-}" ]] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "race: $*" >&2; }
die() { echo "race: $*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
wait_port() {  # PORT [PID]
  local i
  for i in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    if [[ -n "${2:-}" ]] && ! kill -0 "$2" 2>/dev/null; then return 1; fi
    sleep 0.05
  done
  return 1
}
start_bg() {  # NAME CMD... ; sets LAST_PID
  local name="$1"; shift
  "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# ---- the delay line binary -------------------------------------------------------------------
DELAY_BIN=""
for candidate in "$ROOT"/build/*/bench/needle-delay-line; do
  if [[ -x "$candidate" ]]; then DELAY_BIN="$candidate"; break; fi
done
if [[ -z "$DELAY_BIN" ]]; then
  DELAY_BIN="$TMP/needle-delay-line"
  log "building the delay line ($DELAY_BIN)"
  dl_sources=("$ROOT/bench/delay_line_main.cc" "$ROOT/tests/support/delay_line.cc")
  # The DelayLine may sit on the tests' PeerLoop (poll loop with a wake-up eventfd).
  [[ -f "$ROOT/tests/support/peer_loop.cc" ]] && dl_sources+=("$ROOT/tests/support/peer_loop.cc")
  "${CXX:-c++}" -std=c++20 -O2 -pthread -I"$ROOT/tests" "${dl_sources[@]}" -o "$DELAY_BIN"
fi

start_delay_line() {  # NAME TARGET_PORT ; sets DL_PORT
  local name="$1" target="$2" i
  start_bg "dl-$name" "$DELAY_BIN" "$target" "$DELAY_MS" "$TMP/dl-$name.stats"
  for i in $(seq 1 100); do
    DL_PORT="$(head -n1 "$TMP/dl-$name.out" 2>/dev/null || true)"
    [[ -n "$DL_PORT" ]] && return 0
    sleep 0.05
  done
  die "delay line $name did not start: $(cat "$TMP/dl-$name.err")"
}

# ---- upstreams ------------------------------------------------------------------------------
start_express() {  # sets UP_PORT
  [[ -d "$ROOT/examples/app/node_modules" ]] ||
    (cd "$ROOT/examples/app" && npm install --no-audit --no-fund >/dev/null)
  UP_PORT="$(free_port)"
  start_bg express env PORT="$UP_PORT" KEEP_ALIVE_TIMEOUT_MS="$EXPRESS_KEEPALIVE_MS" \
    node "$ROOT/examples/app/server.js"
  wait_port "$UP_PORT" "$LAST_PID" || die "express did not start: $(cat "$TMP/express.err")"
  UP_PID="$LAST_PID"
}

nginx_top() {  # DIR
  cat <<CONF
daemon off;
master_process on;
$( [[ $(id -u) -eq 0 ]] && echo "user root;" )
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
CONF
}
nginx_paths() {  # DIR
  cat <<CONF
  access_log off;
  client_body_temp_path $1/client_body;
  proxy_temp_path $1/proxy;
  fastcgi_temp_path $1/fastcgi;
  uwsgi_temp_path $1/uwsgi;
  scgi_temp_path $1/scgi;
CONF
}

start_nginx_app() {  # [KEEPALIVE_TIMEOUT] ; sets UP_PORT
  local dir="$TMP/nginx-app"
  mkdir -p "$dir"
  UP_PORT="$(free_port)"
  {
    nginx_top "$dir"
    echo "http {"
    nginx_paths "$dir"
    cat <<CONF
  keepalive_timeout ${1:-1s};
  server {
    listen 127.0.0.1:$UP_PORT;
    location = /hello { default_type text/plain; return 200 "hello\n"; }
    location = /orders { default_type application/json; return 201 '{"ok":true}'; }
  }
}
CONF
  } >"$dir/nginx.conf"
  start_bg nginx-app "$NGINX_BIN" -p "$dir" -c "$dir/nginx.conf"
  wait_port "$UP_PORT" "$LAST_PID" || die "nginx app did not start: $(cat "$dir/error.log")"
  UP_PID="$LAST_PID"
}

# The upstream's idle close, measured directly (no proxy, no delay line): median over 3
# connections of the time from the end of a response to the upstream's FIN, in ms.
measure_close_ms() {  # PORT
  python3 - "$1" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
samples = []
for _ in range(3):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: race\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"hello\n"):
        data += s.recv(4096)
    t = time.monotonic()
    s.settimeout(30)
    while s.recv(4096):
        pass
    samples.append((time.monotonic() - t) * 1000)
    s.close()
samples.sort()
print(f"{samples[1]:.1f}")
PY
}

# ---- proxies --------------------------------------------------------------------------------
start_nginx_proxy() {  # TARGET ; sets PX_PORT
  local dir="$TMP/nginx-proxy-$CASE"
  mkdir -p "$dir"
  PX_PORT="$(free_port)"
  {
    nginx_top "$dir"
    echo "http {"
    nginx_paths "$dir"
    cat <<CONF
  upstream app {
    server 127.0.0.1:$1;
    keepalive 32;
  }
  server {
    listen 127.0.0.1:$PX_PORT;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
  } >"$dir/nginx.conf"
  start_bg "nginx-proxy-$CASE" "$NGINX_BIN" -p "$dir" -c "$dir/nginx.conf"
  wait_port "$PX_PORT" "$LAST_PID" || die "nginx proxy did not start: $(cat "$dir/error.log")"
  PX_PID="$LAST_PID"
}

start_haproxy() {  # TARGET ; sets PX_PORT
  local dir="$TMP/haproxy-$CASE"
  mkdir -p "$dir"
  PX_PORT="$(free_port)"
  cat >"$dir/haproxy.cfg" <<CONF
global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:$PX_PORT
  default_backend app
backend app
  server app1 127.0.0.1:$1
CONF
  start_bg "haproxy-$CASE" "$HAPROXY_BIN" -f "$dir/haproxy.cfg" -db
  wait_port "$PX_PORT" "$LAST_PID" || die "haproxy did not start: $(cat "$TMP/haproxy-$CASE.err")"
  PX_PID="$LAST_PID"
}

start_needle() {  # TARGET ; sets PX_PORT
  PX_PORT="$(free_port)"
  start_bg "needle-$CASE" "$NEEDLE_BIN" run --listen "127.0.0.1:$PX_PORT" \
    --upstream "127.0.0.1:$1" --workers 1 --admin off --access-log "$TMP/needle-$CASE.access.log"
  wait_port "$PX_PORT" "$LAST_PID" || die "needle did not start: $(cat "$TMP/needle-$CASE.err")"
  PX_PID="$LAST_PID"
}

# ---- one upstream, three proxies at once ----------------------------------------------------
ROWS=()
REUSE_LINES=()
run_case() {  # CASE (express|nginx)
  CASE="$1"
  case "$CASE" in
    express) start_express ;;
    nginx) start_nginx_app ;;
  esac
  local close_ms
  close_ms="$(measure_close_ms "$UP_PORT")"
  log "$CASE upstream on $UP_PORT closes idle connections after ${close_ms} ms"
  local proxy px_pids=() load_pids=()
  local -A port_of per_1k
  for proxy in nginx haproxy needle; do
    start_delay_line "$CASE-$proxy" "$UP_PORT"
    case "$proxy" in
      nginx) start_nginx_proxy "$DL_PORT" ;;
      haproxy) start_haproxy "$DL_PORT" ;;
      needle) start_needle "$DL_PORT" ;;
    esac
    port_of[$proxy]="$PX_PORT"
    px_pids+=("$PX_PID")
  done
  log "$CASE: $VUS VUs x $ROUNDS rounds against each proxy (all three at once)"
  local seed=1
  for proxy in nginx haproxy needle; do
    python3 "$ROOT/bench/race_load.py" --port "${port_of[$proxy]}" --vus "$VUS" \
      --rounds "$ROUNDS" --close-ms "$close_ms" --seed "$seed" --label "$proxy" \
      >"$TMP/load-$CASE-$proxy.json" 2>"$TMP/load-$CASE-$proxy.err" &
    load_pids+=($!)
    seed=$((seed + 1))
  done
  local pid
  for pid in "${load_pids[@]}"; do wait "$pid" || die "load generator failed: $(cat "$TMP"/load-"$CASE"-*.err)"; done
  sleep 0.3  # delay-line stats are rewritten every 100 ms
  for proxy in nginx haproxy needle; do
    local stats json
    stats="$(cat "$TMP/dl-$CASE-$proxy.stats")"
    json="$(cat "$TMP/load-$CASE-$proxy.json")"
    ROWS+=("$(python3 - "$CASE" "$close_ms" "$stats" "$json" <<'PY'
import json, sys
case, close_ms, stats, j = sys.argv[1], sys.argv[2], sys.argv[3].split(), json.loads(sys.argv[4])
errors = ",".join(f"{k}:{v}" for k, v in sorted(j["errors"].items())) or "-"
statuses = ",".join(f"{k}:{v}" for k, v in j["statuses"].items() if not k.startswith("2")) or "-"
per_1k = int(stats[1]) * 1000 / j["requests"] if j["requests"] else float("nan")
print(f"| {case} ({close_ms} ms) | {j['label']} | {j['requests']} | {j['non_2xx']} ({statuses}) "
      f"| {j['client_errors']} ({errors}) | {j['failed_get']} / {j['failed_post']} "
      f"| {stats[1]} | {per_1k:.0f} | {j['seconds']} |")
PY
)")
    per_1k[$proxy]="$(python3 -c 'import json, sys
j = json.loads(sys.argv[2]); n = j["requests"]
print(f"{int(sys.argv[1].split()[1]) * 1000 / n:.1f}" if n else "0")' "$stats" "$json")"
  done
  local vs_nginx vs_haproxy
  vs_nginx="$(awk -v a="${per_1k[needle]}" -v b="${per_1k[nginx]}" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }')"
  vs_haproxy="$(awk -v a="${per_1k[needle]}" -v b="${per_1k[haproxy]}" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }')"
  REUSE_LINES+=("$CASE: upstream conns opened per 1k requests: needle ${per_1k[needle]}, nginx ${per_1k[nginx]}, haproxy ${per_1k[haproxy]}; needle/nginx $vs_nginx, needle/haproxy $vs_haproxy")
  for pid in "${px_pids[@]}"; do stop_pid "$pid"; done
  stop_pid "$UP_PID"
  if [[ -f "$TMP/needle-$CASE.access.log" ]]; then
    local races
    races="$(grep -c reset_before_response_on_reused "$TMP/needle-$CASE.access.log" || true)"
    log "$CASE: needle access log: $races request(s) met a closed pooled connection (all retried or not, see non-2xx)"
  fi
}

# ---- issue 17: an upstream restart must not turn pooling off ---------------------------------
# needle alone (quick mode) -> delay line -> nginx (keepalive_timeout 10s, no hint). One load
# phase, then nginx is stopped gracefully (SIGQUIT closes its idle keep-alive connections, which
# are tens of ms old) and started again, then RESTART_PHASES load phases. Each phase's row gives
# the upstream connections the delay line accepted per 1,000 requests: after the restart it must
# return to the first phase's figure (before decision 0006 it stayed near 1,000: no reuse).
run_restart_case() {
  CASE=restart
  start_nginx_app 10s
  local dir="$TMP/nginx-app" phases="${RESTART_PHASES:-3}" phase accepted_before accepted json
  start_delay_line restart-needle "$UP_PORT"
  start_needle "$DL_PORT"
  local px_pid="$PX_PID"
  sleep 0.2  # delay-line stats are rewritten every 100 ms
  for phase in $(seq 0 "$phases"); do
    if [[ "$phase" -eq 1 ]]; then
      sleep 0.03
      kill -QUIT "$UP_PID"; wait "$UP_PID" 2>/dev/null || true
      start_bg nginx-app-restarted "$NGINX_BIN" -p "$dir" -c "$dir/nginx.conf"
      UP_PID="$LAST_PID"
      wait_port "$UP_PORT" "$UP_PID" || die "nginx app did not restart: $(cat "$dir/error.log")"
      log "restart: nginx restarted"
    fi
    accepted_before="$(cut -d' ' -f2 "$TMP/dl-restart-needle.stats")"
    python3 "$ROOT/bench/race_load.py" --port "$PX_PORT" --vus "$VUS" --rounds "$ROUNDS" \
      --close-ms 30 --seed "$((phase + 1))" --label "needle-phase-$phase" \
      >"$TMP/load-restart-$phase.json" 2>"$TMP/load-restart-$phase.err" ||
      die "load generator failed: $(cat "$TMP/load-restart-$phase.err")"
    sleep 0.3
    accepted="$(cut -d' ' -f2 "$TMP/dl-restart-needle.stats")"
    json="$(cat "$TMP/load-restart-$phase.json")"
    REUSE_LINES+=("$(python3 - "$phase" "$((accepted - accepted_before))" "$json" <<'PY'
import json, sys
phase, opened, j = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
n = j["requests"]
when = "before the restart" if phase == "0" else f"after the restart, phase {phase}"
print(f"restart: {when}: {n} requests, {j['non_2xx']} non-2xx, {j['client_errors']} client "
      f"errors, {opened} upstream conns opened ({opened * 1000 / n if n else 0:.1f} per 1k)")
PY
)")
  done
  stop_pid "$px_pid"
  stop_pid "$UP_PID"
}

log "needle: $NEEDLE_BIN; delay line: $DELAY_BIN (${DELAY_MS} ms each way)"
for c in $RACE_CASES; do
  if [[ "$c" == restart ]]; then run_restart_case; else run_case "$c"; fi
done

mkdir -p "$ROOT/bench/out"
REPORT="$ROOT/bench/out/race-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo
  echo "race: $VUS VUs x $ROUNDS rounds per proxy per upstream, delay line ${DELAY_MS} ms each way; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| upstream (idle close) | proxy | requests | non-2xx | client errors | failed GET / POST | upstream conns opened | conns per 1k requests | seconds |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  echo
  printf '%s\n' "${REUSE_LINES[@]}"
} | tee "$REPORT"
log "report written to $REPORT"
