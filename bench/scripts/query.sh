#!/usr/bin/env bash
# Query benchmark: `spate query` beside DuckDB on the same W1 lake, release build.
#
#   bash bench/scripts/query.sh [EVENTS] [SEED] [REPS]
#
# Builds (once per EVENTS/SEED) a lake with `spate ingest` from a W1 corpus under
# $SPATE_BENCH_DIR (default /tmp/spate-bench), then times three questions with the
# same SQL text on both engines (see bench/scripts/query_vs_duckdb.py): severity
# counts for one day, the top 10 services by errors in the last hour of the data,
# and a search for a rare token in the messages. Prints one JSON line.
set -euo pipefail
cd "$(dirname "$0")/../.."
events="${1:-20000000}"
seed="${2:-42}"
reps="${3:-5}"
work="${SPATE_BENCH_DIR:-/tmp/spate-bench}"
mkdir -p "$work"

cargo build --release -q -p spate -p spate-loadgen
target="${CARGO_TARGET_DIR:-target}/release"
venv="$(bash scripts/python-venv.sh)"

data="$work/query-w1-$events-$seed"
if [ ! -f "$data/.complete" ]; then
  rm -rf "$data"
  corpus="$work/w1-$events-$seed.txt"
  if [ ! -s "$corpus" ]; then
    "$target/loadgen" generate --workload w1 --events "$events" --seed "$seed" --out "$corpus" 2>/dev/null
  fi
  "$target/spate" ingest --json --data-dir "$data" "$corpus" > "$work/query-ingest.json"
  touch "$data/.complete"
fi

exec "$venv/bin/python" bench/scripts/query_vs_duckdb.py \
  --spate "$target/spate" --data-dir "$data" --events "$events" --reps "$reps"
