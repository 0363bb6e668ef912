#!/usr/bin/env bash
# The demo against this machine's services (scripts/demo.sh is the one-command demo on an embedded
# default): bring up a local broker (and the other loopback services), create the topics, run a crawl —
# a calibrated synthetic week of Seoul one-room listings, plus the real fixtures where
# ../shared/fixtures/real exists — then the processor: one deduplicated state, its hash, and how well it
# merged the same flat across Zigbang and Dabang against the simulator's ground truth; the scores' fair-rent
# model and bait warning against it too, and a full rescore that finds nothing to change; then the three
# sinks (MariaDB serving schema, PostgreSQL as Redshift staging, Parquet in s3s-fs) and their epochs;
# last, the API and the web page at http://127.0.0.1:8080/ until Ctrl-C (DEMO_SERVE=0 skips it).
# Each run uses its own namespace (`demo-<time>`), so it starts clean. Services stay up afterwards;
# `scripts/services.sh down demo` stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/roomstream/target}
export PATH="$HOME/.cargo/bin:$PATH"
export ROOMSTREAM_KAFKA_NAMESPACE=${ROOMSTREAM_KAFKA_NAMESPACE:-demo-$(date +%Y%m%d%H%M%S)}
# The sinks write to this machine's MariaDB and PostgreSQL, a database per run, and s3s-fs
# (config/local.toml, the default profile).
db=${ROOMSTREAM_KAFKA_NAMESPACE//-/_}
export ROOMSTREAM_MYSQL_URL=${ROOMSTREAM_MYSQL_URL:-mysql://root@127.0.0.1:3306/$db}
export ROOMSTREAM_POSTGRES_URL=${ROOMSTREAM_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/$db}
# The API reads as a read-only user the MySQL sink creates (its password from the environment).
export ROOMSTREAM_MYSQL_READER_USER=${ROOMSTREAM_MYSQL_READER_USER:-roomstream_api}
export ROOMSTREAM_MYSQL_READER_PASSWORD=${ROOMSTREAM_MYSQL_READER_PASSWORD:-demo-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')}

scripts/services.sh up demo
cargo build --locked --bin roomstream
rs() { "$CARGO_TARGET_DIR/debug/roomstream" "$@"; }

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
rs process --exit-when-idle
rs eval dedup --truth out/demo/truth.jsonl
rs eval model
rs eval bait --truth out/demo/truth.jsonl
rs rescore --full
rs state hash | head -1
rs state dump --out out/demo/listings.jsonl
rs sink mysql --exit-when-idle
rs sink redshift --exit-when-idle
rs sink s3 --exit-when-idle
rs status
echo
echo "Namespace $ROOMSTREAM_KAFKA_NAMESPACE on 127.0.0.1:9092: events on .observed.v1/.sweeps.v1/.brokers.v1,"
echo "deduplicated, scored listings on .listings.v1 (also in out/demo/listings.jsonl), rejects on .dlq.v1;"
echo "checkpoints, Parquet change files, snapshots and the raw zone in s3s-fs (127.0.0.1:9000);"
echo "the serving schema in MariaDB \`$db\`, the Redshift staging schema in PostgreSQL \`$db\`."
echo "Stop the services with: scripts/services.sh down demo"
if [ "${DEMO_SERVE:-1}" != 0 ]; then
  echo
  echo "The web page and the API: open http://${ROOMSTREAM_API_LISTEN:-127.0.0.1:8080}/ (Ctrl-C stops serving)."
  rs serve
fi
