#!/usr/bin/env bash
# scripts/fuzz.sh [seconds]: builds the libFuzzer targets (tests/fuzz) with clang-14 in
# build/fuzz and runs each for `seconds` (default 30) from its seed corpus with the HTTP
# dictionary. Exits non-zero on a crash, a sanitizer report or an invariant failure; the input
# that failed is left in build/fuzz/artifacts/ (add it to tests/corpus as a regression case).
# New inputs found while fuzzing go to build/fuzz/work/<target>/, never into the source tree.
# Env: NEEDLE_JOBS (2) build parallelism; NEEDLE_FUZZ_BUILD (build/fuzz) build dir;
#      CC/CXX (clang-14/clang++-14).
set -euo pipefail

seconds="${1:-30}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
build="${NEEDLE_FUZZ_BUILD:-build/fuzz}"
jobs="${NEEDLE_JOBS:-2}"
export CC="${CC:-clang-14}" CXX="${CXX:-clang++-14}"
targets=(fuzz_request_parser fuzz_response_parser fuzz_request_roundtrip)
declare -A seeds=([fuzz_request_parser]=request [fuzz_response_parser]=response
                  [fuzz_request_roundtrip]=request)

if ! grep -q 'tests/fuzz' CMakeLists.txt; then
  echo "fuzz.sh: the top CMakeLists.txt does not add tests/fuzz (if(NEEDLE_BUILD_FUZZERS) add_subdirectory(tests/fuzz) endif())" >&2
  exit 2
fi

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNEEDLE_BUILD_FUZZERS=ON \
  -DNEEDLE_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$jobs" --target "${targets[@]}"

mkdir -p "$build/artifacts"
status=0
for t in "${targets[@]}"; do
  work="$build/work/$t"
  mkdir -p "$work"
  echo "== fuzz.sh: $t for ${seconds}s"
  # -max_len covers the largest seeds (the 431/413 cases are ~5 KiB); new inputs go to $work.
  if ! "$build/tests/fuzz/$t" "$work" "tests/fuzz/corpus/${seeds[$t]}" \
      -dict=tests/fuzz/http.dict -max_total_time="$seconds" -max_len=16384 -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
      >"$build/$t.log" 2>&1; then
    echo "fuzz.sh: $t FAILED; see $build/$t.log and $build/artifacts/" >&2
    tail -40 "$build/$t.log" >&2
    status=1
  else
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$build/$t.log" | tr '\n' ' '
    echo
  fi
done
exit "$status"
