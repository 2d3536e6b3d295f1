"""Send -> queryable latency of a running `spate run`, optionally under load.

    python3 bench/scripts/freshness.py --url http://127.0.0.1:8470 [--probes 100] [--interval 0.5]

Each probe pushes one event with a unique message (POST /v1/logs, timed from
the moment the request is sent) and polls POST /v1/query every 50 ms until the
event is found; its latency is from the send to the first answer that found
it. Probes run one after another, `--interval` seconds apart, while whatever
load the caller started (e.g. `loadgen send`) keeps running. Prints one JSON
line: probes, p50/p99/max seconds, and how many were never found within
`--give-up` seconds.
"""

import argparse
import json
import time
import urllib.request
import uuid
from datetime import datetime, timezone


def post(url, body, content_type="application/json", timeout=30):
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": content_type}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read()


def percentile(values, q):
    ordered = sorted(values)
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))
    return ordered[index]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--give-up", type=float, default=30.0)
    args = parser.parse_args()
    latencies, missing = [], 0
    for _ in range(args.probes):
        marker = "freshness-" + uuid.uuid4().hex
        event = {
            "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "service": "freshness-probe",
            "level": "info",
            "message": marker,
        }
        sql = (
            "SELECT count(*) AS n FROM logs WHERE service = 'freshness-probe' "
            f"AND dt = '{event['ts'][:10]}' AND message = '{marker}'"
        )
        started = time.monotonic()
        status, _ = post(f"{args.url}/v1/logs", json.dumps(event).encode(), "application/x-ndjson")
        assert status == 200, status
        found = None
        while time.monotonic() - started < args.give_up:
            try:
                status, body = post(
                    f"{args.url}/v1/query", json.dumps({"sql": sql}).encode()
                )
            except urllib.error.HTTPError as e:
                if e.code in (429, 503):
                    time.sleep(0.05)
                    continue
                raise
            if json.loads(body)["rows"][0][0] >= 1:
                found = time.monotonic() - started
                break
            time.sleep(0.05)
        if found is None:
            missing += 1
        else:
            latencies.append(found)
        time.sleep(args.interval)
    print(
        json.dumps(
            {
                "probes": args.probes,
                "found": len(latencies),
                "never_found": missing,
                "p50_s": percentile(latencies, 0.5),
                "p99_s": percentile(latencies, 0.99),
                "max_s": max(latencies) if latencies else None,
            }
        )
    )


if __name__ == "__main__":
    main()
