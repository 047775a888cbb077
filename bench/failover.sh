#!/usr/bin/env bash
# Failover (issue 20): needle, nginx (max_fails) and HAProxy (check) in front of the same three
# upstreams (nginx app servers serving /12b), loaded at the same time by one wrk each; one
# upstream is stopped hard (SIGTERM: nginx's fast shutdown closes every connection at once, as
# a crash does for the clients) a third of the way in and started again on the same port two
# thirds of the way in. Per proxy: requests, failed requests (socket errors + non-2xx) and p99
# over the whole run, which contains the event.
#   nginx    upstream of 3 servers, max_fails=1 fail_timeout=5s, keepalive 64,
#            proxy_next_upstream error timeout (its default; GETs go to the next server)
#   haproxy  3 servers, check inter 500ms fall 2 rise 2, retries 2, option redispatch,
#            retry-on conn-failure empty-response response-timeout
#   needle   1 worker, [cluster.app.health_check] interval 500ms timeout 250ms thresholds 2/2,
#            [cluster.app.outlier_detection] consecutive_gateway_failure 3
#
#   bench/failover.sh                          # 30 s, 32 connections per proxy
#   DURATION=60 CONNECTIONS=64 bench/failover.sh
#
# The table is also written to bench/out/failover-<UTC time>.txt. Needs: nginx, haproxy, wrk,
# python3, curl. NEEDLE_BIN as in bench/lib.sh.
source "$(dirname "$0")/lib.sh"
bench_init

DURATION="${DURATION:-30}"
CONNECTIONS="${CONNECTIONS:-32}"

# start_app N: nginx app server N (re-startable in place); sets APP_PORT[N], APP_PID[N].
declare -A APP_PORT APP_PID
write_app() {
  local n="$1" dir="$BENCH_TMP/app$1"
  mkdir -p "$dir"
  {
    nginx_common "$dir" 1
    echo "http {"
    nginx_http_common "$dir"
    cat <<CONF
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:${APP_PORT[$n]} backlog=4096;
    location = /12b { return 200 "hello world\n"; }
    location = /healthz { return 200 "ok\n"; }
  }
}
CONF
  } >"$dir/nginx.conf"
}
start_app() {
  local n="$1" dir="$BENCH_TMP/app$1"
  start_bg "app$n" "$NGINX_BIN" -p "$dir" -c "$dir/nginx.conf"
  APP_PID[$n]=$LAST_PID
  wait_port "${APP_PORT[$n]}" "$LAST_PID" || die "upstream $n did not start"
}
for n in 1 2 3; do
  APP_PORT[$n]="$(free_port)"
  write_app "$n"
  start_app "$n"
done

# nginx in front of the three.
NGINX_DIR="$BENCH_TMP/nginx-proxy"
mkdir -p "$NGINX_DIR"
NGINX_PORT="$(free_port)"
{
  nginx_common "$NGINX_DIR" 1
  echo "http {"
  nginx_http_common "$NGINX_DIR"
  cat <<CONF
  upstream app {
    server 127.0.0.1:${APP_PORT[1]} max_fails=1 fail_timeout=5s;
    server 127.0.0.1:${APP_PORT[2]} max_fails=1 fail_timeout=5s;
    server 127.0.0.1:${APP_PORT[3]} max_fails=1 fail_timeout=5s;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout;
    }
  }
}
CONF
} >"$NGINX_DIR/nginx.conf"
start_bg nginx-proxy "$NGINX_BIN" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf"
wait_port "$NGINX_PORT" "$LAST_PID" || die "nginx proxy did not start"

# HAProxy in front of the three.
HAPROXY_DIR="$BENCH_TMP/haproxy"
mkdir -p "$HAPROXY_DIR"
HAPROXY_PORT="$(free_port)"
cat >"$HAPROXY_DIR/haproxy.cfg" <<CONF
global
  maxconn 4096
defaults
  mode http
  option http-keep-alive
  option redispatch
  retries 2
  retry-on conn-failure empty-response response-timeout
  timeout connect 1s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend app
backend app
  option httpchk GET /healthz
  default-server check inter 500ms fall 2 rise 2
  server app1 127.0.0.1:${APP_PORT[1]}
  server app2 127.0.0.1:${APP_PORT[2]}
  server app3 127.0.0.1:${APP_PORT[3]}
