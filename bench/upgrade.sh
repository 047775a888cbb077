#!/usr/bin/env bash
# Failed requests during binary upgrades / reloads under the same load, for each proxy in front
# of the same nginx upstream (issue 21, docs/decisions/0009-binary-upgrade.md):
#   needle   SIGUSR2 (the new process inherits the listening sockets; the old one drains)
#   nginx    SIGUSR2 to the master (a new master and workers on the inherited sockets), then
#            SIGQUIT to the old master once the new one has written its pid file
#   haproxy  master-worker mode (-W), SIGUSR2 to the master (it re-execs and hands the
#            listeners to the new worker; the old worker finishes its connections)
# For each: wrk -cCONNECTIONS for DURATION, UPGRADES upgrades spread over it (one every
# INTERVAL seconds, starting after INTERVAL), then the errors wrk counted (socket errors:
# connect, read, write, timeout; and non-2xx responses).
#   bench/upgrade.sh                          # 10 upgrades, 64 connections, 25 s per proxy
#   UPGRADES=5 INTERVAL=1 PROXIES="needle" bench/upgrade.sh
# The table is also written to bench/out/upgrade-<UTC time>.txt.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

UPGRADES="${UPGRADES:-10}"
INTERVAL="${INTERVAL:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
PROXIES="${PROXIES:-needle nginx haproxy}"
DURATION="$((UPGRADES * INTERVAL + INTERVAL + 3))s"

bench_init
start_nginx_upstream

# needle_upgrade LOG PID: SIGUSR2, then the pid of the process serving after the hand-off.
needle_upgrade() {
  local log="$1" pid="$2" before i
  before="$(grep -c 'is serving' "$log" || true)"
  kill -USR2 "$pid"
  for i in $(seq 1 200); do
    if (($(grep -c 'is serving' "$log" || true) > before)); then
      grep -o 'upgrade: new process [0-9]* is serving' "$log" | tail -n 1 | awk '{print $4}'
      return 0
    fi
    grep -q 'upgrade failed' "$log" && die "needle upgrade failed: $(grep 'upgrade failed' "$log")"
    sleep 0.05
  done
  die "needle did not hand over within 10 s: $(tail -c 2000 "$log")"
}

# nginx_upgrade DIR: USR2 to the master in DIR/nginx.pid, wait for the new master's pid file,
# QUIT the old one.
nginx_upgrade() {
  local dir="$1" old new i
  old="$(cat "$dir/nginx.pid")"
  kill -USR2 "$old"
  for i in $(seq 1 200); do
    if [[ -s "$dir/nginx.pid" && -s "$dir/nginx.pid.oldbin" ]]; then
      new="$(cat "$dir/nginx.pid")"
      [[ "$new" != "$old" ]] && break
    fi
    sleep 0.05
  done
  [[ "${new:-$old}" != "$old" ]] || die "nginx did not start a new master: $(tail "$dir/error.log")"
  sleep 0.2  # the new workers accept before the old master is told to quit
  kill -QUIT "$old"
}

start_haproxy_master_worker() {
  local dir="$BENCH_TMP/haproxy-mw"
  mkdir -p "$dir"
  HAPROXY_PORT="$(free_port)"
  cat >"$dir/haproxy.cfg" <<CONF
global
  master-worker
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
  server app1 127.0.0.1:$UPSTREAM_PORT
CONF
  start_bg haproxy-mw "$HAPROXY_BIN" -W -f "$dir/haproxy.cfg"
  wait_port "$HAPROXY_PORT" "$LAST_PID" ||
    die "haproxy did not start: $(cat "$BENCH_TMP/haproxy-mw.log")"
}

# measure NAME URL UPGRADE_COMMAND...: prints "requests errors" for wrk with upgrades under it.
measure() {
  local name="$1" url="$2"
  shift 2
  check_url "$url"
  local out="$BENCH_TMP/wrk-$name.out"
  local cmd=(wrk -t1 "-c$CONNECTIONS" "-d$DURATION" "$url")
  if [[ -n "$WRK_CPUS" ]]; then cmd=(taskset -c "$WRK_CPUS" "${cmd[@]}"); fi
  "${cmd[@]}" >"$out" 2>&1 &
  local wrk_pid=$! i
  for i in $(seq 1 "$UPGRADES"); do
    sleep "$INTERVAL"
    "$@"
  done
  wait "$wrk_pid" || die "wrk failed on $url: $(cat "$out")"
  local requests errors
  requests="$(awk '/requests in/ {print $1}' "$out")"
  errors="$(awk '/Socket errors:/ {gsub(",", ""); s = $4 + $6 + $8 + $10}
                 /Non-2xx or 3xx responses:/ {n = $5}
                 END {print s + n}' "$out")"
  echo "${requests:-0} ${errors:-0}"
}

# The serving needle's pid lives in a file: measure runs the upgrade steps in a subshell.
needle_step() {
  local file="$BENCH_TMP/needle.serving"
  needle_upgrade "$BENCH_TMP/needle.log" "$(cat "$file")" >"$file.next"
  mv "$file.next" "$file"
}

declare -A result
for proxy in $PROXIES; do
  case "$proxy" in
    needle)
      start_needle "$UPSTREAM_PORT" 1 needle
      echo "$LAST_PID" >"$BENCH_TMP/needle.serving"
      result[needle]="$(measure needle "http://127.0.0.1:$NEEDLE_PORT/12b" needle_step)"
      kill "$(cat "$BENCH_TMP/needle.serving")" 2>/dev/null || true
      ;;
    nginx)
      start_nginx_proxy "$UPSTREAM_PORT" 1 nginx-proxy on
      result[nginx]="$(measure nginx "http://127.0.0.1:$NGINX_PORT/12b" \
        nginx_upgrade "$BENCH_TMP/nginx-proxy")"
      kill "$(cat "$BENCH_TMP/nginx-proxy/nginx.pid")" 2>/dev/null || true
      ;;
    haproxy)
      start_haproxy_master_worker
      result[haproxy]="$(measure haproxy "http://127.0.0.1:$HAPROXY_PORT/12b" \
        kill -USR2 "$LAST_PID")"
      ;;
    *) die "unknown proxy '$proxy' (needle, nginx, haproxy)" ;;
  esac
done

mkdir -p "$BENCH_ROOT/bench/out"
report="$BENCH_ROOT/bench/out/upgrade-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo "upgrades under load: $UPGRADES upgrades, one every ${INTERVAL}s," \
    "wrk -c$CONNECTIONS -d$DURATION"
  printf '%-8s %12s %16s\n' proxy requests failed
  for proxy in $PROXIES; do
    read -r requests errors <<<"${result[$proxy]}"
    printf '%-8s %12s %16s\n' "$proxy" "$requests" "$errors"
  done
} | tee "$report"
