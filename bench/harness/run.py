#!/usr/bin/env python3
"""The benchmark harness: runs the suite on the release build and writes the results.

    bash bench/run.sh [--quick] [--only STEP,...] [--events N] [--spike-rate R] [--report-only]

Steps, in order (names for `--only`):

- `build`: `cargo build --release -p spate -p spate-loadgen` and the criterion benches;
- `engine_hops`, `decode_classify`: criterion (`cargo bench -p spate-bench`), read back
  from `$CARGO_TARGET_DIR/criterion/<group>/<bench>/<param>/new/estimates.json`;
- `ingest_w1`, `ingest_w2`, `ingest_w3`: `bench/scripts/ingest.sh` (N events, seed 42);
- `lambda_baseline`: `bench/baseline/lambda_classifier.py` on the same W1 file;
- `peers`: `bench/peers/run.sh`, `spate ingest` beside Fluent Bit and Vector on the same
  W1 file (a peer that is not installed is skipped, the step still succeeds);
- `startup`: `bench/scripts/startup.sh`, `spate --version`, `spate run` to the first
  200 on /healthz and `spate ingest` of 10 events, medians of 11 runs;
- `query_vs_duckdb`: `bench/scripts/query.sh`, three questions on a W1 lake of N events
  with `spate query` and DuckDB, same SQL, same files;
- `http_steady`: `bench/scripts/http.sh` W1 at 500 k events/s;
- `http_spike`: `bench/scripts/http.sh` W4 spike at R = 100 k events/s (`--spike-rate R`:
  another R, e.g. the highest this machine sustains; W4's targets hold there).

A step that fails is recorded as failed (with the end of its output) and the others
still run. Writes `docs/benchmarks.json` (every result, the machine, the load average
when each step started), rewrites the generated section of `docs/BENCHMARKS.md` and
draws `docs/spike.svg`. With `--only`, the other steps' results are kept from the
existing `docs/benchmarks.json`. `--report-only` rebuilds the Markdown and the plot
from `docs/benchmarks.json` without running anything.

Exits 1 when a step failed or an HTTP run's loss check failed.
"""

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report  # noqa: E402
import spike  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
RESULTS_JSON = DOCS / "benchmarks.json"
BENCHMARKS_MD = DOCS / "BENCHMARKS.md"
SPIKE_SVG = DOCS / "spike.svg"
SEED = 42

STEPS = (
    "build",
    "engine_hops",
    "decode_classify",
    "ingest_w1",
    "ingest_w2",
    "ingest_w3",
    "lambda_baseline",
    "peers",
    "startup",
    "query_vs_duckdb",
    "http_steady",
    "http_spike",
)

# Per mode: events for ingest and the baseline, HTTP runs (rate, duration, loadgen's
# --max-overdue in batches), criterion flags. The steady run keeps loadgen's default
# queue (an overloaded target shows as events never sent); the spike run gives loadgen
# room for the spike's backlog, as the queue or stream upstream of spate would hold it:
# all of the quick spike (10 R × 6 s), 12 M events (≈ 4 GiB of loadgen memory) of the
# full one's 30 M.
MODES = {
    "quick": {
        "events": 1_000_000,
        "http_steady": (500_000, "10s", 64),
        "http_spike": (100_000, "30s", 6_000),
        "criterion": ["--warm-up-time", "1", "--measurement-time", "3", "--noplot"],
    },
    "full": {
        "events": 20_000_000,
        "http_steady": (500_000, "60s", 64),
        "http_spike": (100_000, "150s", 12_000),
        "criterion": ["--noplot"],
    },
}
HTTP_CONCURRENCY = 8
HTTP_BATCH_EVENTS = 1000


