#!/usr/bin/env bash
# Before/after of two needle builds on a machine whose speed drifts: A and B (and nginx, for
# scale) run side by side in front of the same nginx upstream, measured in short alternating
# rounds (A B nginx, then B A nginx, ...), so each B round has an A round next to it in time.
# Reports the medians and, the figure to read, the median of the per-round ratios B/A (requests
# per second, and CPU time per request from /proc: user + system) with how many rounds B won.
# Env: A_BIN (required: the "before" build), B_BIN (NEEDLE_BIN: the "after" build),
#      ROUNDS (12), DURATION (3s), CONNECTIONS (64), WARMUP (2s), BODY_PATH (/12b),
#      SERVER_CPUS / WRK_CPUS (taskset lists), EQUAL_HEADERS (lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

A_BIN="${A_BIN:?A_BIN: the needle binary to compare against}"
B_BIN="${B_BIN:-$NEEDLE_BIN}"
ROUNDS="${ROUNDS:-12}"
DURATION="${DURATION:-3s}"
CONNECTIONS="${CONNECTIONS:-64}"
WARMUP="${WARMUP:-2s}"
BODY_PATH="${BODY_PATH:-/12b}"

bench_init
start_nginx_upstream
declare -A pid url
NEEDLE_BIN="$A_BIN" start_needle "$UPSTREAM_PORT" 1 needle-a
pid[a]="$LAST_PID"
url[a]="http://127.0.0.1:$NEEDLE_PORT$BODY_PATH"
NEEDLE_BIN="$B_BIN" start_needle "$UPSTREAM_PORT" 1 needle-b
pid[b]="$LAST_PID"
url[b]="http://127.0.0.1:$NEEDLE_PORT$BODY_PATH"
start_nginx_proxy "$UPSTREAM_PORT"
pid[nginx]="$LAST_PID"
url[nginx]="http://127.0.0.1:$NGINX_PORT$BODY_PATH"
for t in a b nginx; do check_url "${url[$t]}"; done

log "A: $A_BIN"
log "B: $B_BIN"
log "wrk -t1 -c$CONNECTIONS -d$DURATION, $ROUNDS alternating rounds"
for t in a b nginx; do run_wrk "${url[$t]}" "$WARMUP" "$CONNECTIONS" >/dev/null; done

declare -A rps cpu
ratio_rps=""
ratio_cpu=""
ratio_nginx=""
b_wins=0
for round in $(seq 1 "$ROUNDS"); do
  order=(a b nginx)
  ((round % 2 == 0)) && order=(b a nginx)
  declare -A this_rps this_cpu
  for t in "${order[@]}"; do
    ticks="$(proc_cpu_ticks "${pid[$t]}")"
    read -r r _ _ _ < <(run_wrk "${url[$t]}" "$DURATION" "$CONNECTIONS")
    c="$(cpu_us_per_request $(($(proc_cpu_ticks "${pid[$t]}") - ticks)) "$r" "$DURATION")"
    this_rps[$t]="$r"
    this_cpu[$t]="$c"
    rps[$t]+="$r "
    cpu[$t]+="$c "
  done
  ratio_rps+="$(ratio "${this_rps[b]}" "${this_rps[a]}") "
  ratio_cpu+="$(ratio "${this_cpu[b]}" "${this_cpu[a]}") "
  ratio_nginx+="$(ratio "${this_rps[b]}" "${this_rps[nginx]}") "
  if awk -v b="${this_rps[b]}" -v a="${this_rps[a]}" 'BEGIN { exit !(b > a) }'; then
    b_wins=$((b_wins + 1))
  fi
  log "round $round: A ${this_rps[a]} rps ${this_cpu[a]} us, B ${this_rps[b]} rps" \
    "${this_cpu[b]} us, nginx ${this_rps[nginx]} rps ${this_cpu[nginx]} us"
done

mkdir -p "$BENCH_ROOT/bench/out"
report="$BENCH_ROOT/bench/out/ab-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
  echo "needle A/B: $BODY_PATH, wrk -t1 -c$CONNECTIONS -d$DURATION, $ROUNDS alternating rounds"
  echo "A: $A_BIN"
  echo "B: $B_BIN"
  printf '%-6s %12s %12s\n' target rps cpu_us/req
  for t in a b nginx; do
    # shellcheck disable=SC2086  # space-separated numbers
    printf '%-6s %12.0f %12s\n' "$t" "$(median ${rps[$t]})" "$(median ${cpu[$t]})"
  done
  # shellcheck disable=SC2086
  echo "B/A rps, median of per-round ratios: $(median $ratio_rps) (B ahead in $b_wins of $ROUNDS rounds)"
  # shellcheck disable=SC2086
  echo "B/A cpu per request, median of per-round ratios: $(median $ratio_cpu)"
  # shellcheck disable=SC2086
  echo "B/nginx rps, median of per-round ratios: $(median $ratio_nginx)"
} | tee "$report"
log "report written to $report"
