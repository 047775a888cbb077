#!/usr/bin/env bash
# Throughput and latency through needle vs nginx and HAProxy (and the upstream directly), on a
# 12-byte body, with wrk -t1 -c64. Each target is measured REPEAT times in rounds (so drift
# hits all alike) and the medians are reported, with needle's ratios to the others. Each proxy's
# CPU time per request (user + system, from /proc, so the kernel work of its syscalls counts) is
# reported too: on a shared, noisy machine it moves much less than requests per second.
# With BARE=1 (the default) it also measures bench/bare_relay_main.cc ("bare"), Asio coroutines
# copying bytes with no HTTP at all: the ceiling of needle's event loop and the kernel's loopback
# path, against which needle/bare says how much of it needle keeps. BARE_WAIT=1 adds the relay's
# other mode ("barewait": each read waits for readiness first, see bare_relay_main.cc).
# Env: DURATION (10s), CONNECTIONS (64), REPEAT (3), WARMUP (2s), PATH_12B (/12b), BARE (1),
#      BASELINE_BIN (a second needle binary, measured as "base", for before/after in one run),
#      NEEDLE_BIN (build/release/src/needle), SERVER_CPUS / WRK_CPUS (taskset lists),
#      ROUTES (unset: one route; N: every needle started, the baseline too, runs
#      bench/routes_config.sh's N-route table; the routing cost is a ROUTES=50 run against a
#      run without ROUTES, as the table uses keys older binaries do not know).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-64}"
REPEAT="${REPEAT:-3}"
WARMUP="${WARMUP:-2s}"
BODY_PATH="${PATH_12B:-/12b}"

if [[ ! -x "$NEEDLE_BIN" ]]; then
  echo "needle is not built ($NEEDLE_BIN missing): run scripts/build.sh first" >&2
  exit 1
fi

bench_init
start_nginx_upstream
start_needle "$UPSTREAM_PORT"
declare -A pid=([needle]="$LAST_PID")
start_nginx_proxy "$UPSTREAM_PORT"
pid[nginx]="$LAST_PID"
start_haproxy "$UPSTREAM_PORT"
pid[haproxy]="$LAST_PID"

targets=(direct needle nginx haproxy)
declare -A url=(
  [direct]="http://127.0.0.1:$UPSTREAM_PORT$BODY_PATH"
  [needle]="http://127.0.0.1:$NEEDLE_PORT$BODY_PATH"
  [nginx]="http://127.0.0.1:$NGINX_PORT$BODY_PATH"
  [haproxy]="http://127.0.0.1:$HAPROXY_PORT$BODY_PATH"
)
if [[ "${BARE:-1}" != "0" ]]; then
  start_bare_relay "$UPSTREAM_PORT" read
  pid[bare]="$LAST_PID"
  targets+=(bare)
  url[bare]="http://127.0.0.1:$BARE_PORT$BODY_PATH"
  if [[ "${BARE_WAIT:-0}" != "0" ]]; then
    start_bare_relay "$UPSTREAM_PORT" wait
    pid[barewait]="$LAST_PID"
    targets+=(barewait)
    url[barewait]="http://127.0.0.1:$BARE_PORT$BODY_PATH"
  fi
fi
if [[ -n "${BASELINE_BIN:-}" ]]; then
  NEEDLE_BIN="$BASELINE_BIN" start_needle "$UPSTREAM_PORT" 1 needle-base
  pid[base]="$LAST_PID"
  targets+=(base)
  url[base]="http://127.0.0.1:$NEEDLE_PORT$BODY_PATH"
fi
for t in "${targets[@]}"; do check_url "${url[$t]}"; done

