#!/usr/bin/env python3
"""Times `spate query` and DuckDB on the same lake with the same SQL text.

    python query_vs_duckdb.py --spate BIN --data-dir DIR [--events N] [--reps 5]

The questions (from the query issue), each as one SQL statement over `logs`:

- `severity_one_day`: `count(*) group by severity` for the lake's first day;
- `top_services_last_hour`: the 10 services with the most ERROR/CRITICAL events in
  the last hour of the data (the data is synthetic, so "the last hour" is the hour
  before its newest event, not before now);
- `grep_rare_token`: the events whose message contains an order id that occurs
  once (case-insensitive, as `spate query --grep` matches).

Both engines get the partition filters in the SQL (`dt`, `hour`), so both can prune
directories. DuckDB reads the Hive partitions as strings, as Spate does.

How it is timed, per question: one untimed warm-up of each engine (page cache),
then `--reps` rounds alternating the two; the median is reported. Spate is timed as
a whole process (`spate query --format csv SQL`: start, listing, planning, reading,
printing). DuckDB is timed inside Python from opening a fresh in-memory connection
to the last Arrow batch, so its interpreter start and `import duckdb` are not
counted: the comparison leans in DuckDB's favour. Both use every core (DuckDB's
default threads, DataFusion's default target partitions). The two results are
compared and a mismatch fails the run.

Prints one JSON line on stdout and a readable table on stderr.
"""

import argparse
import csv
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb


def duckdb_connection(lake):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    glob = str(lake / "logs" / "*" / "*" / "*" / "*.parquet")
    con.execute(
        "CREATE VIEW logs AS SELECT * FROM read_parquet("
        f"'{glob}', hive_partitioning = true, hive_types_autocast = false)"
    )
    return con


def run_duckdb(lake, sql):
    """(seconds, rows as lists of strings)."""
    t0 = time.perf_counter()
    con = duckdb_connection(lake)
    table = con.execute(sql).arrow().read_all()
    elapsed = time.perf_counter() - t0
    rows = [[None if v is None else str(v) for v in row.values()] for row in table.to_pylist()]
    con.close()
    return elapsed, rows


def run_spate(spate, data_dir, sql):
    """(seconds, rows as lists of strings)."""
    argv = [spate, "query", "--data-dir", str(data_dir), "--format", "csv", sql]
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"spate query failed ({proc.returncode}): {proc.stderr.strip()}")
    reader = csv.reader(io.StringIO(proc.stdout))
    next(reader, None)  # header
    rows = [[None if v == "" else v for v in row] for row in reader]
    return elapsed, rows


def questions(lake):
    """The three statements, with values chosen from the lake itself (untimed)."""
    con = duckdb_connection(lake)
    first_day, newest_ms = con.execute("SELECT min(dt), epoch_ms(max(ts)) FROM logs").fetchone()
    since = newest_ms / 1000 - 3600
    since_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since)) + "Z"
    since_dt = time.strftime("%Y-%m-%d", time.gmtime(since))
    since_hour = time.strftime("%H", time.gmtime(since))
    token = con.execute(
        "SELECT regexp_extract(message, 'ord_[0-9a-f]+') AS token FROM logs "
        "WHERE dt = (SELECT max(dt) FROM logs) AND message LIKE 'order ord_%' "
        "ORDER BY event_id LIMIT 1"
    ).fetchone()[0]
    con.close()
    return [
        (
            "severity_one_day",
            f"count(*) group by severity, dt = {first_day}",
            f"SELECT severity, count(*) AS n FROM logs WHERE dt = '{first_day}' "
            "GROUP BY severity ORDER BY severity",
        ),
        (
            "top_services_last_hour",
            f"top 10 services by ERROR+CRITICAL since {since_text}",
            "SELECT service, count(*) AS errors FROM logs "
            f"WHERE (dt > '{since_dt}' OR (dt = '{since_dt}' AND hour >= '{since_hour}')) "
            f"AND ts >= TIMESTAMP '{since_text}' AND severity IN ('ERROR', 'CRITICAL') "
            "GROUP BY service ORDER BY errors DESC, service LIMIT 10",
        ),
        (
            "grep_rare_token",
            f"messages containing {token} (any case)",
            "SELECT event_id, service, message FROM logs "
            f"WHERE contains(lower(message), '{token.lower()}') ORDER BY event_id",
        ),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spate", required=True)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--events", type=int)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    lake = args.data_dir / "lake"
    files = sorted(lake.glob("logs/*/*/*/*.parquet"))
    if not files:
        raise SystemExit(f"no Parquet files under {lake}/logs")

    results = []
    for name, description, sql in questions(lake):
        # Warm-up (and the correctness check).
        _, spate_rows = run_spate(args.spate, args.data_dir, sql)
        _, duck_rows = run_duckdb(lake, sql)
        if spate_rows != duck_rows:
            raise SystemExit(
                f"{name}: results differ\n spate:  {spate_rows[:5]}\n duckdb: {duck_rows[:5]}"
            )
        spate_times, duck_times = [], []
        for _ in range(args.reps):
            spate_times.append(run_spate(args.spate, args.data_dir, sql)[0])
            duck_times.append(run_duckdb(lake, sql)[0])
        spate_s, duck_s = statistics.median(spate_times), statistics.median(duck_times)
        results.append({
            "name": name,
            "question": description,
            "sql": sql,
            "rows": len(spate_rows),
            "result_head": spate_rows[:3],
            "spate_s": round(spate_s, 3),
            "duckdb_s": round(duck_s, 3),
            "spate_runs_s": [round(t, 3) for t in spate_times],
            "duckdb_runs_s": [round(t, 3) for t in duck_times],
            "ratio": round(spate_s / duck_s, 2),
        })
        print(
            f"{name}: spate {spate_s:.3f} s, duckdb {duck_s:.3f} s, "
            f"ratio {spate_s / duck_s:.2f}x ({len(spate_rows)} rows)",
            file=sys.stderr,
        )

    out = {
        "events": args.events,
        "files": len(files),
        "lake_bytes": sum(f.stat().st_size for f in files),
        "reps": args.reps,
        "duckdb_version": duckdb.__version__,
        "queries": results,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