CONF
start_bg haproxy "$HAPROXY_BIN" -f "$HAPROXY_DIR/haproxy.cfg" -db
wait_port "$HAPROXY_PORT" "$LAST_PID" || die "haproxy did not start"

# needle in front of the three.
[[ -x "$NEEDLE_BIN" ]] || die "needle is not built at $NEEDLE_BIN: run scripts/build.sh"
NEEDLE_PORT="$(free_port)"
NEEDLE_ADMIN_PORT="$(free_port)"
cat >"$BENCH_TMP/needle.toml" <<CONF
[server]
workers = 1
access_log = "off"
[[listener]]
address = "127.0.0.1:$NEEDLE_PORT"
[admin]
address = "127.0.0.1:$NEEDLE_ADMIN_PORT"
[[route]]
cluster = "app"
[cluster.app]
hosts = ["127.0.0.1:${APP_PORT[1]}", "127.0.0.1:${APP_PORT[2]}", "127.0.0.1:${APP_PORT[3]}"]
[cluster.app.health_check]
path = "/healthz"
interval = "500ms"
timeout = "250ms"
healthy_threshold = 2
unhealthy_threshold = 2
[cluster.app.outlier_detection]
consecutive_gateway_failure = 3
base_ejection_time = "5s"
CONF
start_bg needle "$NEEDLE_BIN" run -c "$BENCH_TMP/needle.toml"
wait_port "$NEEDLE_PORT" "$LAST_PID" || die "needle did not start: $(cat "$BENCH_TMP/needle.log")"

for port in "$NGINX_PORT" "$HAPROXY_PORT" "$NEEDLE_PORT"; do check_url "http://127.0.0.1:$port/12b"; done

declare -A RESULT
run_load() {  # NAME PORT: wrk's summary into $BENCH_TMP/NAME.wrk
  local cmd=(wrk -t1 "-c$CONNECTIONS" "-d${DURATION}s" --latency "http://127.0.0.1:$2/12b")
  if [[ -n "$WRK_CPUS" ]]; then cmd=(taskset -c "$WRK_CPUS" "${cmd[@]}"); fi
  "${cmd[@]}" >"$BENCH_TMP/$1.wrk" 2>&1
}
log "load through nginx, haproxy and needle for ${DURATION}s; upstream 2 stops at $((DURATION / 3))s and restarts at $((2 * DURATION / 3))s"
LOADS=()
for proxy in nginx:$NGINX_PORT haproxy:$HAPROXY_PORT needle:$NEEDLE_PORT; do
  run_load "${proxy%%:*}" "${proxy##*:}" &
  LOADS+=($!)
done
sleep $((DURATION / 3))
kill -TERM "${APP_PID[2]}"
wait "${APP_PID[2]}" 2>/dev/null || true
log "upstream 2 stopped"
sleep $((DURATION / 3))
start_app 2
log "upstream 2 started again"
for pid in "${LOADS[@]}"; do wait "$pid"; done

REPORT="$(report_path failover)"
{
  echo "failover: ${DURATION}s, ${CONNECTIONS} connections per proxy, 3 upstreams, one stopped at $((DURATION / 3))s and restarted at $((2 * DURATION / 3))s"
  printf '%-8s %10s %8s %10s\n' proxy requests failed p99_ms
  for proxy in nginx haproxy needle; do
    out="$(cat "$BENCH_TMP/$proxy.wrk")"
    requests="$(awk '/requests in/ {print $1}' <<<"$out")"
    failed="$(awk '/Socket errors:/ {gsub(",", ""); s = $4 + $6 + $8 + $10}
                   /Non-2xx or 3xx responses:/ {n = $5}
                   END {print s + n}' <<<"$out")"
    p99="$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
    printf '%-8s %10s %8s %10s\n' "$proxy" "${requests:-?}" "${failed:-?}" "$p99"
  done
  echo "needle /pools health after the run:"
  curl -s "http://127.0.0.1:$NEEDLE_ADMIN_PORT/pools" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get("health"), indent=1))'
} | tee "$REPORT"
