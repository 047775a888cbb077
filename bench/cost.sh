#!/usr/bin/env bash
# Cost per request of needle vs nginx as proxies in front of the same nginx upstream (12 B
# body), counted, not timed, so a busy machine does not skew it:
#   instructions/request  valgrind --tool=callgrind on the proxy (all its threads), counters
#                         zeroed after WARMUP_REQUESTS and dumped after REQUESTS more
#                         (callgrind_control -z / -d); deterministic up to event batching
#   syscalls/request      strace -c -f attached to the proxy (not under valgrind) for REQUESTS
#                         requests after the warmup
# Both proxies run 1 worker: needle --workers 1, nginx master_process off (one process, the
# worker itself), upstream keepalive NGINX_KEEPALIVE (lib.sh). The client is bench/http_load.py:
# exactly REQUESTS
# keep-alive GETs over CLIENT_CONNECTIONS connections, one request at a time on each.
# Env: REQUESTS (20000), WARMUP_REQUESTS (2000), CLIENT_CONNECTIONS (8), BODY_PATH (/12b),
#      HOT_FUNCTIONS (20: how many of each proxy's top functions the report lists),
#      NEEDLE_BIN, SERVER_CPUS / WRK_CPUS (taskset lists; the client runs on WRK_CPUS).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REQUESTS="${REQUESTS:-20000}"
WARMUP_REQUESTS="${WARMUP_REQUESTS:-2000}"
CLIENT_CONNECTIONS="${CLIENT_CONNECTIONS:-8}"
BODY_PATH="${BODY_PATH:-/12b}"
for tool in valgrind callgrind_control callgrind_annotate strace; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (apt-get install valgrind strace)"
done

bench_init
start_nginx_upstream
proxies=(needle nginx)

# load PORT COUNT: COUNT requests through the proxy on PORT; fails unless all are 2xx.
load() {
  local cmd=(python3 "$BENCH_ROOT/bench/http_load.py" --port "$1" --path "$BODY_PATH"
             --requests "$2" --connections "$CLIENT_CONNECTIONS")
  if [[ -n "$WRK_CPUS" ]]; then cmd=(taskset -c "$WRK_CPUS" "${cmd[@]}"); fi
  local out
  out="$("${cmd[@]}")" || die "load on port $1 failed: $out"
  log "load on port $1: $out"
}

# start_proxy NAME: sets PROXY_PORT and PROXY_PID.
start_proxy() {
  case "$1" in
    needle) start_needle "$UPSTREAM_PORT" 1 "needle-$PHASE"; PROXY_PORT="$NEEDLE_PORT" ;;
    nginx) start_nginx_proxy "$UPSTREAM_PORT" 1 "nginx-$PHASE" off; PROXY_PORT="$NGINX_PORT" ;;
  esac
  PROXY_PID="$LAST_PID"
  check_url "http://127.0.0.1:$PROXY_PORT$BODY_PATH"
}

stop_proxy() { kill "$PROXY_PID" 2>/dev/null || true; wait "$PROXY_PID" 2>/dev/null || true; }

declare -A instr syscalls top_syscalls
# ---- instructions: callgrind ------------------------------------------------------------------
PHASE=callgrind
BENCH_START_TIMEOUT_S=120
for p in "${proxies[@]}"; do
  out="$BENCH_TMP/callgrind-$p.out"
  SERVER_WRAPPER=(valgrind --tool=callgrind "--callgrind-out-file=$out" --dump-instr=no)
  start_proxy "$p"
  SERVER_WRAPPER=()
  load "$PROXY_PORT" "$WARMUP_REQUESTS"
  callgrind_control -z "$PROXY_PID" >/dev/null || die "callgrind_control -z failed for $p"
  load "$PROXY_PORT" "$REQUESTS"
  callgrind_control -d "$PROXY_PID" >/dev/null || die "callgrind_control -d failed for $p"
  dump="$(ls "$out".* 2>/dev/null | head -n1)"
  [[ -n "$dump" ]] || die "no callgrind dump for $p"
  total="$(awk '/^totals:/ {print $2}' "$dump")"
  instr[$p]="$(awk -v t="$total" -v n="$REQUESTS" 'BEGIN {printf "%.0f", t / n}')"
  log "$p: $total instructions for $REQUESTS requests = ${instr[$p]} per request"
  # Self cost per function. The frames that were on the stack when the counters were zeroed
  # (thread start, the event loop) are reported with the whole total; they are left out.
  callgrind_annotate --auto=no --threshold=100 "$dump" 2>/dev/null |
    sed -n '/file:function/,$p' | awk '/\(100\.0%\)|\( 99\./ {next} /%\)/' |
    sed -E 's/ \[[^]]*\]$//; s/^( *[0-9,]+ \( *[0-9.]+%\))  [^:]*:/\1  /' | cut -c1-160 |
    head -n "${HOT_FUNCTIONS:-20}" >"$BENCH_TMP/hot-$p.txt" || true
  stop_proxy
