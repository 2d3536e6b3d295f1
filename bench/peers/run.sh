#!/usr/bin/env bash
# Side by side: `spate ingest` beside Fluent Bit (tail → Lua severity → file) and
# Vector (stdin → VRL severity → file) on the same W1 file, in one run, with the
# ratios. A peer that is not installed is skipped with a message (exit 0).
#
#   bash bench/peers/run.sh [EVENTS] [SEED]
#
# One JSON line on stdout, a readable line per tool on stderr. See
# bench/peers/README.md for installing the peers.
set -euo pipefail
cd "$(dirname "$0")/../.."
events="${1:-1000000}"
seed="${2:-42}"
work="${SPATE_BENCH_DIR:-/tmp/spate-bench}"
mkdir -p "$work"

cargo build --release -q -p spate -p spate-loadgen
target="${CARGO_TARGET_DIR:-target}/release"
corpus="$work/w1-$events-$seed.txt"
if [ ! -s "$corpus" ]; then
  "$target/loadgen" generate --workload w1 --events "$events" --seed "$seed" --out "$corpus" 2>/dev/null
fi
# Warm the page cache so no tool measures the disk.
cat "$corpus" > /dev/null
for peer in fluent-bit vector; do
  command -v "$peer" > /dev/null || echo "peers: $peer is not installed: skipped (bench/peers/README.md says how to install it)" >&2
done
exec python3 bench/harness/peers.py "$corpus" "$events" "$target/spate" --work "$work/peers"
