#!/usr/bin/env bash
# The benchmark suite in one command: engine hops and decode micro-benchmarks
# (criterion), `spate ingest` W1/W2/W3, HTTP push W1 steady and the W4 spike (each
# checked for loss with `loadgen verify`), and the Lambda baseline on the same W1
# file, all on the release build. Writes docs/benchmarks.json, the generated
# section of docs/BENCHMARKS.md and docs/spike.svg.
#
#   bash bench/run.sh [--quick] [--only STEP,...] [--events N] [--report-only]
#
# --quick: 1 M events for ingest, a 10 s HTTP run, the spike scaled to 30 s, short
# criterion runs. See bench/README.md for the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 bench/harness/run.py "$@"
