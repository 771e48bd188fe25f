#!/usr/bin/env bash
# Runs the Opsroom browser test: installs playwright-core from npm into a cache under the build
# directory (once; no browser download: it drives Debian's /usr/bin/chromium), then runs
# a test script of this directory. Usage: run.sh CYBERSYN_BINARY ARTEFACT_DIR [TEST.cjs]
# (default opsroom_test.cjs).
set -euo pipefail
BIN=$1
OUT=$2
TEST=${3:-opsroom_test.cjs}
PLAYWRIGHT_VERSION=1.65.1
CHROMIUM=${CYBERSYN_CHROMIUM:-/usr/bin/chromium}
here=$(cd "$(dirname "$0")" && pwd)

for tool in node npm; do
  command -v "$tool" >/dev/null || {
    echo "browser test: '$tool' not found: install the browser extra" \
         "(CYBERSYN_SETUP_EXTRAS=browser bash deploy/setup.sh; ./dev.sh test does this)" >&2
    exit 1
  }
done
[ -x "$CHROMIUM" ] || {
  echo "browser test: $CHROMIUM not found: install the Debian package chromium" \
       "(CYBERSYN_SETUP_EXTRAS=browser bash deploy/setup.sh)" >&2
  exit 1
}

mkdir -p "$OUT"
NODE_DIR="$OUT/node"
if [ ! -f "$NODE_DIR/node_modules/playwright-core/package.json" ] ||
   ! grep -q "\"version\": \"$PLAYWRIGHT_VERSION\"" "$NODE_DIR/node_modules/playwright-core/package.json"; then
  echo "browser test: npm install playwright-core@$PLAYWRIGHT_VERSION into $NODE_DIR"
  # Serialised with a lock: ctest may start this while another build dir's copy installs.
  mkdir -p "$NODE_DIR"
  ( flock 9
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$NODE_DIR" --no-audit --no-fund \
      --loglevel=error "playwright-core@$PLAYWRIGHT_VERSION" ) 9>"$NODE_DIR/.lock"
fi

export NODE_PATH="$NODE_DIR/node_modules"
export CYBERSYN_BIN="$BIN" CYBERSYN_CHROMIUM="$CHROMIUM" CYBERSYN_ARTEFACTS="$OUT"
export CYBERSYN_SOURCE_DIR="${CYBERSYN_SOURCE_DIR:-$(cd "$here/../.." && pwd)}"
exec node "$here/$TEST"
