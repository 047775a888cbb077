#!/usr/bin/env bash
# Soak: DURATION (default 600 s) of mixed load through needle against an nginx upstream that
# flaps (stopped for FLAP_DOWN seconds every FLAP_EVERY seconds), then checks that needle is
# alive, serves again, and that its fd count and RSS came back near where they started.
# Load: wrk keep-alive clients on a mix of 12 B / 4 KiB / 256 KiB bodies, plus wrk clients that
# open a new connection per request. Failed requests while the upstream is down are expected
# (502/503) and counted; what must not happen is a crash, a leak or a needle that stays broken.
# Env: DURATION (600, seconds), FLAP_EVERY (30), FLAP_DOWN (2), CONNECTIONS (32),
#      FD_SLACK (8), RSS_SLACK_KIB (16384), NEEDLE_BIN (build/release/src/needle).
# Prints a summary and appends nothing itself; exit 0 = passed, 1 = failed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION="${DURATION:-600}"
DURATION="${DURATION%s}"
FLAP_EVERY="${FLAP_EVERY:-30}"
FLAP_DOWN="${FLAP_DOWN:-2}"
CONNECTIONS="${CONNECTIONS:-32}"
FD_SLACK="${FD_SLACK:-8}"
RSS_SLACK_KIB="${RSS_SLACK_KIB:-16384}"

[[ -x "$NEEDLE_BIN" ]] || die "needle is not built ($NEEDLE_BIN missing): run scripts/build.sh"
bench_init

# ---- the flapping upstream: nginx (keepalive_timeout 5 s), restarted in place ----
UPSTREAM_KEEPALIVE_TIMEOUT=5s UPSTREAM_KEEPALIVE_REQUESTS=1000 start_nginx_upstream

# ---- needle: a config file, 1 worker, idle timeout below nginx's 5 s ----
NEEDLE_PORT="$(free_port)"
NEEDLE_ADMIN_PORT="$(free_port)"
cat >"$BENCH_TMP/needle.toml" <<CONF
[server]
workers = 1
access_log = "off"
header_timeout = "5s"

[[listener]]
address = "127.0.0.1:$NEEDLE_PORT"

[admin]
address = "127.0.0.1:$NEEDLE_ADMIN_PORT"

[[route]]
path_prefix = "/"
cluster = "app"

[cluster.app]
hosts = ["127.0.0.1:$UPSTREAM_PORT"]
idle_timeout = "5s"
connect_timeout = "1s"
response_timeout = "5s"
eject_duration = "1s"
CONF
"$NEEDLE_BIN" run -c "$BENCH_TMP/needle.toml" >/dev/null 2>"$BENCH_TMP/needle.log" &
needle_pid=$!
BENCH_PIDS+=("$needle_pid")
wait_port "$NEEDLE_PORT" "$needle_pid" || die "needle did not start: $(tail -c 2000 "$BENCH_TMP/needle.log")"
check_url "http://127.0.0.1:$NEEDLE_PORT/12b"

