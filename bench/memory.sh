#!/usr/bin/env bash
# Memory of needle vs nginx, both 1 worker in front of the same nginx upstream:
#   idle      RSS growth per idle client keep-alive connection: IDLE_CONNECTIONS connections
#             (bench/idle_clients.py), each has sent one GET /12b and read its response and
#             then stays open and silent; RSS (VmRSS) is read before and once they are all
#             idle, and the client checks that the proxy still holds them open
#   stream    a BODY_MIB MiB request body POSTed through each (curl, Content-Length, the
#             upstream reads and drops it) and a BODY_MIB MiB response read through each by a
#             client limited to DOWNLOAD_RATE; peak RSS (VmHWM) before and after: a proxy that
#             streams stays flat, one that buffers grows by the body size
# Each phase runs on fresh proxy processes. nginx runs with master_process off (one process,
# the worker itself), upstream keepalive NGINX_KEEPALIVE; needle in quick mode, --workers 1 (its default
# max_connections_per_worker is 10000: more idle connections than that wait in the kernel).
# Env: IDLE_CONNECTIONS (10000), BODY_MIB (50), DOWNLOAD_RATE (25M, curl --limit-rate),
#      NEEDLE_BIN, SERVER_CPUS / WRK_CPUS.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

IDLE_CONNECTIONS="${IDLE_CONNECTIONS:-10000}"
BODY_MIB="${BODY_MIB:-50}"
DOWNLOAD_RATE="${DOWNLOAD_RATE:-25M}"

# Client and servers need a descriptor each per connection (and the proxies one more per
# upstream connection); root may raise the hard limit.
want_fds=$((IDLE_CONNECTIONS + 4096))
if (($(ulimit -n) < want_fds)); then
  ulimit -n "$want_fds" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
(($(ulimit -n) >= IDLE_CONNECTIONS + 64)) ||
  die "ulimit -n is $(ulimit -n), too low for $IDLE_CONNECTIONS connections"

bench_init
NGINX_WORKER_CONNECTIONS=$((IDLE_CONNECTIONS + 1024))
start_nginx_upstream
proxies=(needle nginx)

status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }  # PID VmRSS|VmHWM

start_proxy() {  # NAME PHASE: sets PROXY_PORT and PROXY_PID
  case "$1" in
    needle) start_needle "$UPSTREAM_PORT" 1 "needle-$2"; PROXY_PORT="$NEEDLE_PORT" ;;
    nginx) start_nginx_proxy "$UPSTREAM_PORT" 1 "nginx-$2" off; PROXY_PORT="$NGINX_PORT" ;;
  esac
  PROXY_PID="$LAST_PID"
  check_url "http://127.0.0.1:$PROXY_PORT/12b"
  # Warm up: buffers, pools and the upstream connections exist before the baseline.
  python3 "$BENCH_ROOT/bench/http_load.py" --port "$PROXY_PORT" --requests 2000 \
    --connections 16 >/dev/null || die "warm-up through $1 failed"
  sleep 0.5
}
stop_proxy() { kill "$PROXY_PID" 2>/dev/null || true; wait "$PROXY_PID" 2>/dev/null || true; }

