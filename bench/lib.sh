#!/usr/bin/env bash
# Shared helpers for needle's benchmarks: peers on free loopback ports in one temp dir, all
# stopped on exit, and a wrk runner that reports "rps p50_ms p99_ms errors".
# Source it: `source "$(dirname "$0")/lib.sh"`; then bench_init.
set -euo pipefail

BENCH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NEEDLE_BIN="${NEEDLE_BIN:-$BENCH_ROOT/build/release/src/needle}"
NGINX_BIN="${NGINX_BIN:-/usr/sbin/nginx}"
HAPROXY_BIN="${HAPROXY_BIN:-/usr/sbin/haproxy}"
BENCH_PIDS=()

# With two or more cores: servers on core 0, wrk on core 1 (SERVER_CPUS / WRK_CPUS override).
if command -v taskset >/dev/null 2>&1 && (($(nproc) >= 2)); then
  SERVER_CPUS="${SERVER_CPUS:-0}"
  WRK_CPUS="${WRK_CPUS:-1}"
else
  SERVER_CPUS="${SERVER_CPUS:-}"
  WRK_CPUS="${WRK_CPUS:-}"
fi

log() { echo "bench: $*" >&2; }
die() { echo "bench: $*" >&2; exit 1; }

bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${BENCH_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n "${BENCH_TMP:-}" && -d "$BENCH_TMP" && -z "${BENCH_KEEP_TMP:-}" ]]; then
    rm -rf "$BENCH_TMP"
  fi
}

