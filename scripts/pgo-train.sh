#!/usr/bin/env bash
# Training run for the profile-guided build (docs/decisions/0003-profile-guided-build.md):
# drives an instrumented needle (-DNEEDLE_PGO=generate) with the traffic it is built for, in
# front of the benchmarks' nginx upstream, then stops it with SIGTERM so that it writes its
# profile (.gcda files under the build's NEEDLE_PGO_DIR) on exit.
# Usage: scripts/pgo-train.sh NEEDLE_BINARY
# The mix: keep-alive GETs of 12 B at 64 and 8 connections (the throughput benchmark's traffic,
# which is also every request's common path) with the access log off, as the benchmarks run, then
# on; 4 KiB and 256 KiB responses; POST bodies with Content-Length and chunked; new connections;
# /metrics. Code the run never reaches is compiled as without a profile
# (-fprofile-partial-training), so a path left out is not made slower; a path trained little is
# optimized for size, hence the bodies and connections here. About 20 s.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../bench/lib.sh"

binary="${1:?usage: pgo-train.sh NEEDLE_BINARY}"
[[ -x "$binary" ]] || die "pgo-train: $binary is not an executable"

bench_init
start_nginx_upstream

# start_trainee [ARGS...]: starts the instrumented needle in quick mode, 1 worker, with ARGS;
# sets base, admin and trainee_pid. stop_trainee: SIGTERM; needle writes (merges) its profile.
start_trainee() {
  local port
  port="$(free_port)"
  admin="http://127.0.0.1:$(free_port)"
  "$binary" run --listen "127.0.0.1:$port" --upstream "127.0.0.1:$UPSTREAM_PORT" --workers 1 \
    --admin "${admin#http://}" "$@" >/dev/null 2>"$BENCH_TMP/needle.log" &
  trainee_pid=$!
  BENCH_PIDS+=("$trainee_pid")
  wait_port "$port" "$trainee_pid" ||
    die "pgo-train: needle did not start: $(cat "$BENCH_TMP/needle.log")"
  base="http://127.0.0.1:$port"
}
stop_trainee() {
  kill -TERM "$trainee_pid"
  local rc=0
  wait "$trainee_pid" || rc=$?
  ((rc == 0)) || die "pgo-train: needle exited with $rc: $(tail -c 2000 "$BENCH_TMP/needle.log")"
}

# 1. Access log off (as the benchmarks run every proxy): the keep-alive GETs.
start_trainee --access-log off
run_wrk "$base/12b" 4s 64 >/dev/null
run_wrk "$base/12b" 2s 8 >/dev/null
run_wrk "$base/4k" 1s 16 >/dev/null
run_wrk "$base/256k" 1s 4 >/dev/null
stop_trainee

# 2. Access log on (written to /dev/null), as in a default configuration: GETs, then POST
# bodies: 16 KiB with Content-Length over keep-alive (wrk), then each framing by curl on new
# connections (1 MiB Content-Length, 1 MiB chunked, 0 B), and /metrics.
start_trainee
run_wrk "$base/12b" 2s 64 >/dev/null
body="$BENCH_TMP/body-16k"
head -c 16384 /dev/zero | tr '\0' 'p' >"$body"
cat >"$BENCH_TMP/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
local f = io.open("$body", "rb")
wrk.body = f:read("*a")
f:close()
LUA
wrk_cmd=(wrk -t1 -c8 -d1s -s "$BENCH_TMP/post.lua" "$base/sink")
if [[ -n "$WRK_CPUS" ]]; then wrk_cmd=(taskset -c "$WRK_CPUS" "${wrk_cmd[@]}"); fi
"${wrk_cmd[@]}" >>"$BENCH_TMP/wrk.log" 2>&1 || die "pgo-train: wrk POST failed"
head -c 1048576 /dev/zero | tr '\0' 'q' >"$BENCH_TMP/body-1m"
for _ in $(seq 1 20); do
  curl -fsS -o /dev/null --data-binary "@$BENCH_TMP/body-1m" "$base/sink"
  curl -fsS -o /dev/null -H 'Transfer-Encoding: chunked' --data-binary "@$BENCH_TMP/body-1m" \
    "$base/sink"
  curl -fsS -o /dev/null -X POST -H 'Content-Length: 0' "$base/sink"
  curl -fsS -o /dev/null "$admin/metrics"
done
stop_trainee
log "pgo-train: done"
