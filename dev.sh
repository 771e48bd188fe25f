#!/usr/bin/env bash
# One entry point for people and CI. Each command installs what is missing (Debian packages,
# via deploy/setup.sh; the Kafka broker jars, via Maven, on first use) and builds first.
#
#   ./dev.sh demo [ARGS]   set up, build, run `cybersyn demo ARGS` on the embedded broker
#   ./dev.sh test [ARGS]   set up, build, run the whole test suite (ARGS go to ctest),
#                          including the integration tests against a real Kafka 4.x broker;
#                          then (without ARGS; CYBERSYN_ASAN=0 skips it) the `asan` step below
#   ./dev.sh asan [ARGS]   unit + embedded-broker tests + fuzz corpus replays (label unit) and the
#                          fast real-broker integration tests (label fast), ctest ARGS, under
#                          ASan+UBSan, built into build-asan (only those test targets, -O1)
#   ./dev.sh tsan [ARGS]   the unit ones under ThreadSanitizer, in build-tsan
#   CYBERSYN_SANITIZE=thread ./dev.sh test [ARGS]
#                          `test` with the whole tree (binary, integration tests; no benchmarks)
#                          built under TSan into build-tsan-full, and no ASan step after it
#                          (=address: ASan+UBSan, build-asan-full); any report fails its test.
#                          Add CYBERSYN_CHAOS=0: the soak was not tried under a sanitizer yet
#   ./dev.sh fuzz [MIN]    clang libFuzzer build in build-fuzz; runs every fuzz target for MIN
#                          minutes (default 1) from fuzz/corpus/, FUZZ_JOBS (default 1) at once
#   ./dev.sh build         set up and build only (binary: build/cli/cybersyn)
#   ./dev.sh setup         install the Debian packages only
#
# Environment: BUILD_DIR (default build; build-tsan-full/build-asan-full with
# CYBERSYN_SANITIZE), BUILD_TYPE (default RelWithDebInfo),
# CYBERSYN_SANITIZE (address|thread; default none), JOBS (default: number of cores),
# CYBERSYN_ASAN=0 (`test` skips the ASan+UBSan step), CYBERSYN_CHAOS=0 (`test` skips the
# 2-minute chaos soak, tests/chaos/, about 7 minutes).
set -euo pipefail
cd "$(dirname "$0")"
case "${CYBERSYN_SANITIZE:-}" in  # never reconfigure the plain build with a sanitizer
  thread) BUILD_DIR=${BUILD_DIR:-build-tsan-full} ;;
  address) BUILD_DIR=${BUILD_DIR:-build-asan-full} ;;
esac
BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
JOBS=${JOBS:-$(nproc)}

setup() { bash deploy/setup.sh; }


build() {
  setup
  local t0=$SECONDS
  # Benchmarks' ratios mean nothing under a sanitizer: not built there.
  local bench=ON
  [ -z "${CYBERSYN_SANITIZE:-}" ] || bench=OFF
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" \
    -DCYBERSYN_SANITIZE="${CYBERSYN_SANITIZE:-}" -DCYBERSYN_BUILD_BENCH="$bench" >/dev/null
  cmake --build "$BUILD_DIR" -j "$JOBS"
  echo "dev.sh: built in $((SECONDS - t0)) s ($BUILD_DIR)"
}

# sanitized KIND DIR LABELS [CTEST ARGS]: builds only the tests of LABELS (`unit` or `unit fast`;
# targets cybersyn_unit_tests: unit tests, embedded-broker tests, fuzz corpus replays;
# cybersyn_fast_tests: the fast integration tests on the real broker of the CTest fixture) with
# the sanitizer (at -O1 -g1, cmake/CybersynHelpers.cmake) and runs them. No benchmarks. Any
# report fails its test (a child process's too: cmake/CybersynSanitizerReports.cmake): options and
# third-party suppressions are in cmake/sanitizers/defaults.cc.
sanitized() {
  local kind=$1 dir=$2 labels=$3
  shift 3
  local t0=$SECONDS targets=() l
  for l in $labels; do targets+=("cybersyn_${l}_tests"); done
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DCYBERSYN_SANITIZE="$kind" \
    -DCYBERSYN_BUILD_BENCH=OFF >/dev/null
  cmake --build "$dir" -j "$JOBS" --target "${targets[@]}"
  echo "dev.sh: $kind build took $((SECONDS - t0)) s ($dir)"
  t0=$SECONDS
  ctest --test-dir "$dir" --output-on-failure -j "$JOBS" -L "^(${labels// /|})\$" "$@"
  echo "dev.sh: $kind tests took $((SECONDS - t0)) s"
}