bench_init() {
  BENCH_TMP="$(mktemp -d /tmp/needle-bench-XXXXXX)"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  local tool
  for tool in wrk python3 curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: run scripts/install-deps.sh"
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_port PORT [PID]: until 127.0.0.1:PORT accepts (BENCH_START_TIMEOUT_S, 10 s by default);
# fails early if PID died.
wait_port() {
  local port="$1" pid="${2:-}" i
  for i in $(seq 1 $((${BENCH_START_TIMEOUT_S:-10} * 20))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.05
  done
  return 1
}

# Words put before every server command (start_bg, start_needle), e.g. a valgrind command line;
# set it around one start and reset it: SERVER_WRAPPER=(valgrind --tool=callgrind).
SERVER_WRAPPER=()

# start_bg NAME CMD...: starts CMD pinned to the server cores, logs to $BENCH_TMP/NAME.log.
# Not through a function: $! must be the server itself (taskset and valgrind exec it), so kill
# reaches it.
start_bg() {
  local name="$1"
  shift
  local cmd=("${SERVER_WRAPPER[@]}" "$@")
  if [[ -n "$SERVER_CPUS" ]]; then cmd=(taskset -c "$SERVER_CPUS" "${cmd[@]}"); fi
  "${cmd[@]}" >"$BENCH_TMP/$name.log" 2>&1 &
  LAST_PID=$!
  BENCH_PIDS+=("$LAST_PID")
}

# nginx_common DIR [WORKERS] [MASTER]: the top of an nginx.conf whose files all live in DIR;
# WORKERS worker processes (1), master_process MASTER (on; "off" runs one process, the worker
# itself, which is what valgrind and RSS sampling want). NGINX_WORKER_CONNECTIONS (8192).
nginx_common() {
  local dir="$1" workers="${2:-1}" master="${3:-on}"
  local conns="${NGINX_WORKER_CONNECTIONS:-8192}"
  cat <<CONF
daemon off;
master_process $master;
$( [[ $(id -u) -eq 0 ]] && echo "user root;" )
worker_processes $workers;
worker_rlimit_nofile $((conns * 2 + 64));
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $conns; }
CONF
}

nginx_http_common() {
  local dir="$1"
  cat <<CONF
  default_type text/plain;
  access_log off;
  client_body_temp_path $dir/client_body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
CONF
}

# start_nginx_upstream [WORKERS]: sets UPSTREAM_PORT, UPSTREAM_DIR and UPSTREAM_PID. Serves /12b
# (12 bytes), /4k and /256k (files), /50m (the file UPSTREAM_DIR/50m if a script writes it), and
# takes any request body at /sink: read whole (buffered by nginx's proxy module, which reads the
# body before it forwards; a plain `return` would answer before the body is in), then dropped by
# an inner server on a unix socket that answers 200 "ok\n". Keep-alive: UPSTREAM_KEEPALIVE_TIMEOUT
# (75s), UPSTREAM_KEEPALIVE_REQUESTS (1000000). stop_nginx_upstream and run_nginx_upstream stop
# it and start it again in place (same port, same files).
start_nginx_upstream() {
  local workers="${1:-1}" dir="$BENCH_TMP/upstream"
  UPSTREAM_DIR="$dir"
  mkdir -p "$dir"
  [[ -x "$NGINX_BIN" ]] || die "nginx is missing: run scripts/install-deps.sh"
  head -c 4096 /dev/zero | tr '\0' 'k' >"$dir/4k"
  head -c 262144 /dev/zero | tr '\0' 'm' >"$dir/256k"
  UPSTREAM_PORT="$(free_port)"
  {
    nginx_common "$dir" "$workers"
    echo "http {"
    nginx_http_common "$dir"
    cat <<CONF
  sendfile on;
  client_max_body_size 0;
  keepalive_timeout ${UPSTREAM_KEEPALIVE_TIMEOUT:-75s};
  keepalive_requests ${UPSTREAM_KEEPALIVE_REQUESTS:-1000000};
  server {
    listen 127.0.0.1:$UPSTREAM_PORT reuseport backlog=4096;
    location = /12b { return 200 "hello world\n"; }
    location = /4k { default_type application/octet-stream; alias $dir/4k; }
    location = /256k { default_type application/octet-stream; alias $dir/256k; }
    location = /50m { default_type application/octet-stream; alias $dir/50m; }
    location = /sink { proxy_pass http://unix:$dir/sink.sock:/; }
  }
  server {
    listen unix:$dir/sink.sock;
    location / { return 200 "ok\n"; }
  }
}
CONF
  } >"$dir/nginx.conf"
  run_nginx_upstream
}

# run_nginx_upstream: starts the nginx upstream that start_nginx_upstream configured (again,
# after stop_nginx_upstream) on the same UPSTREAM_PORT; sets UPSTREAM_PID (and LAST_PID).
run_nginx_upstream() {
  start_bg upstream "$NGINX_BIN" -p "$UPSTREAM_DIR" -c "$UPSTREAM_DIR/nginx.conf"
  UPSTREAM_PID="$LAST_PID"
  wait_port "$UPSTREAM_PORT" "$UPSTREAM_PID" || die "nginx upstream did not start: $(cat "$BENCH_TMP/upstream.log" "$UPSTREAM_DIR/error.log" 2>/dev/null)"
}

# stop_nginx_upstream: stops the nginx upstream (SIGTERM) and waits until it is gone.
stop_nginx_upstream() {
  kill -TERM "$UPSTREAM_PID" 2>/dev/null || true
  wait "$UPSTREAM_PID" 2>/dev/null || true
}

# Equal work: needle passes the client's Host through and adds X-Forwarded-For,
# X-Forwarded-Proto, Via and X-Request-Id (32 hex digits) to every request it forwards, and the
# upstream parses them. With EQUAL_HEADERS=1 (the default) the nginx and HAProxy proxies are
# configured to send the same fields, as an operator would who needs them; EQUAL_HEADERS=0 runs
# them bare (nginx: Host "app" and nothing added; HAProxy: nothing added).
EQUAL_HEADERS="${EQUAL_HEADERS:-1}"

nginx_proxy_headers() {
  ((EQUAL_HEADERS)) || return 0
  cat <<'CONF'
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header Via "1.1 nginx";
      proxy_set_header X-Request-Id $request_id;
CONF
}

haproxy_proxy_headers() {
  ((EQUAL_HEADERS)) || return 0
  cat <<'CONF'
  option forwardfor
  http-request set-header X-Forwarded-Proto http
  http-request add-header Via "1.1 haproxy"
  unique-id-format %[uuid]
  unique-id-header X-Request-Id
CONF
}

# start_nginx_proxy UPSTREAM_PORT [WORKERS] [NAME] [MASTER]: sets NGINX_PORT (and LAST_PID).
# WORKERS worker processes (1), upstream keepalive NGINX_KEEPALIVE (1024, as needle's default
# max_idle_per_host: enough idle connections for every benchmark's concurrency), no body size
# limit; NAME (nginx-proxy) names its directory and log, so several can run at once; MASTER as
# in nginx_common; request headers as EQUAL_HEADERS says.
start_nginx_proxy() {
  local upstream_port="$1" workers="${2:-1}" name="${3:-nginx-proxy}" master="${4:-on}"
  local dir="$BENCH_TMP/$name"
  mkdir -p "$dir"
  NGINX_PORT="$(free_port)"
  {
    nginx_common "$dir" "$workers" "$master"
    echo "http {"
    nginx_http_common "$dir"
    cat <<CONF
  keepalive_requests 1000000;
  client_max_body_size 0;
  upstream app {
    server 127.0.0.1:$upstream_port;
    keepalive ${NGINX_KEEPALIVE:-1024};
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
$(nginx_proxy_headers)
    }
  }
}
CONF
  } >"$dir/nginx.conf"
  start_bg "$name" "$NGINX_BIN" -p "$dir" -c "$dir/nginx.conf"
  wait_port "$NGINX_PORT" "$LAST_PID" || die "nginx proxy did not start: $(cat "$BENCH_TMP/$name.log" "$dir/error.log" 2>/dev/null)"
}

