#!/usr/bin/env bash
# Runs Spate's whole test suite on a fresh machine.
#
# Installs what the tests need that cargo does not (a Python virtualenv with the
# readers the lake tests check Parquet files with), then runs every test of the
# workspace in the dev profile (one profile for everything: nothing builds twice).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${SPATE_TEST_VENV:-$HOME/.cache/spate/venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import pyarrow, duckdb" 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/test-requirements.txt
fi
export SPATE_TEST_PYTHON="$venv/bin/python"

cargo test --workspace --locked