# fuzz MINUTES: builds the libFuzzer targets with clang and runs each for MINUTES from its
# corpus; new inputs go to build-fuzz/fuzz/corpus/<target>, crashes to build-fuzz/fuzz/artifacts.
fuzz() {
  local minutes=${1:-1} dir=${FUZZ_BUILD_DIR:-build-fuzz}
  CYBERSYN_SETUP_EXTRAS="fuzz" setup
  CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" \
    -DCYBERSYN_FUZZ=ON -DCYBERSYN_BUILD_BENCH=OFF >/dev/null
  cmake --build "$dir" -j "$JOBS" --target cybersyn_fuzz_targets
  local logs="$dir/fuzz/logs" targets
  mkdir -p "$logs"
  targets=$(cd fuzz && ls *_fuzz.cc | sed 's/_fuzz\.cc$//')
  echo "dev.sh: fuzzing $(echo $targets | wc -w) targets for $minutes min each, ${FUZZ_JOBS:-1} at a time"
  local status=0
  # shellcheck disable=SC2016
  echo "$targets" | xargs -P "${FUZZ_JOBS:-1}" -I{} sh -c '
    "$0/fuzz/{}_fuzz" -max_total_time=$(($1 * 60)) -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$0/fuzz/artifacts/{}-" \
      "$0/fuzz/corpus/{}" fuzz/corpus/{} >"$2/{}.log" 2>&1' "$dir" "$minutes" "$logs" || status=1
  for t in $targets; do
    local runs secs
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -1)
    secs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$t.log" | tail -1)
    if grep -q '^==[0-9]*==ERROR\|^SUMMARY: \|fuzz invariant violated\|Test unit written' "$logs/$t.log"; then
      echo "  $t: CRASH, see $logs/$t.log and $dir/fuzz/artifacts/$t-*"
      status=1
    else
      echo "  $t: ${runs:-?} executions (${secs:-?}/s), no crash"
    fi
  done
  return $status
}

cmd=${1:-help}
shift || true
case "$cmd" in
  setup) setup ;;
  build) build ;;
  demo) build; exec "$BUILD_DIR/cli/cybersyn" demo "$@" ;;
  test)
    # The suite also checks deployment files with promtool, docker-compose and a schema validator,
    # forwards signals to a real Alertmanager and drives the Opsroom in headless Chromium.
    CYBERSYN_SETUP_EXTRAS="${CYBERSYN_SETUP_EXTRAS:-prometheus deploy browser}" build
    t0=$SECONDS
    # The 2-minute chaos soak (label chaos, about 7 min, RUN_SERIAL) runs after the rest, alone:
    # it kills, stalls and restarts processes on a schedule. CYBERSYN_CHAOS=0 skips it; with ARGS
    # ctest decides (`-L chaos` selects it).
    if [ $# -gt 0 ]; then
      ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" "$@"
    else
      ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" -LE chaos
      echo "dev.sh: tests took $((SECONDS - t0)) s"
      if [ "${CYBERSYN_CHAOS:-1}" != 0 ]; then
        t0=$SECONDS
        ctest --test-dir "$BUILD_DIR" --output-on-failure -L chaos
        echo "dev.sh: chaos soak took $((SECONDS - t0)) s"
      fi
    fi
    # The unit, embedded-broker and fast real-broker tests again under ASan+UBSan
    # (CYBERSYN_ASAN=0 skips them).
    if [ $# -eq 0 ] && [ "${CYBERSYN_ASAN:-1}" != 0 ] && [ -z "${CYBERSYN_SANITIZE:-}" ]; then
      sanitized address build-asan "unit fast"
    fi
    ;;
  asan) setup; sanitized address build-asan "unit fast" "$@" ;;
  tsan) setup; sanitized thread build-tsan unit "$@" ;;
  fuzz) fuzz "$@" ;;
  help|-h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' ;;
  *) echo "dev.sh: unknown command '$cmd'" >&2; sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
