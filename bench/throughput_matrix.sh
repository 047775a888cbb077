#!/usr/bin/env bash
# Throughput and latency through needle vs nginx and HAProxy (and the upstream directly) over
# a matrix of client connections x body sizes: wrk -t1, -c64 and -c256, bodies of 12 B, 4 KiB
# and 256 KiB from the same nginx upstream. Every proxy has 1 worker (nginx: upstream keepalive
# 64; HAProxy: nbthread 1, http-reuse always; needle: quick mode, access log off). In each cell
# every target is measured REPEAT times in rounds and the medians are reported, with needle's
# rps ratios to the others and its p99 next to nginx's. bench/throughput.sh is the -c64 / 12 B
# cell alone.
# Env: CONNECTIONS_LIST ("64 256"), PATHS ("/12b /4k /256k"), DURATION (10s), REPEAT (3),
#      WARMUP (2s), NEEDLE_BIN, SERVER_CPUS / WRK_CPUS (taskset lists).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNECTIONS_LIST="${CONNECTIONS_LIST:-64 256}"
PATHS="${PATHS:-/12b /4k /256k}"
DURATION="${DURATION:-10s}"
REPEAT="${REPEAT:-3}"
WARMUP="${WARMUP:-2s}"

bench_init
start_nginx_upstream
start_needle "$UPSTREAM_PORT"
start_nginx_proxy "$UPSTREAM_PORT"
start_haproxy "$UPSTREAM_PORT"
targets=(direct needle nginx haproxy)
log "pinning: servers on cpus '${SERVER_CPUS:-any}', wrk on '${WRK_CPUS:-any}'"

rows=()
for c in $CONNECTIONS_LIST; do
  for path in $PATHS; do
    bench_rounds "$path" "$c" 1 direct="$UPSTREAM_PORT" needle="$NEEDLE_PORT" \
      nginx="$NGINX_PORT" haproxy="$HAPROXY_PORT"
    row="$(printf '| %s | %s |' "$path" "$c")"
    for t in "${targets[@]}"; do row+="$(printf ' %.0f |' "${MED_RPS[$t]}")"; done
    row+=" $(ratio "${MED_RPS[needle]}" "${MED_RPS[nginx]}") |"
    row+=" $(ratio "${MED_RPS[needle]}" "${MED_RPS[haproxy]}") |"
    row+=" $(ratio "${MED_RPS[needle]}" "${MED_RPS[direct]}") |"
    row+="$(printf ' %.2f / %.2f / %.2f |' "${MED_P99[needle]}" "${MED_P99[nginx]}" "${MED_P99[haproxy]}")"
    row+=" $(ratio "${MED_P99[needle]}" "${MED_P99[nginx]}") |"
    row+=" ${MED_ERRS[needle]} / ${MED_ERRS[nginx]} / ${MED_ERRS[haproxy]} |"
    rows+=("$row")
  done
done

report="$(report_path throughput-matrix)"
{
  echo "needle throughput matrix: wrk -t1 -d$DURATION, median of $REPEAT rounds, warmup $WARMUP"
  echo "cpus: servers '${SERVER_CPUS:-any}', wrk '${WRK_CPUS:-any}'; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "| body | conns | direct rps | needle rps | nginx rps | haproxy rps | needle/nginx | needle/haproxy | needle/direct | p99 ms needle / nginx / haproxy | p99 needle/nginx | errors needle / nginx / haproxy |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "$report"
log "report written to $report"
