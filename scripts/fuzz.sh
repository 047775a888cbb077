#!/usr/bin/env bash
# scripts/fuzz.sh [seconds]: builds the libFuzzer targets (tests/fuzz) with clang-14 in the
# ASan+UBSan build (build/asan, shared with scripts/test.sh) and runs each for `seconds`
# (default 30) from its seed corpus and its kept findings, with the HTTP dictionary. For a long
# run: scripts/fuzz.sh 3600, or `cmake --build build/asan --target fuzz` (10 minutes each).
# Exits non-zero on a crash, a sanitizer report, a hang or an invariant failure; the input that
# failed is left in <build>/fuzz/artifacts/. Once fixed, keep it as a regression case in
# tests/fuzz/regressions/<target>/ (CTest runs those, label "fuzz"), and for a parser finding
# also in tests/corpus/ when the proxy's answer to it is worth asserting end to end.
# New inputs found while fuzzing go to <build>/fuzz/work/<target>/, never into the source tree.
# Env: NEEDLE_JOBS (2) build parallelism; NEEDLE_FUZZ_BUILD (build/asan) build dir;
#      NEEDLE_FUZZ_NO_BUILD=1 runs what is built (scripts/test.sh, the `fuzz` target);
#      NEEDLE_FUZZ_TARGETS to run only some targets; CC/CXX (clang-14/clang++-14).
set -euo pipefail

seconds="${1:-30}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
build="${NEEDLE_FUZZ_BUILD:-build/asan}"
jobs="${NEEDLE_JOBS:-2}"
export CC="${CC:-clang-14}" CXX="${CXX:-clang++-14}"
read -r -a targets <<<"${NEEDLE_FUZZ_TARGETS:-fuzz_request_parser fuzz_response_parser fuzz_request_roundtrip fuzz_session}"
declare -A seeds=([fuzz_request_parser]=request [fuzz_response_parser]=response
                  [fuzz_request_roundtrip]=request [fuzz_session]=session)

if [[ "${NEEDLE_FUZZ_NO_BUILD:-0}" == "0" ]]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNEEDLE_SANITIZE=address,undefined \
    -DNEEDLE_BUILD_FUZZERS=ON >/dev/null
  cmake --build "$build" -j"$jobs" --target "${targets[@]}"
fi

out="$build/fuzz"
mkdir -p "$out/artifacts"
status=0
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/$t"
  if [[ ! -x "$bin" ]]; then
    echo "fuzz.sh: $bin is not built" >&2
    status=1
    continue
  fi
  work="$out/work/$t"
  mkdir -p "$work"
  corpora=("$work" "tests/fuzz/corpus/${seeds[$t]}")
  [[ -d "tests/fuzz/regressions/$t" ]] && corpora+=("tests/fuzz/regressions/$t")
  echo "== fuzz.sh: $t for ${seconds}s"
  # -max_len covers the largest seeds (the 431/413 cases are ~5 KiB); new inputs go to $work.
  # A failure leaves crash-/leak-/timeout-<sha1> in $out/artifacts/.
  if ! ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}" \
      "$bin" "${corpora[@]}" -dict=tests/fuzz/http.dict -max_total_time="$seconds" \
      -max_len=16384 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$out/artifacts/$t-" >"$out/$t.log" 2>&1; then
    echo "fuzz.sh: $t FAILED; log $out/$t.log, input:" >&2
    grep -E 'Test unit written to|artifact_prefix' "$out/$t.log" >&2 || true
    tail -60 "$out/$t.log" >&2
    status=1
  else
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$out/$t.log" | tr '\n' ' '
    grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "$out/$t.log" | tail -1
  fi
done
exit "$status"
