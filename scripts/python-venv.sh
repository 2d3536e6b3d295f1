#!/usr/bin/env bash
# Creates (once) the Python virtualenv with the packages of
# scripts/test-requirements.txt (pyarrow, DuckDB, moto, cfn-lint, checkov,
# hadolint, Selenium) and prints its directory.
# The test command reads the lake and runs the AWS emulator from it; the query
# benchmark runs DuckDB from it.
#
#   venv="$(bash scripts/python-venv.sh)"
#
# SPATE_TEST_VENV overrides the location (default ~/.cache/spate/venv).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${SPATE_TEST_VENV:-$HOME/.cache/spate/venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c "import pyarrow, duckdb, moto.server, cfnlint, checkov, selenium" 2>/dev/null \
  || [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/hadolint" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/test-requirements.txt >&2
fi
echo "$venv"
