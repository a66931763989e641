#!/usr/bin/env bash
# Build-speed benchmark at real tile size. Synthesises >= 2 GB of input in band 70-80 and
# near the equator (band 0-10), then for each: builds with 1 thread and with all threads and
# prints input MB/s, tiles/s, peak RSS, stored/input bytes, the ceiling of the same run
# (reading the input plus compressing the output, no transform or gather), build/ceiling,
# the share of the transform and the gather, the 1 -> N thread scaling, and the read
# benchmark on the built band. Page caches are dropped before each run when possible (root),
# so reads come from the disk. Codec choice: scripts/codecs.sh; chunk shape: scripts/chunks.sh.
#
# Usage: scripts/bench.sh [WORK_DIR]   (default bench-out/; needs ~12 GB free)
# Env: BENCH_BANDS="70-80 0-10" to choose bands, BENCH_KEEP=1 to keep the data,
#      BENCH_SMALL=1 for a short run on ~1.4 GB (12 tiles at 70N, 4 at the equator).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-bench-out}
bands=${BENCH_BANDS:-"70-80 0-10"}
command -v /usr/bin/time >/dev/null 2>&1 || { [ "$(id -u)" = 0 ] && apt-get install -y -q time >/dev/null; }
command -v cmake >/dev/null 2>&1 || scripts/setup.sh
cargo build --release --locked --quiet
bin=$(realpath "${CARGO_TARGET_DIR:-target}")/release/mosaic
threads=$(nproc)
mkdir -p "$work"

drop_caches() { sync; if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; cache=cold; else cache=warm; fi; }

# bbox per band: 70-80: 10 x 4 cells of ~54 MB; 0-10: 7 x 2 cells of ~160 MB.
# A point with data in the middle of each band's sample, for the read benchmark (LAT LON).
if [ "${BENCH_SMALL:-0}" = 1 ]; then
read_point() { case "$1" in 70-80) echo "70.1 10.3";; 0-10) echo "0.1 10.1";; esac; }
bbox_for() { case "$1" in 70-80) echo "10.0,70.0,10.6,70.2";; 0-10) echo "10.0,0.0,10.2,0.2";; *) echo "unknown band $1" >&2; exit 2;; esac; }
else
read_point() { case "$1" in 70-80) echo "70.2 10.5";; 0-10) echo "0.1 10.35";; esac; }
bbox_for() { case "$1" in 70-80) echo "10.0,70.0,11.0,70.4";; 0-10) echo "10.0,0.0,10.7,0.2";; *) echo "unknown band $1" >&2; exit 2;; esac; }
fi

# The build report's phase times (thread-seconds) give the ceiling of the same run on the same
# bytes: reading the input files plus compressing (and handing to the disk) the output shards,
# without the transform and the gather: ceiling MB/s = input / ((read + encode_write) / threads).
summarise() {  # report.json threads rss_kb stored_bytes input_bytes
  python3 - "$@" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); t = int(sys.argv[2]); rss = int(sys.argv[3]) // 1024
stored, inb = int(sys.argv[4]), int(sys.argv[5])
ph = r["thread_seconds"]; mb = r["bytes_read"] / 1e6
total = sum(ph.values())
ceil = mb / ((ph["read"] + ph["encode_write"]) / t)
print(f"{mb / r['seconds']:10.1f} {r['tiles_written'] / r['seconds']:8.2f} {rss:7d} MB {stored / inb:10.3f} "
      f"{ceil:10.1f} {mb / r['seconds'] / ceil:10.2f} {100 * ph['transform'] / total:9.1f}% {100 * ph['gather'] / total:7.1f}%")
PY
}

printf "%-6s %-7s %-5s %10s %8s %10s %10s %10s %10s %10s %8s\n" band threads cache "MB/s in" tiles/s "peak RSS" stored/in "ceil MB/s" build/ceil transform gather
for band in $bands; do
  input="$work/in-$band"
  if [ ! -d "$input" ]; then
    "$bin" synth --out "$input" --bbox "$(bbox_for "$band")" --years 2024 --land-fraction 1 --seed 3 >/dev/null
  fi
  in_bytes=$(du -sb "$input" | cut -f1)
  declare -A speed=()
  for t in 1 "$threads"; do
    store="$work/store-$band-$t.zarr"
    rm -rf "$store"
    drop_caches
    /usr/bin/time -f "%M" -o "$work/rss" "$bin" build --input "$input" --out "$store" --band "$band" \
      --threads "$t" --report "$work/report.json" > /dev/null
    stored=$(du -sb "$store/$band" | cut -f1)
    line=$(summarise "$work/report.json" "$t" "$(cat "$work/rss")" "$stored" "$in_bytes")
    speed[$t]=$(echo "$line" | awk '{print $1}')
    printf "%-6s %-7s %-5s %s\n" "$band" "$t" "$cache" "$line"
  done
  echo "$band scaling 1 -> $threads threads: $(echo "${speed[$threads]} / ${speed[1]}" | bc -l | cut -c1-4)x"
  # Reading: xarray on the built band vs numpy on the source tiles (needs the test venv).
  if [ -x .venv/bin/python ]; then
    .venv/bin/python scripts/bench_read.py "$work/store-$band-$threads.zarr" "$band" "$input" $(read_point "$band")
  else
    echo "(read benchmark skipped: run scripts/setup.sh --tests for the Python venv)"
  fi
  [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$work"/store-"$band"-*.zarr
done
echo "input per band: $(du -sh "$work"/in-* | tr '\n' ' ')"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB RAM, $(uname -r), $(lscpu | sed -n 's/^Model name: *//p')"