fds() { ls "/proc/$needle_pid/fd" 2>/dev/null | wc -l; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$needle_pid/status" 2>/dev/null || echo 0; }

cat >"$BENCH_TMP/mix.lua" <<'LUA'
-- 70 % 12 B, 25 % 4 KiB, 5 % 256 KiB
local paths = {}
for i = 1, 14 do paths[#paths + 1] = "/12b" end
for i = 1, 5 do paths[#paths + 1] = "/4k" end
paths[#paths + 1] = "/256k"
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
LUA

# Warm up (buffers, pools), then take the baseline.
wrk -t1 -c"$CONNECTIONS" -d3s -s "$BENCH_TMP/mix.lua" "http://127.0.0.1:$NEEDLE_PORT" >/dev/null 2>&1 || true
sleep 7  # as at the end: idle upstream connections expire (idle_timeout 5 s)
fd_start="$(fds)"
rss_start="$(rss)"
log "start: needle pid $needle_pid, fds $fd_start, rss ${rss_start} KiB; ${DURATION}s, upstream down ${FLAP_DOWN}s every ${FLAP_EVERY}s"

wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -s "$BENCH_TMP/mix.lua" \
  "http://127.0.0.1:$NEEDLE_PORT" >"$BENCH_TMP/wrk-keepalive.txt" 2>&1 &
wrk_ka=$!
wrk -t1 -c4 -d"${DURATION}s" -H "Connection: close" \
  "http://127.0.0.1:$NEEDLE_PORT/12b" >"$BENCH_TMP/wrk-close.txt" 2>&1 &
wrk_close=$!
BENCH_PIDS+=("$wrk_ka" "$wrk_close")

flaps=0
elapsed=0
samples=()
while ((elapsed + FLAP_EVERY <= DURATION)); do
  sleep "$((FLAP_EVERY - FLAP_DOWN))"
  stop_nginx_upstream
  sleep "$FLAP_DOWN"
  run_nginx_upstream
  flaps=$((flaps + 1))
  elapsed=$((elapsed + FLAP_EVERY))
  kill -0 "$needle_pid" 2>/dev/null || die "needle died after ${elapsed}s: $(tail -c 2000 "$BENCH_TMP/needle.log")"
  samples+=("${elapsed}s:fds=$(fds),rss=$(rss)KiB")
  log "t=${elapsed}s flap $flaps: fds $(fds), rss $(rss) KiB"
done
wait "$wrk_ka" || true
wait "$wrk_close" || true

kill -0 "$needle_pid" 2>/dev/null || die "needle died: $(tail -c 2000 "$BENCH_TMP/needle.log")"
sleep 7  # idle upstream connections expire (idle_timeout 5 s), client connections are gone
check_url "http://127.0.0.1:$NEEDLE_PORT/12b"
fd_end="$(fds)"
rss_end="$(rss)"

summarize() {  # FILE: "requests non2xx socket_errors rps"
  awk '/requests in/ {r = $1}
       /Socket errors:/ {gsub(",", ""); s = $4 + $6 + $8 + $10}
       /Non-2xx or 3xx responses:/ {n = $5}
       /^Requests\/sec:/ {rps = $2}
       END {printf "%d %d %d %s\n", r, n, s, rps}' "$1"
}
read -r ka_req ka_non2xx ka_sock ka_rps < <(summarize "$BENCH_TMP/wrk-keepalive.txt")
read -r cl_req cl_non2xx cl_sock cl_rps < <(summarize "$BENCH_TMP/wrk-close.txt")

status=0
verdict="PASS"
if ((fd_end > fd_start + FD_SLACK)); then verdict="FAIL (fds grew)"; status=1; fi
if ((rss_end > rss_start + RSS_SLACK_KIB)); then verdict="FAIL (rss grew)"; status=1; fi

echo "soak: ${DURATION}s, $flaps upstream flaps (${FLAP_DOWN}s down every ${FLAP_EVERY}s), $(nproc) cores"
echo "soak: keep-alive mix  -c$CONNECTIONS: $ka_req requests, $ka_rps rps, non-2xx $ka_non2xx, socket errors $ka_sock"
echo "soak: conn-per-request -c4: $cl_req requests, $cl_rps rps, non-2xx $cl_non2xx, socket errors $cl_sock"
echo "soak: needle fds start $fd_start end $fd_end; rss start ${rss_start} KiB end ${rss_end} KiB"
echo "soak: samples ${samples[*]:-none}"
echo "soak: operational log lines: $(wc -l <"$BENCH_TMP/needle.log"); most common (request ids and numbers elided):"
sed -E 's/^[^ ]+ //; s/request [^ ]+/request ID/; s/[0-9]+/N/g' "$BENCH_TMP/needle.log" |
  sort | uniq -c | sort -rn | head -5 | sed 's/^/soak:   /'
curl -s --max-time 5 "http://127.0.0.1:$NEEDLE_ADMIN_PORT/metrics" >"$BENCH_TMP/metrics.txt" || true
echo "soak: 5xx by cause (needle metrics):"
grep -E '^needle_[a-z_]*5xx[a-z_]*\{' "$BENCH_TMP/metrics.txt" | grep -v ' 0$' | sed 's/^/soak:   /' | head -12
echo "soak: $verdict"
exit "$status"
