#!/usr/bin/env bash
# One entry point for people and CI. Each command installs what is missing (Debian packages,
# via deploy/setup.sh; the Kafka broker jars, via Maven, on first use) and builds first.
#
#   ./dev.sh demo [ARGS]   set up, build, run `cybersyn demo ARGS` on the embedded broker
#   ./dev.sh test [ARGS]   set up, build, run the whole test suite (ARGS go to ctest),
#                          including the integration tests against a real Kafka 4.x broker
#   ./dev.sh build         set up and build only (binary: build/cli/cybersyn)
#   ./dev.sh setup         install the Debian packages only
#
# Environment: BUILD_DIR (default build), BUILD_TYPE (default RelWithDebInfo),
# CYBERSYN_SANITIZE (address|thread; default none), JOBS (default: number of cores).
set -euo pipefail
cd "$(dirname "$0")"
BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
JOBS=${JOBS:-$(nproc)}

setup() { bash deploy/setup.sh; }


build() {
  setup
  local t0=$SECONDS
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" \
    -DCYBERSYN_SANITIZE="${CYBERSYN_SANITIZE:-}" >/dev/null
  cmake --build "$BUILD_DIR" -j "$JOBS"
  echo "dev.sh: built in $((SECONDS - t0)) s ($BUILD_DIR)"
}

cmd=${1:-help}
shift || true
case "$cmd" in
  setup) setup ;;
  build) build ;;
  demo) build; exec "$BUILD_DIR/cli/cybersyn" demo "$@" ;;
  test)
    # The suite also checks deployment files with promtool, docker-compose and a schema validator.
    CYBERSYN_SETUP_EXTRAS="${CYBERSYN_SETUP_EXTRAS:-prometheus deploy}" build
    t0=$SECONDS
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" "$@"
    echo "dev.sh: tests took $((SECONDS - t0)) s"
    ;;
  help|-h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) echo "dev.sh: unknown command '$cmd'" >&2; sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
