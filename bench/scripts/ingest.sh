#!/usr/bin/env bash
# End-to-end ingest benchmark: a WORKLOAD.md corpus through `spate ingest` into the
# Parquet lake, on the release build.
#
#   bash bench/scripts/ingest.sh [w1|w2|w3] [EVENTS] [SEED]
#
# Reports events/s, MiB/s of input, CPU-seconds per million events, peak RSS and
# lake bytes per event (one JSON line on stdout, a readable line on stderr).
set -euo pipefail
cd "$(dirname "$0")/../.."
workload="${1:-w1}"
events="${2:-1000000}"
seed="${3:-42}"
work="${SPATE_BENCH_DIR:-/tmp/spate-bench}"
mkdir -p "$work"

cargo build --release -q -p spate -p spate-loadgen
target="${CARGO_TARGET_DIR:-target}/release"
corpus="$work/$workload-$events-$seed.txt"
if [ ! -s "$corpus" ]; then
  "$target/loadgen" generate --workload "$workload" --events "$events" --seed "$seed" --out "$corpus" 2>/dev/null
fi
input_bytes=$(stat -c %s "$corpus")
# Warm the page cache so the first run does not measure the disk.
cat "$corpus" > /dev/null

data="$work/data-$workload"
rm -rf "$data"
timing="$work/time.txt"
/usr/bin/time -f '%e %U %S %M' -o "$timing" \
  "$target/spate" ingest --json --data-dir "$data" "$corpus" > "$work/summary.json"
read -r wall user sys rss_kib < "$timing"
lake_bytes=$(du -sb "$data/lake" | cut -f1)

python3 - "$workload" "$events" "$input_bytes" "$wall" "$user" "$sys" "$rss_kib" "$lake_bytes" "$work/summary.json" <<'PY'
import json, sys
workload, events, input_bytes, wall, user, sys_, rss_kib, lake_bytes, summary = sys.argv[1:]
events = int(events); wall = float(wall); cpu = float(user) + float(sys_)
s = json.load(open(summary))
assert s["events"] == events, f"archived {s['events']} of {events} events"
out = {
    "workload": workload,
    "events": events,
    "wall_s": wall,
    "events_per_s": round(events / wall),
    "input_mib_per_s": round(int(input_bytes) / wall / 2**20, 1),
    "cpu_s_per_million": round(cpu / (events / 1e6), 2),
    "peak_rss_mib": round(int(rss_kib) / 1024, 1),
    "lake_bytes_per_event": round(int(lake_bytes) / events, 1),
    "files_written": s["files_written"],
}
print(json.dumps(out))
print(f"{workload}: {out['events_per_s']:,} events/s, {out['input_mib_per_s']} MiB/s, "
      f"{out['cpu_s_per_million']} CPU-s/M events, peak RSS {out['peak_rss_mib']} MiB, "
      f"{out['lake_bytes_per_event']} lake bytes/event", file=sys.stderr)
PY
