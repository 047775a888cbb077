#!/usr/bin/env bash
# The whole test run, as CI does it: dependencies, a release build, then every CTest test.
# Exits with ctest's status.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

bash scripts/install-deps.sh
bash scripts/build.sh build/release

status=0
ctest --test-dir build/release --output-on-failure -j2 --timeout 600 || status=$?
exit "$status"
