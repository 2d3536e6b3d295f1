#!/usr/bin/env bash
# Runs Spate's whole test suite on a fresh machine.
#
# Installs what the tests need that cargo does not (a Python virtualenv with the
# readers the lake tests check Parquet files with, and moto, the local AWS
# emulator), starts moto's server on a free loopback port for the AWS tests
# (stopped again on exit), then runs every test of the workspace in the dev
# profile (one profile for everything: nothing builds twice).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="$(bash scripts/python-venv.sh)"
export SPATE_TEST_PYTHON="$venv/bin/python"

# The AWS emulator: a free port on 127.0.0.1, killed when this script exits.
moto_port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
moto_log="$(mktemp -t spate-moto.XXXXXX.log)"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$moto_log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; rm -f "$moto_log"' EXIT
moto_ready=""
for _ in $(seq 1 150); do
  if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$moto_port/moto-api/', timeout=1)" 2>/dev/null; then
    moto_ready=1
    break
  fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then
    echo "moto_server exited:" >&2
    cat "$moto_log" >&2
    exit 1
  fi
  sleep 0.2
done
if [ -z "$moto_ready" ]; then
  echo "moto_server did not answer on 127.0.0.1:$moto_port within 30 s" >&2
  exit 1
fi
export SPATE_TEST_AWS_ENDPOINT="http://127.0.0.1:$moto_port"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL

# The benchmark harness's own computations (spike, loss, report).
"$venv/bin/python" -m unittest discover -s bench/harness

cargo test --workspace --locked
