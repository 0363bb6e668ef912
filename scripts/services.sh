#!/usr/bin/env bash
# Installs (once) and starts (if down) what roomstream's tests and demo need, on loopback:
#   Tansu 0.6.0 (Kafka protocol, SQLite storage)  127.0.0.1:9092
#   s3s-fs 0.14.1 (S3 protocol)                    127.0.0.1:9000   (AWS_ACCESS_KEY_ID/SECRET from env)
#   PostgreSQL 127.0.0.1:5432 and MariaDB 127.0.0.1:3306 (checked; started if down)
# Usage: scripts/services.sh up|down [TAG]. `up` records what it started in $STATE/started.TAG; `down`
# stops only what `up` with the same TAG started (scripts/test.sh uses `test`, scripts/demo.sh `demo`).
# Tools are built into $HOME/.cache/roomstream/tools-target and installed in ~/.cargo/bin, so a second
# run takes seconds. Data lives under $STATE (default $HOME/.cache/roomstream/services).
set -euo pipefail

STATE=${ROOMSTREAM_SERVICES_DIR:-$HOME/.cache/roomstream/services}
TOOLS_TARGET=$HOME/.cache/roomstream/tools-target
export PATH="$HOME/.cargo/bin:$PATH"
: "${AWS_ACCESS_KEY_ID:=AKIDTEST}" "${AWS_SECRET_ACCESS_KEY:=SECRETTEST1234}"
mkdir -p "$STATE"

log() { printf '[services] %s\n' "$*"; }
port_open() { (echo >"/dev/tcp/127.0.0.1/$1") >/dev/null 2>&1; }
wait_for() { # wait_for <what> <command…>; on timeout, show the logs that may say why
  local what=$1; shift
  for _ in $(seq 240); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  log "timed out waiting for $what"
  tail -n 20 "$STATE"/*.log 2>/dev/null || true
  return 1
}
TAG=${2:-default}
RECORD="$STATE/started.$TAG"
started() { echo "$1" >>"$RECORD"; }
stop_pid() { # stop_pid <name>: TERM the recorded pid and wait until it is gone
  local pidfile="$STATE/$1.pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
}

# Whether cargo installed <crate> <version> with every one of <features…> (from ~/.cargo/.crates2.json).
installed_with() {
  local crate=$1 version=$2; shift 2
  python3 - "$crate" "$version" "$@" <<'PY' 2>/dev/null
import json, os, sys
crate, version, features = sys.argv[1], sys.argv[2], set(sys.argv[3:])
installs = json.load(open(os.path.expanduser("~/.cargo/.crates2.json")))["installs"]
ok = any(k.startswith(f"{crate} {version} ") and features <= set(v.get("features", [])) for k, v in installs.items())
sys.exit(0 if ok else 1)
PY
}

install_tools() {
  # A tansu built without `libsql` has no SQLite engine: check the features, not just the version.
  if ! installed_with tansu 0.6.0 dynostore libsql || ! command -v tansu >/dev/null; then
    log "installing tansu 0.6.0 (dynostore,libsql) — about 14 min on a fresh machine"
    cargo install --locked tansu --version 0.6.0 --features dynostore,libsql --target-dir "$TOOLS_TARGET"
  fi
  if ! installed_with s3s-fs 0.14.1 binary || ! command -v s3s-fs >/dev/null; then
    log "installing s3s-fs 0.14.1 — about 2.5 min"
    cargo install --locked s3s-fs --version 0.14.1 --features binary --target-dir "$TOOLS_TARGET"
  fi
}

up() {
  touch "$RECORD"
  install_tools

  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
    started postgres
  fi
  wait_for PostgreSQL pg_isready -q -h 127.0.0.1 -p 5432

  if ! mariadb-admin -uroot -h127.0.0.1 ping >/dev/null 2>&1; then
    log "starting MariaDB"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
    started mariadb
  fi
  wait_for MariaDB mariadb-admin -uroot -h127.0.0.1 ping

  if ! port_open 9092; then
    log "starting Tansu on 127.0.0.1:9092 (SQLite storage in $STATE/tansu.db)"
    rm -f "$STATE"/tansu.db "$STATE"/tansu.db-wal "$STATE"/tansu.db-shm
    # The SQLite path is relative to the working directory; the subshell execs, so $! is Tansu itself.
    # Tansu compacts every compacted topic of the cluster (listings.v1, brokers.v1) on a timer, by
    # default every 10 minutes and once at start. A test that reads a topic's whole history back, or
    # compares a sink that read it before the compaction with one that read it after, would then depend
    # on where the tick fell (a CI run lost 416 of listings.v1's 5,823 records mid-test). Tests and
    # benchmarks get a day between compactions; set TANSU_MAINTENANCE to test compaction on purpose.
    (cd "$STATE" && exec tansu broker --listener-url tcp://127.0.0.1:9092 \
      --advertised-listener-url tcp://127.0.0.1:9092 \
      --storage-engine "sqlite://tansu.db?maintenance_interval=${TANSU_MAINTENANCE:-24h}") \
      </dev/null >"$STATE/tansu.log" 2>&1 &
    echo $! >"$STATE/tansu.pid"
    started tansu
  fi
  wait_for "Tansu on :9092" port_open 9092

  if ! port_open 9000; then
    log "starting s3s-fs on 127.0.0.1:9000 (data in $STATE/s3)"
    # One folder per bucket: `roomstream`, the bucket of config/local.toml's `[store] url`.
    mkdir -p "$STATE/s3/roomstream"
    s3s-fs --host 127.0.0.1 --port 9000 --access-key "$AWS_ACCESS_KEY_ID" \
      --secret-key "$AWS_SECRET_ACCESS_KEY" "$STATE/s3" </dev/null >"$STATE/s3s.log" 2>&1 &
    echo $! >"$STATE/s3s.pid"
    started s3s
  fi
  wait_for "s3s-fs on :9000" port_open 9000
  log "up: kafka 127.0.0.1:9092, s3 127.0.0.1:9000, postgres 127.0.0.1:5432, mariadb 127.0.0.1:3306"
}

down() {
  [ -f "$RECORD" ] || return 0
  while read -r svc; do
    case $svc in
      tansu | s3s) stop_pid "$svc" ;;
      postgres) pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main stop || true ;;
      mariadb) mariadb-admin -uroot shutdown 2>/dev/null || true ;; # over the socket: root uses unix auth
    esac
    log "stopped $svc"
  done <"$RECORD"
  rm -f "$RECORD"
}

case ${1:-up} in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down [TAG]" >&2; exit 2 ;;
esac
