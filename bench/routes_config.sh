#!/usr/bin/env bash
# Prints a needle.toml with ROUTES routes (default 50) for the throughput benchmark with a
# realistic routing table (issue 19: routing must not cost the plain path). The request path
# of the benchmark (/12b) is served by the last, catch-all route, so every request walks the
# whole table: path_exact routes, path_regex routes (RE2) and prefixes of the default group,
# plus wildcard-host and exact-host groups that the benchmark's Host does not name; a fifth of
# the routes carry header rules and one returns a redirect.
# Usage: bench/routes_config.sh LISTEN_PORT UPSTREAM_PORT ADMIN_PORT [ROUTES]
set -euo pipefail
listen="$1" upstream="$2" admin="$3" routes="${4:-50}"
cat <<TOML
[server]
workers = 1
access_log = "off"
trusted_proxies = ["10.0.0.0/8"]

[[listener]]
address = "127.0.0.1:$listen"

[admin]
address = "127.0.0.1:$admin"

[cluster.app]
hosts = ["127.0.0.1:$upstream"]
TOML
for ((i = 0; i < routes - 1; i++)); do
  echo "[[route]]"
  case $((i % 5)) in
    0) echo "path_exact = \"/exact/$i\"" ;;
    1) echo "path_regex = '^/re$i/[0-9]+\$'" ;;
    2) echo "host = \"*.tenant$i.example\""; echo "path_prefix = \"/\"" ;;
    3) echo "host = \"h$i.example\""; echo "path_prefix = \"/\"" ;;
    4) echo "path_prefix = \"/svc$i/\""
       echo "request_headers = { set = { \"X-Svc\" = \"$i\" }, add = { \"X-Client\" = \"\$client_addr\" } }" ;;
  esac
  if ((i == 7)); then
    echo "return = { status = 301, headers = { Location = \"/moved\$request_uri\" } }"
  else
    echo "cluster = \"app\""
  fi
done
echo "[[route]]"
echo "path_prefix = \"/\""
echo "cluster = \"app\""
