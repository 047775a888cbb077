#!/usr/bin/env bash
# Scaling from 1 to 2 workers on this 2-core machine: needle --workers 1/2, nginx
# worker_processes 1/2 (upstream keepalive NGINX_KEEPALIVE) and HAProxy nbthread 1/2 (http-reuse always) in
# front of the same nginx upstream (2 workers), 12 B body, wrk -t2. Nothing is pinned (servers
# and wrk share both cores; SERVER_CPUS / WRK_CPUS override), so the client and the upstream
# take part of the CPU the proxies could use: the figure is each proxy's rps at 2 workers, its
# 2-worker/1-worker gain, and needle's ratios to the others, all from one run, in rounds.
# Env: DURATION (10s), REPEAT (3), WARMUP (2s), CONNECTIONS (128), BODY_PATH (/12b),
#      UPSTREAM_WORKERS (2), NEEDLE_BIN.
set -euo pipefail
export SERVER_CPUS="${SERVER_CPUS:-0-$(($(nproc) - 1))}" WRK_CPUS="${WRK_CPUS:-0-$(($(nproc) - 1))}"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION="${DURATION:-10s}"
REPEAT="${REPEAT:-3}"
WARMUP="${WARMUP:-2s}"
CONNECTIONS="${CONNECTIONS:-128}"
BODY_PATH="${BODY_PATH:-/12b}"
UPSTREAM_WORKERS="${UPSTREAM_WORKERS:-2}"

bench_init
start_nginx_upstream "$UPSTREAM_WORKERS"
specs=(direct="$UPSTREAM_PORT")
for w in 1 2; do
  start_needle "$UPSTREAM_PORT" "$w" "needle-$w"
  specs+=(needle-$w="$NEEDLE_PORT")
  start_nginx_proxy "$UPSTREAM_PORT" "$w" "nginx-$w"
  specs+=(nginx-$w="$NGINX_PORT")
  start_haproxy "$UPSTREAM_PORT" "$w" "haproxy-$w"
  specs+=(haproxy-$w="$HAPROXY_PORT")
done
log "cpus: servers '$SERVER_CPUS', wrk '$WRK_CPUS'; wrk -t2 -c$CONNECTIONS -d$DURATION, $REPEAT rounds"
bench_rounds "$BODY_PATH" "$CONNECTIONS" 2 "${specs[@]}"

report="$(report_path scaling)"
{
  echo "needle scaling: $BODY_PATH, wrk -t2 -c$CONNECTIONS -d$DURATION, median of $REPEAT rounds, warmup $WARMUP"
  echo "upstream nginx $UPSTREAM_WORKERS workers; cpus: servers '$SERVER_CPUS', wrk '$WRK_CPUS'; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| proxy | rps 1 worker | rps 2 workers | 2w/1w | p99 ms 1w / 2w | errors 1w / 2w |"
  echo "|---|---|---|---|---|---|"
  for p in needle nginx haproxy; do
    printf '| %s | %.0f | %.0f | %s | %.2f / %.2f | %s / %s |\n' "$p" "${MED_RPS[$p-1]}" \
      "${MED_RPS[$p-2]}" "$(ratio "${MED_RPS[$p-2]}" "${MED_RPS[$p-1]}")" "${MED_P99[$p-1]}" \
      "${MED_P99[$p-2]}" "${MED_ERRS[$p-1]}" "${MED_ERRS[$p-2]}"
  done
  printf '| direct (upstream) | | %.0f | | - / %.2f | - / %s |\n' "${MED_RPS[direct]}" \
    "${MED_P99[direct]}" "${MED_ERRS[direct]}"
  echo
  for w in 1 2; do
    echo "$w worker(s): needle/nginx rps $(ratio "${MED_RPS[needle-$w]}" "${MED_RPS[nginx-$w]}")," \
      "needle/haproxy rps $(ratio "${MED_RPS[needle-$w]}" "${MED_RPS[haproxy-$w]}")," \
      "needle/nginx p99 $(ratio "${MED_P99[needle-$w]}" "${MED_P99[nginx-$w]}")"
  done
} | tee "$report"
log "report written to $report"
