#!/usr/bin/env bash
# Configures and builds needle (RelWithDebInfo unless a -DCMAKE_BUILD_TYPE is passed).
# Usage: scripts/build.sh [build-dir] [cmake args...]   (build-dir defaults to build/release)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${1:-build/release}"
(($#)) && shift
[[ "$build_dir" = /* ]] || build_dir="$repo_root/$build_dir"

cmake -S "$repo_root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build "$build_dir" -j"$(nproc)"
