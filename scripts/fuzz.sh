#!/usr/bin/env bash
# Fuzzes every parser of outside input with cargo fuzz (libFuzzer, coverage-guided): the observation
# envelope and payloads through the engine (`record`), each platform's payload (`payload`), the field
# parsers (`fields`), VWORLD registry files (`registry`) and the sinks' decoding of listings.v1 (`listing`)
# — the entry points of src/fuzz.rs.
#   scripts/fuzz.sh                  # every target, 10,000,000 executions each
#   scripts/fuzz.sh record 100000    # one target, that many executions
# Seeds: target/fuzz-seeds/<target>/, written by the test `fuzz::no_fuzz_target_panics_on_its_seeds_or_their_mutations`
# (run first if missing; it includes the real fixtures where ../shared/fixtures/real is present). The
# corpus grows in fuzz/corpus/<target>/, crashes land in fuzz/artifacts/<target>/. Each target prints
# libFuzzer's final stats; the script ends with executions and crashes per target.
# No sanitizer by default (FUZZ_SANITIZER=address to add one): roomstream forbids `unsafe`, so what the
# fuzzer looks for is a panic, which libFuzzer catches as a crash by itself; AddressSanitizer would
# instrument every C and Rust dependency too and halve the executions per second.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/roomstream/target}
targets=${1:-record payload fields registry listing}
runs=${2:-10000000}
if ! command -v cargo-fuzz >/dev/null; then
  echo "[fuzz] installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi
if [ ! -d target/fuzz-seeds/record ]; then
  echo "[fuzz] writing the seed corpus (the fuzz seed test)"
  cargo test --locked --test it -- fuzz::no_fuzz_target_panics 2>&1 | tail -3
fi
# The fuzz crate is a workspace of its own: start its lock from the project's, so that it builds the
# same versions (arrow 59 with datafusion 55) and adds only libfuzzer-sys.
[ -f fuzz/Cargo.lock ] || cp Cargo.lock fuzz/Cargo.lock
# cargo fuzz passes nightly-only flags (-Zsanitizer); this machine's one toolchain is stable.
export RUSTC_BOOTSTRAP=1
summary=()
for t in $targets; do
  mkdir -p "fuzz/corpus/$t"
  log="target/fuzz-$t.log"
  echo "[fuzz] $t: $runs executions"
  status=0
  CARGO_TARGET_DIR=$HOME/.cache/roomstream/fuzz-target cargo fuzz run --fuzz-dir fuzz \
    --sanitizer "${FUZZ_SANITIZER:-none}" "$t" \
    "fuzz/corpus/$t" "target/fuzz-seeds/$t" -- -runs="$runs" -print_final_stats=1 \
    -rss_limit_mb=4096 >"$log" 2>&1 || status=$?
  tail -n 12 "$log"
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  crashes=$(ls "fuzz/artifacts/$t" 2>/dev/null | wc -l)
  summary+=("$t: $execs executions, exit $status, $crashes crash files")
done
echo "[fuzz] summary"
printf '  %s\n' "${summary[@]}"
