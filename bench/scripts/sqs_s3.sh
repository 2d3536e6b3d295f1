#!/usr/bin/env bash
# SQS → `spate run` → S3 lake against the local AWS emulator (moto), release build.
#
#   bash bench/scripts/sqs_s3.sh [MESSAGES] [EVENTS_PER_MESSAGE] [POLLERS]
#
# Starts a fresh emulator with deploy/local/up.sh on a free port (stopped on exit),
# runs `spate run` with one SQS source and the lake on S3, and feeds MESSAGES
# messages of EVENTS_PER_MESSAGE W1 events (NDJSON bodies), sending while Spate
# consumes so that the queue stays shallow (moto's SQS slows down as a queue
# grows). The clock runs from the first send to the moment Spate has deleted the
# last message, which it does only after the message's events are in S3 objects.
# Then every object under the lake prefix is read back with pyarrow and the rows
# counted. Also times the emulator alone (boto3 send, receive and delete of the
# same messages, no Spate) to show what bounds the figure.
#
# Prints one JSON line.
set -euo pipefail
cd "$(dirname "$0")/../.."
messages="${1:-600}"
per_message="${2:-100}"
pollers="${3:-4}"
work="${SPATE_BENCH_DIR:-/tmp/spate-bench}/sqs-s3"
rm -rf "$work"
mkdir -p "$work"

cargo build --release -q -p spate -p spate-loadgen
target="${CARGO_TARGET_DIR:-target}/release"
venv="$(bash scripts/python-venv.sh)"
free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

export SPATE_MOTO_PORT="$(free_port)" SPATE_MOTO_STATE="$work/moto"
spate_pid=""
cleanup() {
  if [ -n "$spate_pid" ]; then kill "$spate_pid" 2>/dev/null || true; wait "$spate_pid" 2>/dev/null || true; fi
  bash deploy/local/down.sh 2>/dev/null || true
}
trap cleanup EXIT
eval "$(bash deploy/local/up.sh 2>"$work/up.log")"

"$target/loadgen" generate --workload w1 --events "$((messages * per_message))" --seed 42 \
  --out "$work/corpus.ndjson" 2>/dev/null

listen="127.0.0.1:$(free_port)"
cat > "$work/spate.toml" <<EOF
[aws]
region = "us-east-1"
endpoint_url = "$AWS_ENDPOINT_URL"

[[sources.sqs]]
queue_url = "$SPATE_SQS_QUEUE_URL"
pollers = $pollers
wait_time_secs = 1
max_messages = 10

[lake]
path = "$work/data/lake-staging"
max_file_age_secs = 5

[lake.s3]
bucket = "$SPATE_BUCKET"
prefix = "bench/"
EOF

"$target/spate" run --config "$work/spate.toml" --data-dir "$work/data" --listen "$listen" \
  > "$work/spate.out" 2> "$work/spate.log" &
spate_pid=$!
for _ in $(seq 100); do
  curl -sf "http://$listen/healthz" > /dev/null && break
  sleep 0.1
done

"$venv/bin/python" bench/scripts/sqs_s3_feed.py \
  --endpoint "$AWS_ENDPOINT_URL" --queue-url "$SPATE_SQS_QUEUE_URL" --bucket "$SPATE_BUCKET" \
  --prefix bench/ --corpus "$work/corpus.ndjson" --messages "$messages" \
  --per-message "$per_message" --metrics "http://$listen/metrics" --pollers "$pollers"
