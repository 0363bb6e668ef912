#!/usr/bin/env bash
# The README's first command: see roomstream work on this machine with nothing else running.
# Installs Tansu once (cargo, ≈14–19 min the first time), builds roomstream (≈5 min the first time), then
# runs `roomstream demo`: Tansu as a child process, SQLite as the production database, out/demo/ as the
# object store, a simulated crawl of 20,000 flats over 14 days and then live updates, the processor, the
# sinks, and the API with the web page at http://127.0.0.1:8080/. Ctrl-C stops it; running this again
# starts clean (`scripts/demo.sh --resume` continues instead). Extra arguments go to `roomstream demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/roomstream/target}
export PATH="$HOME/.cargo/bin:$PATH"

if ! command -v tansu >/dev/null || ! tansu --version >/dev/null 2>&1; then
  echo "[demo] installing Tansu 0.6.0 with its SQLite engine (once; about 15 min)"
  cargo install --locked tansu --version 0.6.0 --features dynostore,libsql \
    --target-dir "$HOME/.cache/roomstream/tools-target"
fi
cargo build --locked --bin roomstream
exec "$CARGO_TARGET_DIR/debug/roomstream" --config config/demo.toml demo "$@"