def log(message):
    print(f"[bench {datetime.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def load_average():
    with open("/proc/loadavg") as f:
        return [float(v) for v in f.read().split()[:3]]


def capture(argv):
    """stdout of a command, stripped; None when it cannot run."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine():
    """What the figures were measured on."""
    model = None
    for line in (capture(["lscpu"]) or "").splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    mem_kib = None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "cpus": int(capture(["nproc"]) or 0) or None,
        "cpu_model": model,
        "memory_gib": round(mem_kib / 2**20, 1) if mem_kib else None,
        "kernel": capture(["uname", "-r"]),
        "rustc": capture(["rustc", "-V"]),
        "python": "Python " + sys.version.split()[0],
        "hostname": capture(["hostname"]),
        "uptime": capture(["uptime"]),
    }


def git_state():
    return {
        "commit": capture(["git", "-C", str(REPO), "rev-parse", "HEAD"]),
        "branch": capture(["git", "-C", str(REPO), "rev-parse", "--abbrev-ref", "HEAD"]),
        "dirty": bool(capture(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])),
    }


def target_dir():
    return Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")


def bench_dir():
    return Path(os.environ.get("SPATE_BENCH_DIR") or "/tmp/spate-bench")


class StepFailed(Exception):
    """A step's command failed or its output was not what was expected."""


def run_command(argv, env=None, log_path=None):
    """Runs a command from the repository root; returns its stdout. stderr goes to `log_path`."""
    full_env = dict(os.environ, **(env or {}))
    with open(log_path, "w") if log_path else open(os.devnull, "w") as err:
        proc = subprocess.run(argv, cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=err, text=True)
    if proc.returncode != 0:
        tail = ""
        if log_path:
            tail = " ".join(Path(log_path).read_text(errors="replace").strip().splitlines()[-5:])
        raise StepFailed(f"exit {proc.returncode}: {tail[-600:]}")
    return proc.stdout


def last_json_line(stdout):
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise StepFailed("no JSON line in the output")


def criterion_results(group, since):
    """Criterion's estimates for every benchmark of `group` written after `since` (epoch s).

    Returns {"group/function/param": {time_ns, time_ns_low, time_ns_high, elements,
    events_per_s, events_per_s_low, events_per_s_high}}.
    """
    root = target_dir() / "criterion" / group
    results = {}
    for bench_json in sorted(root.glob("**/new/benchmark.json")):
        estimates = bench_json.with_name("estimates.json")
        if not estimates.exists() or estimates.stat().st_mtime < since:
            continue
        meta = json.loads(bench_json.read_text())
        est = json.loads(estimates.read_text())
        elements = (meta.get("throughput") or {}).get("Elements")
        mean = est["mean"]
        ns, low, high = mean["point_estimate"], mean["confidence_interval"]["lower_bound"], mean["confidence_interval"]["upper_bound"]
        entry = {"time_ns": ns, "time_ns_low": low, "time_ns_high": high, "elements": elements}
        if elements:
            entry["events_per_s"] = elements / (ns / 1e9)
            entry["events_per_s_low"] = elements / (high / 1e9)
            entry["events_per_s_high"] = elements / (low / 1e9)
        results[meta["full_id"]] = entry
    if not results:
        raise StepFailed(f"no fresh criterion results under {root}")
    return results


def http_step(profile, rate, duration, max_overdue, work):
    argv = [
        "bash", "bench/scripts/http.sh", str(rate), duration, profile,
        str(HTTP_CONCURRENCY), str(HTTP_BATCH_EVENTS), str(max_overdue),
    ]
    return argv, {"SPATE_BENCH_DIR": str(work)}


def plan(mode, events, criterion_since, spike_rate=None):
    """The steps as (name, command shown, function returning the result)."""
    cfg = dict(MODES[mode])
    if spike_rate:
        _, duration, max_overdue = cfg["http_spike"]
        cfg["http_spike"] = (spike_rate, duration, max_overdue)
    work = bench_dir()
    corpus = work / f"w1-{events}-{SEED}.txt"
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    steps = {}

    def shell(name, argv, env=None, parse=last_json_line):
        shown = " ".join(f"{k}={v}" for k, v in (env or {}).items())
        shown = (shown + " " if shown else "") + " ".join(shlex.quote(a) for a in argv)
        steps[name] = (shown, lambda: parse(run_command(argv, env, logs / f"{name}.log")))

    shell("build", ["cargo", "build", "--release", "-p", "spate", "-p", "spate-loadgen"], parse=lambda _: {})
    bench_argv = ["cargo", "bench", "-p", "spate-bench", "--bench"]
    for name, group in (("engine_hops", "chain4"), ("decode_classify", "decode_classify")):
        argv = bench_argv + [name, "--"] + cfg["criterion"]

        def parse(_out, group=group):
            return criterion_results(group, criterion_since)

        shell(name, argv, parse=parse)
    for wl in ("w1", "w2", "w3"):
        shell(f"ingest_{wl}", ["bash", "bench/scripts/ingest.sh", wl, str(events), str(SEED)], {"SPATE_BENCH_DIR": str(work)})
    shell("lambda_baseline", ["python3", "bench/baseline/lambda_classifier.py", str(corpus)])
    shell("peers", ["bash", "bench/peers/run.sh", str(events), str(SEED)], {"SPATE_BENCH_DIR": str(work)})
    shell("startup", ["bash", "bench/scripts/startup.sh", "11"], {"SPATE_BENCH_DIR": str(work)})
    shell("query_vs_duckdb", ["bash", "bench/scripts/query.sh", str(events), str(SEED)], {"SPATE_BENCH_DIR": str(work)})
    for name in ("http_steady", "http_spike"):
        rate, duration, max_overdue = cfg[name]
        profile = "steady" if name == "http_steady" else "spike"
        argv, env = http_step(profile, rate, duration, max_overdue, work / name)
        shell(name, argv, env)
    return steps


def run_steps(names, mode, events, commit, spike_rate=None):
    started = time.time()
    steps = plan(mode, events, started, spike_rate)
    if "lambda_baseline" in names and "ingest_w1" not in names:
        corpus = bench_dir() / f"w1-{events}-{SEED}.txt"
        if not corpus.exists():
            names = ["ingest_w1"] + names  # the baseline needs the W1 file ingest generates
    out = {}
    for name in STEPS:
        if name not in names:
            continue
        shown, fn = steps[name]
        entry = {"command": shown, "started": now_iso(), "commit": commit, "load_average": load_average()}
        log(f"{name}: {shown} (load {entry['load_average'][0]:.2f})")
        t0 = time.time()
        try:
            if name == "build":
                fn()
                run_command(["cargo", "bench", "-p", "spate-bench", "--no-run"], None, bench_dir() / "logs" / "build-benches.log")
                entry["result"] = {}
            else:
                entry["result"] = fn()
            entry["ok"] = True
        except (StepFailed, OSError, ValueError, KeyError) as err:
            entry["ok"] = False
            entry["error"] = str(err) or type(err).__name__
            log(f"{name}: FAILED: {entry['error']}")
        entry["elapsed_s"] = round(time.time() - t0, 1)
        if entry["ok"] and name.startswith("http_"):
            ok, why = report.loss_check(entry["result"])
            entry["loss_check_failed"] = not ok
            if not ok:
                log(f"{name}: LOSS CHECK FAILED: {why}")
        if entry["ok"] and name != "build":
            summary = json.dumps({k: v for k, v in entry["result"].items() if k != "per_second"})
            log(f"{name}: {summary[:400]}")
        out[name] = entry
        if name == "build" and not entry["ok"]:
            log("the release build failed: nothing else can run")
            break
    return out


def speedup(steps):
    ingest = steps.get("ingest_w1", {})
    base = steps.get("lambda_baseline", {})
    if not (ingest.get("ok") and base.get("ok")):
        return None
    i, b = ingest["result"], base["result"]
    if i["events"] != b["events"] or not b["events_per_s"] or not i["cpu_s_per_million"]:
        return None
    return {
        "wall": i["events_per_s"] / b["events_per_s"],
        "cpu": b["cpu_s_per_million"] / i["cpu_s_per_million"],
        "events": i["events"],
    }


def write_outputs(results):
    results["speedup"] = speedup(results["steps"])
    results["targets"] = report.evaluate_targets(results)
    RESULTS_JSON.write_text(json.dumps(results, indent=2) + "\n")
    section = report.render_markdown(results)
    document = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else "# Spate benchmarks\n"
    BENCHMARKS_MD.write_text(report.splice(document, section))
    spike_run = report.step_result(results, "http_spike")
    if spike_run and spike_run.get("per_second"):
        title = (
            f"W4 spike, R = {spike_run['offered_rate']:,} events/s, {spike_run['duration_s']:g} s "
            f"({results['mode']} run, {results['started']})"
        )
        SPIKE_SVG.write_text(
            spike.render_svg(spike_run["per_second"], spike_run["offered_rate"], spike_run["duration_s"], title, report.SPIKE_LAG_THRESHOLD_S)
        )
    log(f"wrote {RESULTS_JSON.relative_to(REPO)}, {BENCHMARKS_MD.relative_to(REPO)}, {SPIKE_SVG.relative_to(REPO)}")


def main():
    parser = argparse.ArgumentParser(description="Spate benchmark harness (see bench/README.md)")
    parser.add_argument("--quick", action="store_true", help="1 M events, short HTTP runs, scaled spike")
    parser.add_argument("--only", help=f"comma-separated steps to run: {', '.join(STEPS)}")
    parser.add_argument("--events", type=int, help="events for ingest and the baseline (default: 1 M quick, 20 M full)")
    parser.add_argument("--spike-rate", type=int, help="R of the W4 spike, events/s (default 100000)")
    parser.add_argument("--report-only", action="store_true", help="rebuild the Markdown and plot from docs/benchmarks.json")
    args = parser.parse_args()

    if args.report_only:
        results = json.loads(RESULTS_JSON.read_text())
        write_outputs(results)
        return 0
    mode = "quick" if args.quick else "full"
    events = args.events or MODES[mode]["events"]
    names = list(STEPS)
    previous = {}
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in STEPS]
        if unknown:
            parser.error(f"unknown steps {unknown}: expected some of {', '.join(STEPS)}")
        if "build" not in names:
            names = ["build"] + names
        if RESULTS_JSON.exists():
            previous = json.loads(RESULTS_JSON.read_text()).get("steps", {})
    results = {
        "command": "bash bench/run.sh" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:]),
        "mode": mode,
        "events": events,
        "started": now_iso(),
        "machine": machine(),
        "git": git_state(),
        "load_average": {"start": load_average()},
    }
    steps = run_steps(names, mode, events, results["git"]["commit"], args.spike_rate)
    results["finished"] = now_iso()
    results["load_average"]["end"] = load_average()
    results["steps"] = {name: steps.get(name, previous.get(name)) for name in STEPS if name in steps or name in previous}
    results["kept_from_previous_run"] = [name for name in results["steps"] if name not in steps]
    write_outputs(results)
    failed = [n for n, s in steps.items() if not s["ok"] or s.get("loss_check_failed")]
    if failed:
        log(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
