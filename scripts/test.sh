#!/usr/bin/env bash
# The test command of the README: set up the services (scripts/services.sh), run the whole suite in the
# dev profile, stop what was started, print a plain summary. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/roomstream/target}
export CARGO_TERM_COLOR=never
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-AKIDTEST} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-SECRETTEST1234}
export PATH="$HOME/.cargo/bin:$PATH"

trap 'scripts/services.sh down test' EXIT
scripts/services.sh up test

# The browser test drives Debian's Chromium with playwright-core (pinned in tests/browser/package-lock.json).
# Nanum fonts, so that the screenshots it saves show Korean text rather than empty boxes.
# wrk: the load generator of `roomstream bench api` (its smoke run is a test).
# (Not `grep -q`: it stops reading at the first match, fc-list then dies of SIGPIPE, and under
# pipefail the check failed every time, so every run went to apt.)
if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -i nanum >/dev/null || ! command -v wrk >/dev/null; then
  echo "[test] installing Debian's chromium, Korean fonts and wrk for the browser and benchmark tests"
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-nanum wrk >/dev/null
fi
# schemathesis (PyPI): the API's property-based test against its own /openapi.json.
if ! command -v schemathesis >/dev/null; then
  echo "[test] installing schemathesis from PyPI"
  python3 -m pip install -q --disable-pip-version-check "schemathesis>=4,<5" 2>&1 | grep -v "as the 'root' user" || true
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi

start=$(date +%s)
set +e
if command -v cargo-nextest >/dev/null; then
  cargo nextest run --locked --no-fail-fast --profile ci 2>&1 | tee /tmp/roomstream-test.log
else
  # Without nextest, show passing tests' output too (the fixture count and the produce rate).
  cargo test --locked --no-fail-fast -- --show-output 2>&1 | tee /tmp/roomstream-test.log
fi
status=${PIPESTATUS[0]}
set -e
echo
echo "== roomstream test summary =="
grep -E "^ +(Summary|FAIL)|^test result:|fixture crawl:|real fixtures:|events/s|^ *faults:|^ *outage:|^ *compaction:|no panic$|scanned .* text files" /tmp/roomstream-test.log | sed 's/^ *//' | sort -u || true
# Why each failing test failed, at the end where a truncated log still shows it.
if [ "$status" != 0 ] && grep -q "panicked at" /tmp/roomstream-test.log; then
  echo "== why the failing tests failed =="
  grep -A3 "panicked at" /tmp/roomstream-test.log | sed 's/^ *//' | cut -c1-400 | head -60
fi
echo "exit status: $status; wall time: $(( $(date +%s) - start )) s"
exit "$status"