# start_haproxy UPSTREAM_PORT [NBTHREAD] [NAME]: sets HAPROXY_PORT (and LAST_PID).
# nbthread NBTHREAD (1), http-reuse always; NAME (haproxy) names its directory and log;
# request headers as EQUAL_HEADERS says.
start_haproxy() {
  local upstream_port="$1" threads="${2:-1}" name="${3:-haproxy}"
  local dir="$BENCH_TMP/$name"
  mkdir -p "$dir"
  [[ -x "$HAPROXY_BIN" ]] || die "haproxy is missing: run scripts/install-deps.sh"
  HAPROXY_PORT="$(free_port)"
  cat >"$dir/haproxy.cfg" <<CONF
global
  nbthread $threads
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 60s
frontend fe
  bind 127.0.0.1:$HAPROXY_PORT
$(haproxy_proxy_headers)
  default_backend app
backend app
  server app1 127.0.0.1:$upstream_port
CONF
  start_bg "$name" "$HAPROXY_BIN" -f "$dir/haproxy.cfg" -db
  wait_port "$HAPROXY_PORT" "$LAST_PID" || die "haproxy did not start: $(cat "$BENCH_TMP/$name.log")"
}

# start_needle UPSTREAM_PORT [WORKERS] [NAME]: sets NEEDLE_PORT and NEEDLE_ADMIN_PORT (and
# LAST_PID). Quick mode, WORKERS worker threads (1). Its stdout (the access log) is dropped, as
# nginx and HAProxy run with access logs off; stderr (the operational log) goes to
# $BENCH_TMP/NAME.log (needle.log).
start_needle() {
  local upstream_port="$1" workers="${2:-1}" name="${3:-needle}"
  [[ -x "$NEEDLE_BIN" ]] || die "needle is not built at $NEEDLE_BIN: run scripts/build.sh"
  NEEDLE_PORT="$(free_port)"
  NEEDLE_ADMIN_PORT="$(free_port)"
  local cmd=("${SERVER_WRAPPER[@]}" "$NEEDLE_BIN" run --listen "127.0.0.1:$NEEDLE_PORT"
             --upstream "127.0.0.1:$upstream_port" --workers "$workers"
             --admin "127.0.0.1:$NEEDLE_ADMIN_PORT" --access-log off)
  if [[ -n "${ROUTES:-}" ]]; then  # a ROUTES-route table, the request on the last route
    "$BENCH_ROOT/bench/routes_config.sh" "$NEEDLE_PORT" "$upstream_port" "$NEEDLE_ADMIN_PORT" \
      "$ROUTES" | sed "s/^workers = 1\$/workers = $workers/" >"$BENCH_TMP/$name.toml"
    cmd=("${SERVER_WRAPPER[@]}" "$NEEDLE_BIN" run -c "$BENCH_TMP/$name.toml")
  fi
  if [[ -n "$SERVER_CPUS" ]]; then cmd=(taskset -c "$SERVER_CPUS" "${cmd[@]}"); fi
  "${cmd[@]}" >/dev/null 2>"$BENCH_TMP/$name.log" &
  LAST_PID=$!
  BENCH_PIDS+=("$LAST_PID")
  wait_port "$NEEDLE_PORT" "$LAST_PID" || die "needle did not start: $(tail -c 2000 "$BENCH_TMP/$name.log")"
}

