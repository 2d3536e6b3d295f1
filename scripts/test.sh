#!/usr/bin/env bash
# Runs Spate's whole test suite on a fresh machine.
#
# Installs what the tests need that cargo does not (a Python virtualenv with the
# readers the lake tests check Parquet files with, moto, the local AWS
# emulator, cfn-lint, checkov and hadolint for deploy/, Selenium for the
# console's browser test; promtool from Debian's prometheus package; Debian's
# chromium and chromium-driver), starts moto's server on a free loopback port for the AWS tests
# (stopped again on exit), then runs every test of the workspace in the dev
# profile (one profile for everything: nothing builds twice).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="$(bash scripts/python-venv.sh)"
export SPATE_TEST_PYTHON="$venv/bin/python"

# promtool (from Debian's `prometheus` package) checks the /metrics text. The
# package is unpacked into a cache rather than installed, so no Prometheus
# service gets started.
promtool="$(command -v promtool || true)"
if [ -z "$promtool" ]; then
  promtool_dir="${XDG_CACHE_HOME:-$HOME/.cache}/spate/prometheus"
  promtool="$promtool_dir/usr/bin/promtool"
  if [ ! -x "$promtool" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    mkdir -p "$promtool_dir"
    (cd "$promtool_dir" && apt-get download -qq prometheus && dpkg-deb -x prometheus_*.deb . && rm -f prometheus_*.deb)
  fi
fi
export SPATE_TEST_PROMTOOL="$promtool"

# Headless Chromium and its WebDriver (Debian's packages) for the web
# console's browser test (bin/tests/console.rs, through Selenium).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi
export SPATE_TEST_CHROMEDRIVER="$(command -v chromedriver)"
export SPATE_TEST_CHROMIUM="$(command -v chromium)"

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

# The benchmark harness's own computations (spike, loss, report, peers, start-up).
"$venv/bin/python" -m unittest discover -s bench/harness

cargo test --workspace --locked
