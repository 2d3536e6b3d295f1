#!/usr/bin/env bash
# Starts a local AWS emulator (moto's server) with everything Spate's AWS mode
# uses, and prints the environment to point Spate at it:
#
#   eval "$(bash deploy/local/up.sh)"
#   spate run --config deploy/local/aws.toml
#
# Creates (idempotently): an SQS queue with a dead-letter queue (redrive after 3
# receives), a Kinesis stream with 2 shards, the DynamoDB hot-events and lease
# tables, an S3 bucket and an SNS topic. Progress goes to stderr, the `export`
# lines to stdout. Port: $SPATE_MOTO_PORT (default 5000); an emulator already
# answering there is reused. `down.sh` stops the one this script started.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

port="${SPATE_MOTO_PORT:-5000}"
endpoint="http://127.0.0.1:$port"
state="${SPATE_MOTO_STATE:-$HOME/.cache/spate/moto-$port}"
mkdir -p "$state"

# The project's Python environment (moto, boto3, pyarrow, DuckDB).
venv="$(bash "$root/scripts/python-venv.sh")"

answers() {
  "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('$endpoint/moto-api/', timeout=1)" 2>/dev/null
}

if answers; then
  echo "an emulator already answers on $endpoint; reusing it" >&2
else
  echo "starting moto on $endpoint (log: $state/moto.log)" >&2
  nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$state/moto.log" 2>&1 &
  echo $! >"$state/moto.pid"
  for _ in $(seq 1 150); do
    answers && break
    sleep 0.2
  done
  answers || { echo "moto did not start; see $state/moto.log" >&2; exit 1; }
fi

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
"$venv/bin/python" - "$endpoint" <<'PY'
import json
import sys

import boto3

endpoint = sys.argv[1]
def client(name):
    return boto3.client(name, endpoint_url=endpoint, region_name="us-east-1")

sqs = client("sqs")
dlq_url = sqs.create_queue(QueueName="spate-logs-dlq")["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
queue_url = sqs.create_queue(
    QueueName="spate-logs",
    Attributes={
        "VisibilityTimeout": "60",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
    },
)["QueueUrl"]

kinesis = client("kinesis")
if "spate-logs" not in kinesis.list_streams()["StreamNames"]:
    kinesis.create_stream(StreamName="spate-logs", ShardCount=2)

ddb = client("dynamodb")
tables = ddb.list_tables()["TableNames"]
# Hot events, alerts and window counts in one table:
#   recent events of service X:  pk = "svc#<service>",        sk = "<ts ms, 13 digits>#<event_id>"
#   alerts of a day:             pk = "alerts#<YYYY-MM-DD>",  sk = "<raised ms>#<alert id>"
#   window counts:               pk = "win#<service>",        sk = "<window start ms>"
# Items carry `expires_at` (epoch seconds) for TTL.
if "spate-hot" not in tables:
    ddb.create_table(
        TableName="spate-hot",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(
        TableName="spate-hot",
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
# Kinesis shard leases: one item per shard (lease_key = shard id), with owner,
# lease expiry and checkpoint attributes.
if "spate-leases" not in tables:
    ddb.create_table(
        TableName="spate-leases",
        AttributeDefinitions=[{"AttributeName": "lease_key", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "lease_key", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )

client("s3").create_bucket(Bucket="spate-lake")
topic_arn = client("sns").create_topic(Name="spate-alerts")["TopicArn"]

print(f"export AWS_ENDPOINT_URL={endpoint}")
print("export AWS_ACCESS_KEY_ID=test")
print("export AWS_SECRET_ACCESS_KEY=test")
print("export AWS_REGION=us-east-1")
print(f"export SPATE_SQS_QUEUE_URL={queue_url}")
print(f"export SPATE_SQS_DLQ_URL={dlq_url}")
print("export SPATE_KINESIS_STREAM=spate-logs")
print("export SPATE_BUCKET=spate-lake")
print("export SPATE_HOT_TABLE=spate-hot")
print("export SPATE_LEASE_TABLE=spate-leases")
print(f"export SPATE_ALERT_TOPIC_ARN={topic_arn}")
PY