# start_bare_relay UPSTREAM_PORT [read|wait]: bench/bare_relay_main.cc (the event-loop ceiling:
# Asio coroutines copying bytes, no HTTP), compiled on first use with needle's Asio settings and
# jemalloc (as the needle binary links it); sets BARE_PORT (and LAST_PID).
start_bare_relay() {
  local upstream_port="$1" mode="${2:-read}" bin="$BENCH_TMP/needle-bare-relay"
  if [[ ! -x "$bin" ]]; then
    log "compiling bench/bare_relay_main.cc"
    "${CXX:-g++}" -std=c++20 -O2 -DASIO_STANDALONE -DASIO_NO_DEPRECATED \
      -DASIO_DISABLE_AWAITABLE_FRAME_RECYCLING "$BENCH_ROOT/bench/bare_relay_main.cc" \
      -o "$bin" -ljemalloc -pthread || die "cannot compile the bare relay"
  fi
  start_bg "bare-$mode" "$bin" "$upstream_port" "$mode"  # its first output line is the port
  local i
  BARE_PORT=""
  for i in $(seq 1 100); do
    BARE_PORT="$(head -n 1 "$BENCH_TMP/bare-$mode.log" 2>/dev/null || true)"
    [[ "$BARE_PORT" =~ ^[0-9]+$ ]] && return 0
    sleep 0.05
  done
  die "the bare relay did not start: $(cat "$BENCH_TMP/bare-$mode.log")"
}

# check_url URL: one request must answer 200.
check_url() {
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true)"
  [[ "$code" == "200" ]] || die "$1 answered ${code:-nothing}, not 200"
}

# to_ms VALUE: wrk's "812.00us" / "1.23ms" / "2.00s" in milliseconds.
to_ms() {
  python3 - "$1" <<'PY'
import re, sys
m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", sys.argv[1])
if not m:
    print("nan"); sys.exit()
v, unit = float(m.group(1)), m.group(2)
print(f"{v * {'us': 0.001, 'ms': 1, 's': 1000, 'm': 60000}[unit]:.3f}")
PY
}

# run_wrk URL DURATION CONNECTIONS [THREADS]: prints "rps p50_ms p99_ms errors"
# (wrk -tTHREADS --latency, THREADS 1 by default).
run_wrk() {
  local url="$1" duration="$2" connections="$3" threads="${4:-1}" out
  local cmd=(wrk "-t$threads" "-c$connections" "-d$duration" --latency "$url")
  if [[ -n "$WRK_CPUS" ]]; then cmd=(taskset -c "$WRK_CPUS" "${cmd[@]}"); fi
  out="$("${cmd[@]}" 2>&1)" || die "wrk failed on $url: $out"
  echo "$out" >>"$BENCH_TMP/wrk.log"
  local rps p50 p99 errors
  rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
  p50="$(awk '$1 == "50%" {print $2}' <<<"$out")"
  p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  errors="$(awk '/Socket errors:/ {gsub(",", ""); s = $4 + $6 + $8 + $10}
                 /Non-2xx or 3xx responses:/ {n = $5}
                 END {print s + n}' <<<"$out")"
  [[ -n "$rps" && -n "$p50" && -n "$p99" ]] || die "cannot parse wrk output for $url: $out"
  echo "$rps $(to_ms "$p50") $(to_ms "$p99") ${errors:-0}"
}

