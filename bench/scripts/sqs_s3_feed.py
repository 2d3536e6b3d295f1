#!/usr/bin/env python3
"""The feeding and checking half of bench/scripts/sqs_s3.sh (see there).

Sends the corpus as SQS messages while `spate run` consumes them, keeping at
most `--max-depth` messages not yet deleted by Spate; stops the clock when
Spate's `spate_sqs_messages_deleted_total` reaches the number sent; counts the
rows in the S3 lake with pyarrow; then times the emulator alone on the same
messages (send, receive, delete with boto3, same shallow pattern, no Spate).
Prints one JSON line on stdout, a readable line on stderr.
"""

import argparse
import json
import sys
import time
import urllib.request

import boto3
import pyarrow.fs
import pyarrow.parquet


def deleted_by_spate(metrics_url):
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("spate_sqs_messages_deleted_total"):
                return int(float(line.split()[-1]))
    return 0


def message_bodies(corpus, messages, per_message):
    with open(corpus) as f:
        lines = f.read().splitlines()
    need = messages * per_message
    if len(lines) < need:
        raise SystemExit(f"the corpus has {len(lines)} lines, {need} needed")
    return ["\n".join(lines[i * per_message:(i + 1) * per_message]) for i in range(messages)]


def send_batch(sqs, queue_url, bodies, first_id):
    entries = [{"Id": str(first_id + i), "MessageBody": body} for i, body in enumerate(bodies)]
    result = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    if result.get("Failed"):
        raise SystemExit(f"send failed: {result['Failed'][:2]}")


def feed_spate(sqs, queue_url, bodies, metrics_url, max_depth, timeout_s):
    """Seconds from the first send to the last delete by Spate."""
    sent = 0
    start = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    deleted = 0
    while deleted < len(bodies):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: spate deleted {deleted} of {len(bodies)} messages")
        if sent < len(bodies) and sent - deleted + 10 <= max_depth:
            batch = bodies[sent:sent + 10]
            send_batch(sqs, queue_url, batch, sent)
            sent += len(batch)
        else:
            time.sleep(0.05)
        deleted = deleted_by_spate(metrics_url)
    return time.perf_counter() - start


def rows_in_lake(endpoint, bucket, prefix):
    fs = pyarrow.fs.S3FileSystem(
        endpoint_override=endpoint,
        scheme="http",
        access_key="test",
        secret_key="test",
        region="us-east-1",
    )
    infos = fs.get_file_info(pyarrow.fs.FileSelector(f"{bucket}/{prefix}logs", recursive=True))
    files = [i for i in infos if i.type == pyarrow.fs.FileType.File and i.path.endswith(".parquet")]
    rows = sum(pyarrow.parquet.ParquetFile(f.path, filesystem=fs).metadata.num_rows for f in files)
    return rows, len(files), sum(f.size for f in files)


def emulator_alone(sqs, bodies, max_depth):
    """Seconds for boto3 to send, receive and delete `bodies` through a fresh queue."""
    queue_url = sqs.create_queue(QueueName=f"bench-raw-{int(time.time())}")["QueueUrl"]
    start = time.perf_counter()
    sent = done = 0
    while done < len(bodies):
        while sent < len(bodies) and sent - done + 10 <= max_depth:
            send_batch(sqs, queue_url, bodies[sent:sent + 10], sent)
            sent += min(10, len(bodies) - sent)
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if got:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
            done += len(got)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--per-message", type=int, required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--pollers", type=int, required=True)
    parser.add_argument("--max-depth", type=int, default=100)
    parser.add_argument("--timeout-secs", type=float, default=900)
    args = parser.parse_args()

    sqs = boto3.client(
        "sqs", endpoint_url=args.endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )
    bodies = message_bodies(args.corpus, args.messages, args.per_message)
    events = args.messages * args.per_message
    spate_s = feed_spate(sqs, args.queue_url, bodies, args.metrics, args.max_depth, args.timeout_secs)
    rows, files, lake_bytes = rows_in_lake(args.endpoint, args.bucket, args.prefix)
    alone_s = emulator_alone(sqs, bodies, args.max_depth)
    out = {
        "messages": args.messages,
        "events_per_message": args.per_message,
        "pollers": args.pollers,
        "max_queue_depth": args.max_depth,
        "seconds": round(spate_s, 2),
        "events_per_s": round(events / spate_s),
        "messages_per_s": round(args.messages / spate_s, 1),
        "lake_rows": rows,
        "lake_objects": files,
        "lake_bytes": lake_bytes,
        "emulator_alone_seconds": round(alone_s, 2),
        "emulator_alone_messages_per_s": round(args.messages / alone_s, 1),
    }
    print(json.dumps(out))
    print(
        f"SQS → spate → S3: {out['events_per_s']:,} events/s ({out['messages_per_s']} messages/s, "
        f"{rows:,} rows in {files} objects); the emulator alone: send+receive+delete "
        f"{out['emulator_alone_messages_per_s']} messages/s",
        file=sys.stderr,
    )
    if rows < events:
        raise SystemExit(f"the lake holds {rows} rows, {events} sent")


if __name__ == "__main__":
    main()
