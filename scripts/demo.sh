#!/usr/bin/env bash
# The demo: bring up a local broker (and the other loopback services), create the topics and run a
# crawl — a calibrated synthetic week of Seoul one-room listings, plus the real fixtures where
# ../shared/fixtures/real exists. Services stay up afterwards; `scripts/services.sh down demo` stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/roomstream/target}
export PATH="$HOME/.cargo/bin:$PATH"

scripts/services.sh up demo
cargo build --locked --bin roomstream
rs() { "$CARGO_TARGET_DIR/debug/roomstream" --config config/demo.toml "$@"; }

rs topics apply
mkdir -p out/demo
rs crawl synthetic --listings "${DEMO_LISTINGS:-5000}" --days "${DEMO_DAYS:-7}" --seed 1 --truth out/demo/truth.jsonl
fixtures=${ROOMSTREAM_TEST_FIXTURES:-../shared/fixtures/real}
if [ -d "$fixtures" ]; then
  rs crawl fixtures --dir "$fixtures"
else
  echo "(no real fixtures at $fixtures: skipping the fixture crawl)"
fi
rs topics check
echo
echo "Events are on the topics demo.observed.v1, demo.sweeps.v1 and demo.brokers.v1 at 127.0.0.1:9092;"
echo "the simulator's ground truth is in out/demo/truth.jsonl. Stop the services with: scripts/services.sh down demo"
