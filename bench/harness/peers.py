#!/usr/bin/env python3
"""Spate beside Fluent Bit and Vector on the same W1 file, in one run.

    python3 bench/harness/peers.py CORPUS EVENTS SPATE_BINARY [--work DIR]

Runs, one after the other on the same file (page cache warm):

- `spate ingest --data-dir FRESH CORPUS` (decode, classify, Parquet lake);
- Fluent Bit, when `fluent-bit` is on PATH: tail from the head → JSON parser → Lua
  severity (bench/peers/severity.lua) → one JSON line per record in a file, exiting
  at EOF (bench/peers/fluent-bit.conf);
- Vector, when `vector` is on PATH: stdin → VRL severity → JSON lines in a file
  (bench/peers/vector.toml).

Each under `/usr/bin/time`: wall, user + system CPU, peak RSS. A peer's output is
counted (one line per event) and must hold every event. Prints one JSON line on
stdout: `{"events", "spate": {...}, "peers": {"fluent-bit": {...}, "vector": {...}},
"ratios": {...}}`; a peer that is not installed is `{"skipped": "..."}` and has no
ratio. Exits 1 only when a run that was attempted failed.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEERS_DIR = Path(__file__).resolve().parents[1] / "peers"
TIME_FORMAT = "%e %U %S %M"


class PeerFailed(Exception):
    """A run exited non-zero or did not write every event."""


def parse_time_output(text):
    """(wall s, user s, system s, peak RSS KiB) from GNU time's `%e %U %S %M` line.

    GNU time writes "Command exited with non-zero status N" before it when the
    command failed; the figures are on the last non-empty line.
    """
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        raise ValueError("no output from /usr/bin/time")
    wall, user, sys_, rss = lines[-1].split()
    return float(wall), float(user), float(sys_), int(rss)


def figures(events, wall, user, sys_, rss_kib):
    """The comparable figures of one run of `events` events."""
    if events <= 0 or wall <= 0:
        raise ValueError("events and wall time must be positive")
    cpu = user + sys_
    return {
        "events": events,
        "wall_s": round(wall, 3),
        "events_per_s": round(events / wall),
        "cpu_s": round(cpu, 2),
        "cpu_s_per_million": round(cpu / (events / 1e6), 2),
        "peak_rss_mib": round(rss_kib / 1024, 1),
    }


def ratios(spate, peer):
    """How Spate compares with a peer: >1 means Spate is better on that figure."""
    def div(a, b):
        return round(a / b, 2) if b else None

    return {
        "speed": div(spate["events_per_s"], peer["events_per_s"]),
        "cpu_per_event": div(peer["cpu_s_per_million"], spate["cpu_s_per_million"]),
        "peak_rss": div(peer["peak_rss_mib"], spate["peak_rss_mib"]),
    }


def count_lines(path):
    n = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            n += chunk.count(b"\n")
    return n


def timed(argv, env=None, stdin_path=None, log_path=None):
    """Runs argv under /usr/bin/time; returns (wall, user, sys, rss_kib).

    The wall time is measured here (GNU time's `%e` has 10 ms steps), the CPU
    times and the peak RSS come from GNU time.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        full = ["/usr/bin/time", "-f", TIME_FORMAT, "-o", timing.name] + argv
        stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
        log = open(log_path, "wb") if log_path else subprocess.DEVNULL
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(full, env=dict(os.environ, **(env or {})), stdin=stdin, stdout=log, stderr=log)
        finally:
            if stdin_path:
                stdin.close()
            if log_path:
                log.close()
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise PeerFailed(f"{argv[0]} exited {proc.returncode} (log: {log_path})")
        _, user, sys_, rss = parse_time_output(Path(timing.name).read_text())
        return wall, user, sys_, rss


def run_spate(binary, corpus, events, work):
    data = work / "spate-data"
    shutil.rmtree(data, ignore_errors=True)
    t = timed([binary, "ingest", "--format", "json", "--data-dir", str(data), str(corpus)], log_path=work / "spate.log")
    return figures(events, *t)


def run_fluent_bit(exe, corpus, events, work):
    out = work / "fluent-bit-out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = {"PEER_INPUT": str(corpus), "PEER_OUT_DIR": str(out), "PEER_CONF_DIR": str(PEERS_DIR)}
    t = timed([exe, "-c", str(PEERS_DIR / "fluent-bit.conf")], env=env, log_path=work / "fluent-bit.log")
    written = count_lines(out / "fluent-bit.ndjson")
    if written != events:
        raise PeerFailed(f"fluent-bit wrote {written} of {events} events")
    return figures(events, *t)


def run_vector(exe, corpus, events, work):
    out = work / "vector-out"
    data = work / "vector-data"
    for d in (out, data):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    env = {"PEER_OUT_DIR": str(out), "VECTOR_DATA_DIR": str(data)}
    t = timed([exe, "--quiet", "--config", str(PEERS_DIR / "vector.toml")], env=env, stdin_path=corpus, log_path=work / "vector.log")
    written = count_lines(out / "vector.ndjson")
    if written != events:
        raise PeerFailed(f"vector wrote {written} of {events} events")
    return figures(events, *t)


PEERS = (("fluent-bit", run_fluent_bit), ("vector", run_vector))


def compare(binary, corpus, events, work, which=shutil.which):
    work.mkdir(parents=True, exist_ok=True)
    spate = run_spate(binary, corpus, events, work)
    out = {"events": events, "spate": spate, "peers": {}, "ratios": {}}
    for name, run in PEERS:
        exe = which(name)
        if not exe:
            out["peers"][name] = {"skipped": f"{name} is not installed (see bench/peers/README.md)"}
            continue
        result = run(exe, corpus, events, work)
        out["peers"][name] = result
        out["ratios"][name] = ratios(spate, result)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", help="the W1 file (loadgen generate --workload w1)")
    parser.add_argument("events", type=int, help="events in the file")
    parser.add_argument("binary", help="the spate binary")
    parser.add_argument("--work", default=os.path.join(os.environ.get("SPATE_BENCH_DIR", "/tmp/spate-bench"), "peers"))
    args = parser.parse_args()
    try:
        out = compare(args.binary, Path(args.corpus), args.events, Path(args.work))
    except (PeerFailed, ValueError, OSError) as err:
        print(f"peers: {err}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    s = out["spate"]
    print(f"spate ingest: {s['events_per_s']:,} events/s, {s['cpu_s_per_million']} CPU-s/M, {s['peak_rss_mib']} MiB", file=sys.stderr)
    for name, r in out["peers"].items():
        if "skipped" in r:
            print(f"{name}: skipped: {r['skipped']}", file=sys.stderr)
            continue
        q = out["ratios"][name]
        print(f"{name}: {r['events_per_s']:,} events/s, {r['cpu_s_per_million']} CPU-s/M, {r['peak_rss_mib']} MiB; "
              f"spate is {q['speed']}x as fast, {q['cpu_per_event']}x less CPU per event", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
