#!/usr/bin/env bash
# HTTP push benchmark: `loadgen send` drives W1 into `spate run` over loopback
# with several concurrent clients (open-loop), then `loadgen verify` checks the
# lake for loss and duplicates. Release build.
#
#   bash bench/scripts/http.sh [RATE] [DURATION] [PROFILE] [CONCURRENCY] [BATCH_EVENTS] [MAX_OVERDUE]
#
# MAX_OVERDUE (loadgen's --max-overdue, default 64 batches) is how many due batches
# loadgen queues while spate is not accepting them before it drops new ones; a large
# value makes loadgen act as the durable upstream (a queue or stream) a spike piles
# up in, at the cost of loadgen's memory (about MAX_OVERDUE x BATCH_EVENTS x 340 B).
#
# SPATE_BIN_DIR=DIR takes `spate` and `loadgen` from DIR instead of building them
# (to compare two builds, alternating).
#
# SPATE_CPUS=LIST pins spate to those CPUs (taskset -c LIST) and LOADGEN_CPUS=LIST
# pins loadgen: `SPATE_CPUS=1 LOADGEN_CPUS=0` measures what one vCPU carries with
# loadgen off its core.
#
# Prints one JSON line: offered and achieved events/s, latency p50/p99/max
# (scheduled send → 200, i.e. durably in the journal), loss and duplicates from
# the lake (verify expects every event sent), spate's peak RSS and CPU seconds,
# and the per-second offered/acknowledged series. Outputs of the run stay in
# $SPATE_BENCH_DIR (default /tmp/spate-bench): http-send.json, http-verify.json,
# http-spate.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
rate="${1:-300000}"
duration="${2:-20s}"
profile="${3:-steady}"
concurrency="${4:-8}"
batch="${5:-1000}"
max_overdue="${6:-64}"
work="${SPATE_BENCH_DIR:-/tmp/spate-bench}"
mkdir -p "$work"
if [ -n "${SPATE_BIN_DIR:-}" ]; then
  # Binaries built elsewhere (an A/B of two builds): `spate` and `loadgen` there.
  target="$SPATE_BIN_DIR"
else
  cargo build --release -q -p spate -p spate-loadgen
  target="${CARGO_TARGET_DIR:-target}/release"
fi

data="$work/data-http"
rm -rf "$data"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
timing="$work/http-time.txt"
/usr/bin/time -f '%e %U %S %M' -o "$timing" \
  ${SPATE_CPUS:+taskset -c "$SPATE_CPUS"} "$target/spate" run --listen "127.0.0.1:$port" --data-dir "$data" > "$work/http-alerts.txt" 2> "$work/http-spate.log" &
spate_pid=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/healthz" > /dev/null && break
  sleep 0.1
done
run_id="bench-$(date +%s)"
/usr/bin/time -f '%U %S %M' -o "$work/http-loadgen-time.txt" \
  ${LOADGEN_CPUS:+taskset -c "$LOADGEN_CPUS"} "$target/loadgen" send --workload w1 --rate "$rate" --duration "$duration" --profile "$profile" \
  --concurrency "$concurrency" --batch-events "$batch" --max-overdue "$max_overdue" \
  --target "http://127.0.0.1:$port" --run-id "$run_id" --json \
  > "$work/http-send.json" 2> "$work/http-send.log" || true
# Drain: SIGTERM to the service (the child of /usr/bin/time).
pkill -TERM -P "$spate_pid" || true
wait "$spate_pid" || true
# Every sequence number sent must be in the lake, the last ones included.
sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sent"])' "$work/http-send.json" 2>/dev/null || echo "")
"$target/loadgen" verify --data-dir "$data" --run "$run_id" ${sent:+--expect "$sent"} --json \
  > "$work/http-verify.json" 2> "$work/http-verify.log" || true
# GNU time puts "Command exited with non-zero status N" first when it did: last line.
read -r wall user sys rss_kib < <(tail -n 1 "$timing")
read -r lg_user lg_sys lg_rss_kib < <(tail -n 1 "$work/http-loadgen-time.txt")

python3 - "$work/http-send.json" "$work/http-verify.json" "$user" "$sys" "$rss_kib" "$rate" "$profile" \
  "$concurrency" "$batch" "$max_overdue" "$lg_user" "$lg_sys" "$lg_rss_kib" <<'PY'
import json, os, sys
send = json.load(open(sys.argv[1])); verify = json.load(open(sys.argv[2]))
user, sys_, rss_kib = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
lg_cpu, lg_rss_kib = float(sys.argv[11]) + float(sys.argv[12]), int(sys.argv[13])
lat = send["latency"]
out = {
    "profile": sys.argv[7], "offered_rate": int(sys.argv[6]), "concurrency": int(sys.argv[8]),
    "batch_events": int(sys.argv[9]), "max_overdue": int(sys.argv[10]), "run_id": send["run_id"],
    "duration_s": send["duration_s"],
    "elapsed_s": send["elapsed_s"], "scheduled": send["scheduled"], "sent": send["sent"],
    "acknowledged": send["acknowledged"], "rejected": send["rejected"],
    "failed": send["failed"], "dropped_by_generator": send["dropped_by_generator"],
    "achieved_events_per_s": round(send["achieved_rate_per_s"]),
    "latency_ms": {"p50": lat["p50_ms"], "p99": lat["p99_ms"], "max": lat["max_ms"]},
    "lake_found": verify["found"], "lake_unique": verify["unique"],
    "expected": verify["expected"], "lost": verify["lost"]["count"],
    "duplicates": verify["duplicates"]["extra_rows"],
    "durable_latency_ms": verify.get("latency_durable"),
    "spate_cpus": os.environ.get("SPATE_CPUS", "all"),
    "spate_cpu_s": round(user + sys_, 1), "spate_peak_rss_mib": round(rss_kib / 1024, 1),
    "loadgen_cpu_s": round(lg_cpu, 1), "loadgen_peak_rss_mib": round(lg_rss_kib / 1024, 1),
    "per_second": send["per_second"],
}
print(json.dumps(out))
PY
