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

# wait_port PORT [PID]: until 127.0.0.1:PORT accepts (10 s at most); fails early if PID died.
wait_port() {
  local port="$1" pid="${2:-}" i
  for i in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.05
  done
  return 1
}

# start_bg NAME CMD...: starts CMD pinned to the server cores, logs to $BENCH_TMP/NAME.log.
# Not through a function: $! must be the server itself (taskset execs it), so kill reaches it.
start_bg() {
  local name="$1"
  shift
  local cmd=("$@")
  if [[ -n "$SERVER_CPUS" ]]; then cmd=(taskset -c "$SERVER_CPUS" "${cmd[@]}"); fi
  "${cmd[@]}" >"$BENCH_TMP/$name.log" 2>&1 &
  LAST_PID=$!
  BENCH_PIDS+=("$LAST_PID")
}

# nginx_common DIR: the top of an nginx.conf whose files all live in DIR.
nginx_common() {
  local dir="$1"
  cat <<CONF
daemon off;
master_process on;
$( [[ $(id -u) -eq 0 ]] && echo "user root;" )
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 8192; }
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

# start_nginx_upstream: sets UPSTREAM_PORT. Serves /12b (12 bytes), /4k and /256k (files).
start_nginx_upstream() {
  local dir="$BENCH_TMP/upstream"
  mkdir -p "$dir"
  [[ -x "$NGINX_BIN" ]] || die "nginx is missing: run scripts/install-deps.sh"
  head -c 4096 /dev/zero | tr '\0' 'k' >"$dir/4k"
  head -c 262144 /dev/zero | tr '\0' 'm' >"$dir/256k"
  UPSTREAM_PORT="$(free_port)"
  {
    nginx_common "$dir"
    echo "http {"
    nginx_http_common "$dir"
    cat <<CONF
  sendfile on;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$UPSTREAM_PORT reuseport backlog=4096;
    location = /12b { return 200 "hello world\n"; }
    location = /4k { default_type application/octet-stream; alias $dir/4k; }
    location = /256k { default_type application/octet-stream; alias $dir/256k; }
  }
}
CONF
  } >"$dir/nginx.conf"
  start_bg upstream "$NGINX_BIN" -p "$dir" -c "$dir/nginx.conf"
  wait_port "$UPSTREAM_PORT" "$LAST_PID" || die "nginx upstream did not start: $(cat "$BENCH_TMP/upstream.log" "$dir/error.log" 2>/dev/null)"
}

# start_nginx_proxy UPSTREAM_PORT: sets NGINX_PORT. 1 worker, upstream keepalive 64.
start_nginx_proxy() {
  local upstream_port="$1" dir="$BENCH_TMP/nginx-proxy"
  mkdir -p "$dir"
  NGINX_PORT="$(free_port)"
  {
    nginx_common "$dir"
    echo "http {"
    nginx_http_common "$dir"
    cat <<CONF
  keepalive_requests 1000000;
  upstream app {
    server 127.0.0.1:$upstream_port;
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
  } >"$dir/nginx.conf"
  start_bg nginx-proxy "$NGINX_BIN" -p "$dir" -c "$dir/nginx.conf"
  wait_port "$NGINX_PORT" "$LAST_PID" || die "nginx proxy did not start: $(cat "$BENCH_TMP/nginx-proxy.log" "$dir/error.log" 2>/dev/null)"
}

# start_haproxy UPSTREAM_PORT: sets HAPROXY_PORT. nbthread 1, http-reuse always.
start_haproxy() {
  local upstream_port="$1" dir="$BENCH_TMP/haproxy"
  mkdir -p "$dir"
  [[ -x "$HAPROXY_BIN" ]] || die "haproxy is missing: run scripts/install-deps.sh"
  HAPROXY_PORT="$(free_port)"
  cat >"$dir/haproxy.cfg" <<CONF
global
  nbthread 1
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
  default_backend app
backend app
  server app1 127.0.0.1:$upstream_port
CONF
  start_bg haproxy "$HAPROXY_BIN" -f "$dir/haproxy.cfg" -db
  wait_port "$HAPROXY_PORT" "$LAST_PID" || die "haproxy did not start: $(cat "$BENCH_TMP/haproxy.log")"
}

# start_needle UPSTREAM_PORT: sets NEEDLE_PORT and NEEDLE_ADMIN_PORT. Quick mode, 1 worker.
# Its stdout (the access log) is dropped, as nginx and HAProxy run with access logs off;
# stderr (the operational log) goes to $BENCH_TMP/needle.log.
start_needle() {
  local upstream_port="$1"
  [[ -x "$NEEDLE_BIN" ]] || die "needle is not built at $NEEDLE_BIN: run scripts/build.sh"
  NEEDLE_PORT="$(free_port)"
  NEEDLE_ADMIN_PORT="$(free_port)"
  local cmd=("$NEEDLE_BIN" run --listen "127.0.0.1:$NEEDLE_PORT"
             --upstream "127.0.0.1:$upstream_port" --workers 1
             --admin "127.0.0.1:$NEEDLE_ADMIN_PORT" --access-log off)
  if [[ -n "$SERVER_CPUS" ]]; then cmd=(taskset -c "$SERVER_CPUS" "${cmd[@]}"); fi
  "${cmd[@]}" >/dev/null 2>"$BENCH_TMP/needle.log" &
  LAST_PID=$!
  BENCH_PIDS+=("$LAST_PID")
  wait_port "$NEEDLE_PORT" "$LAST_PID" || die "needle did not start: $(tail -c 2000 "$BENCH_TMP/needle.log")"
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

# run_wrk URL DURATION CONNECTIONS: prints "rps p50_ms p99_ms errors" (wrk -t1 --latency).
run_wrk() {
  local url="$1" duration="$2" connections="$3" out
  local cmd=(wrk -t1 "-c$connections" "-d$duration" --latency "$url")
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

# median V...: the median of numbers (the lower middle for an even count).
median() {
  printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

# ratio A B: A / B with two decimals, "n/a" when B is 0.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f\n", a / b }'
}
