#!/usr/bin/env bash
# Configures and builds needle (RelWithDebInfo unless a -DCMAKE_BUILD_TYPE is passed), profile
# guided (docs/decisions/0003-profile-guided-build.md):
#   1. BUILD_DIR-pgo-train: the needle binary instrumented (-DNEEDLE_PGO=generate, no tests)
#   2. scripts/pgo-train.sh runs it in front of an nginx upstream (~20 s); the profile lands in
#      BUILD_DIR/pgo-profile, written afresh each time
#   3. BUILD_DIR: everything, compiled with that profile (-DNEEDLE_PGO=use)
# Rerun after a change, both builds are incremental; the retrained profile matches the changed
# sources, and the objects not rebuilt were compiled from unchanged sources.
# Without g++, nginx or wrk (scripts/install-deps.sh installs them), or with NEEDLE_PGO=0, it is
# one plain build (about 20 % fewer requests per second: bench/RESULTS.md).
# Usage: scripts/build.sh [build-dir] [cmake args...]   (build-dir defaults to build/release)
# Env: NEEDLE_PGO (1), NEEDLE_JOBS (nproc).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${1:-build/release}"
(($#)) && shift
[[ "$build_dir" = /* ]] || build_dir="$repo_root/$build_dir"
jobs="${NEEDLE_JOBS:-$(nproc)}"

pgo="${NEEDLE_PGO:-1}"
if [[ "$pgo" != "0" ]]; then
  missing=""
  "${CXX:-c++}" --version 2>/dev/null | grep -qi "free software foundation" || missing+=" g++"
  for tool in nginx wrk; do
    command -v "$tool" >/dev/null 2>&1 || [[ -x "/usr/sbin/$tool" ]] || missing+=" $tool"
  done
  if [[ -n "$missing" ]]; then
    echo "build.sh: building without a profile (missing:$missing; scripts/install-deps.sh)" >&2
    pgo=0
  fi
fi

if [[ "$pgo" == "0" ]]; then
  cmake -S "$repo_root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNEEDLE_PGO= "$@"
  cmake --build "$build_dir" -j"$jobs"
  exit 0
fi

profile_dir="$build_dir/pgo-profile"
train_dir="$build_dir-pgo-train"
echo "build.sh: instrumented build in $train_dir" >&2
cmake -S "$repo_root" -B "$train_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNEEDLE_BUILD_TESTS=OFF \
  -DNEEDLE_PGO=generate "-DNEEDLE_PGO_DIR=$profile_dir" "$@" >/dev/null
cmake --build "$train_dir" -j"$jobs" --target needle
rm -rf "$profile_dir"
echo "build.sh: training run (scripts/pgo-train.sh)" >&2
bash "$repo_root/scripts/pgo-train.sh" "$train_dir/src/needle"
echo "build.sh: profile-guided build in $build_dir" >&2
cmake -S "$repo_root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNEEDLE_PGO=use \
  "-DNEEDLE_PGO_DIR=$profile_dir" "$@"
cmake --build "$build_dir" -j"$jobs"
