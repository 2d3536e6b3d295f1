#!/usr/bin/env bash
# Start-up time of the release `spate`: `spate --version`, `spate run` from exec to
# the first 200 on /healthz (fresh data dir), `spate ingest` of a 10-event file;
# RUNS runs each (default 11), alternating; medians.
#
#   bash bench/scripts/startup.sh [RUNS] [SPATE_BINARY]
#
# One JSON line on stdout, a readable line per measurement on stderr.
set -euo pipefail
cd "$(dirname "$0")/../.."
runs="${1:-11}"
binary="${2:-}"
if [ -z "$binary" ]; then
  cargo build --release -q -p spate -p spate-loadgen
  binary="${CARGO_TARGET_DIR:-target}/release/spate"
fi
exec python3 bench/harness/startup.py "$binary" --runs "$runs"
