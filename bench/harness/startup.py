#!/usr/bin/env python3
"""Start-up time of the `spate` binary: exec to ready, several runs, medians.

    python3 bench/harness/startup.py SPATE_BINARY [--runs N] [--work DIR]

Three measurements, each repeated `--runs` times (default 11), alternating, so a
burst of load on a shared machine hits all three alike:

- `version`: `spate --version`, exec to exit;
- `run_healthz`: `spate run --data-dir FRESH --listen 127.0.0.1:PORT`, from exec to
  the first `200` on `GET /healthz` (polled over a raw socket every 0.5 ms, a new
  empty data directory and a free port each run; the process is then stopped with
  SIGTERM and waited for, outside the timed part);
- `ingest_tiny`: `spate ingest --data-dir FRESH FILE` of a 10-event W1-like file,
  exec to exit (the lake written and sealed).

Prints one JSON line on stdout (`{"runs": N, "version": {...}, ...}`, each with
`median_ms`, `min_ms`, `max_ms` and every sample) and a readable line per
measurement on stderr. Exits 1 when a run fails (non-zero exit, or no 200 within
10 s).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

READY_DEADLINE_S = 10.0
POLL_INTERVAL_S = 0.0005

TINY_EVENTS = [
    '{"timestamp":"2026-01-01T00:00:00.000Z","level":"info","service":"api","message":"request served"}',
    '{"timestamp":"2026-01-01T00:00:00.001Z","level":"ERROR","service":"api","message":"upstream timed out"}',
    '{"timestamp":"2026-01-01T00:00:00.002Z","severity":"Warning","service":"db","message":"slow query"}',
    '{"timestamp":"2026-01-01T00:00:00.003Z","lvl":"debug","service":"db","message":"pool size 8"}',
    '{"timestamp":"2026-01-01T00:00:00.004Z","service":"auth","message":"fatal: key store unreachable"}',
    '{"timestamp":"2026-01-01T00:00:00.005Z","levelname":"notice","service":"auth","message":"token refreshed"}',
    '{"timestamp":"2026-01-01T00:00:00.006Z","log":{"level":"err"},"service":"web","message":"render failed"}',
    '{"timestamp":"2026-01-01T00:00:00.007Z","service":"web","message":"GET /index 200","status":200}',
    '{"timestamp":"2026-01-01T00:00:00.008Z","level":"FATAL","service":"queue","message":"disk full"}',
    '{"timestamp":"2026-01-01T00:00:00.009Z","level":"info","service":"queue","message":"consumer joined"}',
]


class RunFailed(Exception):
    """A measured command failed or never became ready."""


def summarize(samples_s):
    """Median, min and max in milliseconds of a non-empty list of seconds, plus the samples."""
    if not samples_s:
        raise ValueError("no samples")
    ms = sorted(s * 1000.0 for s in samples_s)
    n = len(ms)
    median = ms[n // 2] if n % 2 else (ms[n // 2 - 1] + ms[n // 2]) / 2
    return {
        "median_ms": round(median, 1),
        "min_ms": round(ms[0], 1),
        "max_ms": round(ms[-1], 1),
        "samples_ms": [round(s * 1000.0, 1) for s in samples_s],
    }


def is_http_200(response_head):
    """True when the bytes start with an HTTP/1.x status line whose code is 200."""
    line = response_head.split(b"\r\n", 1)[0].split()
    return len(line) >= 2 and line[0].startswith(b"HTTP/1.") and line[1] == b"200"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthz_ok(port):
    """One GET /healthz over a raw socket; True on a 200, False while not listening yet."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            head = s.recv(64)
            return is_http_200(head)
    except (ConnectionRefusedError, ConnectionResetError, socket.timeout, OSError):
        return False


def time_exit(argv):
    t0 = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RunFailed(f"{argv[:2]} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-400:]}")
    return elapsed


def time_run_healthz(binary, work):
    data = tempfile.mkdtemp(prefix="run-", dir=work)
    port = free_port()
    log = open(os.path.join(work, "run.log"), "wb")
    argv = [binary, "run", "--data-dir", data, "--listen", f"127.0.0.1:{port}"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=log, stderr=log)
    try:
        while True:
            if healthz_ok(port):
                return time.perf_counter() - t0
            if proc.poll() is not None:
                raise RunFailed(f"spate run exited {proc.returncode} before /healthz answered")
            if time.perf_counter() - t0 > READY_DEADLINE_S:
                raise RunFailed(f"no 200 on /healthz within {READY_DEADLINE_S} s")
            time.sleep(POLL_INTERVAL_S)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def time_ingest_tiny(binary, work, tiny):
    data = tempfile.mkdtemp(prefix="ingest-", dir=work)
    try:
        return time_exit([binary, "ingest", "--data-dir", data, tiny])
    finally:
        shutil.rmtree(data, ignore_errors=True)


def measure(binary, runs, work):
    os.makedirs(work, exist_ok=True)
    tiny = os.path.join(work, "tiny-w1.ndjson")
    with open(tiny, "w") as f:
        f.write("\n".join(TINY_EVENTS) + "\n")
    # One unmeasured round: page cache, dynamic loader caches.
    time_exit([binary, "--version"])
    samples = {"version": [], "run_healthz": [], "ingest_tiny": []}
    for _ in range(runs):
        samples["version"].append(time_exit([binary, "--version"]))
        samples["run_healthz"].append(time_run_healthz(binary, work))
        samples["ingest_tiny"].append(time_ingest_tiny(binary, work, tiny))
    out = {"runs": runs, "binary": binary, "binary_bytes": os.path.getsize(binary)}
    for name, values in samples.items():
        out[name] = summarize(values)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary", help="the spate binary to measure")
    parser.add_argument("--runs", type=int, default=11, help="runs of each measurement (default 11)")
    parser.add_argument("--work", default=os.path.join(os.environ.get("SPATE_BENCH_DIR", "/tmp/spate-bench"), "startup"))
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    try:
        out = measure(args.binary, args.runs, args.work)
    except RunFailed as err:
        print(f"startup: {err}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    for name in ("version", "run_healthz", "ingest_tiny"):
        s = out[name]
        print(f"{name}: median {s['median_ms']} ms (min {s['min_ms']}, max {s['max_ms']}, {args.runs} runs)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
