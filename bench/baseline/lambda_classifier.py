#!/usr/bin/env python3
"""Baseline: the original Lambda's log classifier, re-implemented to measure its speed.

    python3 bench/baseline/lambda_classifier.py FILE [--batch-records N] [--limit N]

Reads a W1 (app-json NDJSON) file, feeds it to a Lambda-style handler in batches of
records, and prints one JSON line on stdout: events, handler seconds (wall and CPU),
events/s, MiB/s and the severity counts the classifier produced.

What "faithful" means here
--------------------------
The design this project replaces was an AWS Lambda function triggered with batches
of log records. Per invocation it did, and this file does:

- one record at a time, in a Python ``for`` loop over ``event["Records"]``;
- ``json.loads`` of each record body (one NDJSON log line);
- severity by regular expressions checked in a fixed order, ERROR, WARNING,
  CRITICAL, INFO, the first that matches wins (so a message saying "critical
  error" is an ERROR: the order is the original's, bug included); a message that
  matches none is INFO. The regexes are case-insensitive and word-bounded and run
  over the event's ``message`` field, the text the original alerted on. Their
  keyword lists are Spate's message keywords (DESIGN.md), so both do comparable
  matching work; the baseline ignores level fields (``level``, ``severity``, ...),
  as the original did, so its severity counts differ from Spate's;
- counts per service and severity for the batch, and the alert decision of the
  original rule (more than 10 ERRORs, or any CRITICAL, in the batch).

What it does not do (each of these favours the baseline)
--------------------------------------------------------
- No AWS calls: no S3 PutObject of the raw batch, no DynamoDB writes of the
  classified items or counters, no SNS publish. Classification only.
- No Lambda invoke overhead: the event dict for a batch is built outside the
  timed region (in Lambda the runtime deserialises it from the invoke payload),
  and there are no cold starts.
- No base64 / gzip decoding of Kinesis or CloudWatch payloads: records carry the
  plain line, as SQS bodies would.
- No Parquet or any output at all: the classified events are dropped after
  counting, whereas ``spate ingest`` writes every event durably to the lake.

The figure is the handler's throughput on one core (a Lambda function is one
single-threaded Python process): events divided by the time spent inside
``handler``. The CPU time is reported beside it so that a busy machine shows.
"""

import argparse
import json
import re
import sys
import time
from collections import Counter

# The original's patterns, in the original's order: first match wins.
SEVERITY_PATTERNS = [
    ("ERROR", re.compile(r"\b(error|exception|failed|failure)\b", re.IGNORECASE)),
    ("WARNING", re.compile(r"\b(warning|warn|deprecated)\b", re.IGNORECASE)),
    ("CRITICAL", re.compile(r"\b(critical|fatal|panic|emergency)\b", re.IGNORECASE)),
    ("INFO", re.compile(r"\b(info|debug|notice)\b", re.IGNORECASE)),
]

# The original's alert rule, evaluated per batch.
ERROR_ALERT_THRESHOLD = 10


def classify(message):
    """Severity of one message: the first pattern that matches, else INFO."""
    for severity, pattern in SEVERITY_PATTERNS:
        if pattern.search(message):
            return severity
    return "INFO"


def handler(event, _context):
    """The Lambda entry point: classifies a batch of records, one at a time."""
    counts = Counter()
    severities = Counter()
    bad = 0
    for record in event["Records"]:
        try:
            log = json.loads(record["body"])
        except ValueError:
            bad += 1
            continue
        message = log.get("message")
        if not isinstance(message, str):
            message = str(message) if message is not None else ""
        severity = classify(message)
        severities[severity] += 1
        counts[(log.get("service", "unknown"), severity)] += 1
    errors = severities["ERROR"]
    alerts = []
    if errors > ERROR_ALERT_THRESHOLD:
        alerts.append({"rule": "errors", "count": errors})
    if severities["CRITICAL"]:
        alerts.append({"rule": "critical", "count": severities["CRITICAL"]})
    return {"severities": severities, "counts": counts, "alerts": alerts, "bad": bad}


def batches(path, batch_records, limit):
    """Lambda events of up to `batch_records` SQS-style records from an NDJSON file."""
    records = []
    seen = 0
    with open(path, "r", encoding="utf-8") as lines:
        for line in lines:
            if limit is not None and seen >= limit:
                break
            line = line.rstrip("\n")
            if not line:
                continue
            seen += 1
            records.append({"messageId": str(seen), "body": line})
            if len(records) == batch_records:
                yield {"Records": records}
                records = []
    if records:
        yield {"Records": records}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="W1 NDJSON file (loadgen generate --workload w1)")
    parser.add_argument(
        "--batch-records",
        type=int,
        default=100,
        help="records per invocation (Lambda's SQS/Kinesis batch size; default 100)",
    )
    parser.add_argument("--limit", type=int, default=None, help="stop after N events")
    args = parser.parse_args()

    events = 0
    input_bytes = 0
    wall = 0.0
    cpu = 0.0
    invocations = 0
    alerts = 0
    bad = 0
    severities = Counter()
    for event in batches(args.file, args.batch_records, args.limit):
        input_bytes += sum(len(r["body"]) + 1 for r in event["Records"])
        w0, c0 = time.perf_counter(), time.process_time()
        result = handler(event, None)
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        invocations += 1
        events += len(event["Records"])
        severities.update(result["severities"])
        alerts += len(result["alerts"])
        bad += result["bad"]

    out = {
        "events": events,
        "invocations": invocations,
        "batch_records": args.batch_records,
        "handler_wall_s": round(wall, 3),
        "handler_cpu_s": round(cpu, 3),
        "events_per_s": round(events / wall) if wall > 0 else 0,
        "events_per_cpu_s": round(events / cpu) if cpu > 0 else 0,
        "input_mib_per_s": round(input_bytes / wall / 2**20, 1) if wall > 0 else 0,
        "cpu_s_per_million": round(cpu / (events / 1e6), 2) if events else 0,
        "severity": {s: severities[s] for s, _ in SEVERITY_PATTERNS},
        "bad_records": bad,
        "batch_alerts": alerts,
        "python": sys.version.split()[0],
    }
    print(json.dumps(out))
    print(
        f"lambda baseline: {out['events_per_s']:,} events/s "
        f"({out['events_per_cpu_s']:,} per CPU-second), {events:,} events",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