# proc_cpu_ticks PID: user + system CPU clock ticks (1/CLK_TCK s) used so far by PID (all its
# threads) and its direct children (nginx's workers under its master), from /proc/*/stat.
proc_cpu_ticks() {
  local pids=("$1") total=0 pid fields
  mapfile -t -O 1 pids < <(pgrep -P "$1" || true)
  for pid in "${pids[@]}"; do
    [[ -r "/proc/$pid/stat" ]] || continue
    # Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
    fields="$(sed 's/^.*) //' "/proc/$pid/stat")"
    total=$((total + $(awk '{print $12 + $13}' <<<"$fields")))
  done
  echo "$total"
}

# cpu_us_per_request TICKS RPS DURATION: CPU microseconds per request over a wrk run of
# DURATION ("5s") at RPS that used TICKS clock ticks.
cpu_us_per_request() {
  local seconds="${3%s}"
  awk -v t="$1" -v r="$2" -v s="$seconds" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { if (r * s == 0) print "nan"; else printf "%.1f\n", t / hz * 1e6 / (r * s) }'
}

# median V...: the median of numbers (the lower middle for an even count).
median() {
  printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

# ratio A B: A / B with two decimals, "n/a" when B is 0.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'
}

# bench_rounds PATH CONNECTIONS THREADS TARGET=PORT...: wrk on http://127.0.0.1:PORT/PATH for
# each target, a WARMUP run each, then REPEAT rounds over all targets (so drift hits all alike).
# Sets the medians in the global maps MED_RPS, MED_P50, MED_P99, MED_ERRS (keyed by target).
# Env: DURATION, REPEAT, WARMUP.
bench_rounds() {
  local path="$1" connections="$2" threads="$3"
  shift 3
  local spec t round r a b e
  local -a names=()
  local -A url=() rps=() p50=() p99=() errs=()
  for spec in "$@"; do
    t="${spec%%=*}"
    names+=("$t")
    url[$t]="http://127.0.0.1:${spec#*=}$path"
    check_url "${url[$t]}"
  done
  for t in "${names[@]}"; do run_wrk "${url[$t]}" "$WARMUP" "$connections" "$threads" >/dev/null; done
  for round in $(seq 1 "$REPEAT"); do
    for t in "${names[@]}"; do
      read -r r a b e < <(run_wrk "${url[$t]}" "$DURATION" "$connections" "$threads")
      rps[$t]+="$r "
      p50[$t]+="$a "
      p99[$t]+="$b "
      errs[$t]+="$e "
      log "$path -c$connections -t$threads round $round $t: $r rps, p50 $a ms, p99 $b ms, errors $e"
    done
  done
  declare -gA MED_RPS=() MED_P50=() MED_P99=() MED_ERRS=()
  for t in "${names[@]}"; do
    # shellcheck disable=SC2086  # the lists are space-separated numbers
    MED_RPS[$t]="$(median ${rps[$t]})"
    # shellcheck disable=SC2086
    MED_P50[$t]="$(median ${p50[$t]})"
    # shellcheck disable=SC2086
    MED_P99[$t]="$(median ${p99[$t]})"
    # shellcheck disable=SC2086
    MED_ERRS[$t]="$(median ${errs[$t]})"
  done
}

# report_path NAME: bench/out/NAME-<UTC time>.txt (the directory is made).
report_path() {
  mkdir -p "$BENCH_ROOT/bench/out"
  echo "$BENCH_ROOT/bench/out/$1-$(date -u +%Y%m%dT%H%M%SZ).txt"
}