done

# ---- syscalls: strace -c -f -------------------------------------------------------------------
PHASE=strace
BENCH_START_TIMEOUT_S=10
for p in "${proxies[@]}"; do
  start_proxy "$p"
  load "$PROXY_PORT" "$WARMUP_REQUESTS"
  summary="$BENCH_TMP/strace-$p.txt"
  strace -c -f -p "$PROXY_PID" -o "$summary" 2>"$BENCH_TMP/strace-$p.err" &
  strace_pid=$!
  BENCH_PIDS+=("$strace_pid")
  for _ in $(seq 1 50); do  # until strace has attached (it says so on stderr)
    grep -q "attached" "$BENCH_TMP/strace-$p.err" 2>/dev/null && break
    sleep 0.1
  done
  sleep 0.3
  load "$PROXY_PORT" "$REQUESTS"
  kill -INT "$strace_pid"
  wait "$strace_pid" 2>/dev/null || true
  total="$(awk '$NF == "total" {print $4}' "$summary")"  # % seconds usecs/call calls [errors]
  [[ -n "$total" ]] || die "cannot read strace's summary for $p: $(cat "$summary")"
  syscalls[$p]="$(awk -v t="$total" -v n="$REQUESTS" 'BEGIN {printf "%.2f", t / n}')"
  # the five most frequent, per request: "name calls/request (errors/request)"
  top_syscalls[$p]="$(awk -v n="$REQUESTS" '
      /^-/ || /^%/ || $NF == "total" || NF < 5 {next}
      { errs = (NF == 6) ? $5 : 0; printf "%s %d %.2f %.2f\n", $NF, $4, $4 / n, errs / n }' \
      "$summary" | sort -k2,2nr | head -n5 |
      awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $3; if ($4 > 0) printf " (%s failed)", $4 }')"
  log "$p: $total syscalls for $REQUESTS requests = ${syscalls[$p]} per request"
  stop_proxy
done

report="$(report_path cost)"
{
  echo "needle cost per request: $BODY_PATH, $REQUESTS keep-alive requests over $CLIENT_CONNECTIONS connections after $WARMUP_REQUESTS warmup"
  echo "1 worker each (nginx master_process off, upstream keepalive ${NGINX_KEEPALIVE:-1024}); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| proxy | instructions/request (callgrind) | syscalls/request (strace -c -f) | most frequent syscalls per request |"
  echo "|---|---|---|---|"
  for p in "${proxies[@]}"; do
    echo "| $p | ${instr[$p]} | ${syscalls[$p]} | ${top_syscalls[$p]} |"
  done
  echo
  echo "needle/nginx instructions ratio: $(ratio "${instr[needle]}" "${instr[nginx]}")"
  echo "needle/nginx syscalls ratio:     $(ratio "${syscalls[needle]}" "${syscalls[nginx]}")"
  for p in "${proxies[@]}"; do
    echo
    echo "$p: top functions by self instructions over the measured requests (callgrind_annotate)"
    cat "$BENCH_TMP/hot-$p.txt"
  done
} | tee "$report"
log "report written to $report"
