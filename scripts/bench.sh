#!/usr/bin/env bash
# Runs roomstream's benchmarks (`roomstream bench`, every scenario unless named) in the release profile
# against the broker, the S3 server, PostgreSQL and MariaDB on loopback, which it starts if they are down
# (scripts/services.sh) and stops afterwards. Reports: target/bench/<scenario>.json, summary.md.
#   scripts/bench.sh                 # every scenario at quick sizes: 6 min 22 s on 2 cores (2026-11-26), plus the release build
#   scripts/bench.sh --full          # the target sizes (10M events replayed — stopped at 600 s or 12 GB —, 1M listings rescored…)
#   scripts/bench.sh replay api      # some scenarios
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/roomstream/target}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-AKIDTEST} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-SECRETTEST1234}
export PATH="$HOME/.cargo/bin:$PATH"

trap 'scripts/services.sh down bench' EXIT
scripts/services.sh up bench
if ! command -v wrk >/dev/null; then
  echo "[bench] installing Debian's wrk (the api scenario's load generator, a second process)"
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --locked --bin roomstream
"$CARGO_TARGET_DIR/release/roomstream" bench "$@"