log "pinning: servers on cpus '${SERVER_CPUS:-any}', wrk on '${WRK_CPUS:-any}'"
log "wrk -t1 -c$CONNECTIONS -d$DURATION, $REPEAT rounds, warmup $WARMUP per target"
declare -A rps p50 p99 errs cpu
for t in "${targets[@]}"; do run_wrk "${url[$t]}" "$WARMUP" "$CONNECTIONS" >/dev/null; done
for round in $(seq 1 "$REPEAT"); do
  for t in "${targets[@]}"; do
    ticks_before=0
    if [[ -n "${pid[$t]:-}" ]]; then ticks_before="$(proc_cpu_ticks "${pid[$t]}")"; fi
    read -r r a b e < <(run_wrk "${url[$t]}" "$DURATION" "$CONNECTIONS")
    c=nan
    if [[ -n "${pid[$t]:-}" ]]; then
      c="$(cpu_us_per_request $(($(proc_cpu_ticks "${pid[$t]}") - ticks_before)) "$r" "$DURATION")"
    fi
    rps[$t]+="$r "
    p50[$t]+="$a "
    p99[$t]+="$b "
    errs[$t]+="$e "
    cpu[$t]+="$c "
    log "round $round $t: $r rps, p50 $a ms, p99 $b ms, errors $e, cpu $c us/request"
  done
done

declare -A med_rps
mkdir -p "$BENCH_ROOT/bench/out"
report="$BENCH_ROOT/bench/out/throughput-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo "needle throughput: 12 B body, wrk -t1 -c$CONNECTIONS -d$DURATION, median of $REPEAT"
  echo "cpus: servers '${SERVER_CPUS:-any}', wrk '${WRK_CPUS:-any}'; $(nproc) cores"
  echo "request headers added by nginx and haproxy: $( ((EQUAL_HEADERS)) && echo "needle's four (EQUAL_HEADERS=1)" || echo "none (EQUAL_HEADERS=0)")"
  printf '%-8s %12s %10s %10s %8s %12s\n' target rps p50_ms p99_ms errors cpu_us/req
  declare -A med_cpu
  for t in "${targets[@]}"; do
    # shellcheck disable=SC2086  # the lists are space-separated numbers
    med_rps[$t]="$(median ${rps[$t]})"
    # shellcheck disable=SC2086
    med_cpu[$t]="$(median ${cpu[$t]})"
    # shellcheck disable=SC2086
    printf '%-8s %12.0f %10.3f %10.3f %8d %12s\n' "$t" "${med_rps[$t]}" "$(median ${p50[$t]})" \
      "$(median ${p99[$t]})" "$(median ${errs[$t]})" "${med_cpu[$t]}"
  done
  echo
  echo "needle/nginx   rps ratio: $(ratio "${med_rps[needle]}" "${med_rps[nginx]}")"
  echo "needle/haproxy rps ratio: $(ratio "${med_rps[needle]}" "${med_rps[haproxy]}")"
  echo "needle/direct  rps ratio: $(ratio "${med_rps[needle]}" "${med_rps[direct]}")"
  if [[ -n "${med_rps[bare]:-}" ]]; then
    echo "needle/bare    rps ratio: $(ratio "${med_rps[needle]}" "${med_rps[bare]}")"
    echo "bare/nginx     rps ratio: $(ratio "${med_rps[bare]}" "${med_rps[nginx]}")"
    echo "needle/bare    cpu per request: $(ratio "${med_cpu[needle]}" "${med_cpu[bare]}")"
  fi
  if [[ -n "${med_rps[barewait]:-}" ]]; then
    echo "needle/barewait rps ratio: $(ratio "${med_rps[needle]}" "${med_rps[barewait]}")"
    echo "barewait/nginx rps ratio: $(ratio "${med_rps[barewait]}" "${med_rps[nginx]}")"
  fi
  if [[ -n "${med_rps[base]:-}" ]]; then
    echo "needle/base    rps ratio: $(ratio "${med_rps[needle]}" "${med_rps[base]}")"
    echo "needle/base    cpu per request: $(ratio "${med_cpu[needle]}" "${med_cpu[base]}")"
  fi
  echo "needle/nginx   cpu per request: $(ratio "${med_cpu[needle]}" "${med_cpu[nginx]}")"
  echo "needle/haproxy cpu per request: $(ratio "${med_cpu[needle]}" "${med_cpu[haproxy]}")"
} | tee "$report"
log "report written to $report"