# ---- idle connections --------------------------------------------------------------------------
declare -A idle_before idle_after idle_ok idle_open idle_per_conn
for p in "${proxies[@]}"; do
  start_proxy "$p" idle
  idle_before[$p]="$(status_kib "$PROXY_PID" VmRSS)"
  coproc IDLE {
    exec python3 "$BENCH_ROOT/bench/idle_clients.py" --port "$PROXY_PORT" \
      --connections "$IDLE_CONNECTIONS" --timeout 300 --hold 300 2>"$BENCH_TMP/idle-$p.err"
  }
  idle_pid=$IDLE_PID
  BENCH_PIDS+=("$idle_pid")
  read -r -t 320 word ok failed <&"${IDLE[0]}" || die "idle client for $p: $(cat "$BENCH_TMP/idle-$p.err")"
  [[ "$word" == ready ]] || die "idle client for $p said: $word $ok $failed"
  sleep 1
  idle_after[$p]="$(status_kib "$PROXY_PID" VmRSS)"
  echo check >&"${IDLE[1]}"
  read -r -t 30 word open <&"${IDLE[0]}" || die "idle client for $p did not answer check"
  echo quit >&"${IDLE[1]}"
  wait "$idle_pid" 2>/dev/null || true
  idle_ok[$p]="$ok"
  idle_open[$p]="$open"
  idle_per_conn[$p]="$(awk -v a="${idle_after[$p]}" -v b="${idle_before[$p]}" -v n="$ok" \
    'BEGIN { if (n == 0) print "n/a"; else printf "%.0f", (a - b) * 1024 / n }')"
  log "$p: RSS ${idle_before[$p]} KiB -> ${idle_after[$p]} KiB with $ok idle connections ($failed failed, $open still open): ${idle_per_conn[$p]} B each"
  stop_proxy
done

# ---- streaming bodies ---------------------------------------------------------------------------
head -c "$((BODY_MIB * 1048576))" /dev/zero >"$UPSTREAM_DIR/50m"
ln -s "$UPSTREAM_DIR/50m" "$BENCH_TMP/body"
declare -A hwm_start post_result post_hwm get_result get_hwm
for p in "${proxies[@]}"; do
  start_proxy "$p" stream
  hwm_start[$p]="$(status_kib "$PROXY_PID" VmHWM)"
  post_result[$p]="$(curl -s -o /dev/null --max-time 120 -H 'Expect:' \
    -H 'Content-Type: application/octet-stream' --data-binary @"$BENCH_TMP/body" \
    -w '%{http_code} %{size_upload}' "http://127.0.0.1:$PROXY_PORT/sink" || true)"
  post_hwm[$p]="$(status_kib "$PROXY_PID" VmHWM)"
  get_result[$p]="$(curl -s -o /dev/null --max-time 120 --limit-rate "$DOWNLOAD_RATE" \
    -w '%{http_code} %{size_download}' "http://127.0.0.1:$PROXY_PORT/50m" || true)"
  get_hwm[$p]="$(status_kib "$PROXY_PID" VmHWM)"
  log "$p: peak RSS ${hwm_start[$p]} KiB, after POST (${post_result[$p]}) ${post_hwm[$p]} KiB, after GET (${get_result[$p]}) ${get_hwm[$p]} KiB"
  stop_proxy
done

report="$(report_path memory)"
{
  echo "needle memory: $IDLE_CONNECTIONS idle keep-alive client connections; $BODY_MIB MiB bodies (POST up; GET down at $DOWNLOAD_RATE/s)"
  echo "1 worker each (nginx master_process off, upstream keepalive ${NGINX_KEEPALIVE:-1024}); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| proxy | RSS before (KiB) | RSS with idle conns (KiB) | idle conns held / still open | RSS growth per idle conn (B) |"
  echo "|---|---|---|---|---|"
  for p in "${proxies[@]}"; do
    echo "| $p | ${idle_before[$p]} | ${idle_after[$p]} | ${idle_ok[$p]} / ${idle_open[$p]} | ${idle_per_conn[$p]} |"
  done
  echo
  echo "needle/nginx RSS per idle connection: $(ratio "${idle_per_conn[needle]}" "${idle_per_conn[nginx]}")"
  echo
  echo "| proxy | peak RSS before (KiB) | POST: status bytes | peak after POST (KiB) | GET: status bytes | peak after GET (KiB) | peak growth (KiB) |"
  echo "|---|---|---|---|---|---|---|"
  for p in "${proxies[@]}"; do
    echo "| $p | ${hwm_start[$p]} | ${post_result[$p]} | ${post_hwm[$p]} | ${get_result[$p]} | ${get_hwm[$p]} | $((get_hwm[$p] - hwm_start[$p])) |"
  done
} | tee "$report"
log "report written to $report"
