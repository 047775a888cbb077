#!/usr/bin/env bash
# The 502 story, live: the Express app on 127.0.0.1:3000 behind needle on 127.0.0.1:8080.
# Stops the app when needle exits.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

bash scripts/install-deps.sh
bash scripts/build.sh build/release

PORT=3000 node examples/app/server.js &
app_pid=$!
trap 'kill "$app_pid" 2>/dev/null || true; wait "$app_pid" 2>/dev/null || true' EXIT

# Wait (bounded) until the app listens, so needle's first request finds it.
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null http://127.0.0.1:3000/stats 2>/dev/null; then break; fi
  if ! kill -0 "$app_pid" 2>/dev/null; then
    echo "run-example: the app exited; is port 3000 in use?" >&2
    exit 1
  fi
  sleep 0.1
done

echo "needle on http://127.0.0.1:8080 -> app on 127.0.0.1:3000; try: curl http://127.0.0.1:8080/hello"
# Not exec'd, so the EXIT trap stays to stop the app; INT and TERM are passed on to needle
# (background children of a script ignore SIGINT, so Ctrl-C reaches needle only this way).
build/release/src/needle run -c examples/needle.toml &
needle_pid=$!
trap 'kill -TERM "$needle_pid" 2>/dev/null || true' INT TERM
status=0
wait "$needle_pid" || status=$?
while kill -0 "$needle_pid" 2>/dev/null; do  # woken by a trapped signal: wait for the exit
  status=0
  wait "$needle_pid" || status=$?
done
exit "$status"
