#!/usr/bin/env bash
# Stops the emulator that deploy/local/up.sh started on $SPATE_MOTO_PORT
# (default 5000). An emulator up.sh found already running is left alone.
set -euo pipefail
port="${SPATE_MOTO_PORT:-5000}"
state="${SPATE_MOTO_STATE:-$HOME/.cache/spate/moto-$port}"
pid_file="$state/moto.pid"
if [ ! -f "$pid_file" ]; then
  echo "no emulator started by up.sh on port $port" >&2
  exit 0
fi
pid="$(cat "$pid_file")"
if kill "$pid" 2>/dev/null; then
  echo "stopped moto (pid $pid) on port $port" >&2
else
  echo "moto (pid $pid) was not running" >&2
fi
rm -f "$pid_file"
