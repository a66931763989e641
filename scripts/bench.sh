#!/usr/bin/env bash
# Build-speed benchmark at real tile size. Synthesises >= 2 GB of input in band 70-80 and
# near the equator (band 0-10), then for each: builds with 1 thread and with all threads,
# measures the ceiling (reading the same files and compressing as many output bytes with the
# same codec and level, no reprojection), and prints input MB/s, tiles/s, peak RSS,
# stored/input bytes and build/ceiling. Page caches are dropped before each run when
# possible (root), so reads come from the disk.
#
# Usage: scripts/bench.sh [WORK_DIR]   (default bench-out/; needs ~12 GB free)
# Env: BENCH_BANDS="70-80 0-10" to choose bands, BENCH_KEEP=1 to keep the data.
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
bbox_for() { case "$1" in 70-80) echo "10.0,70.0,11.0,70.4";; 0-10) echo "10.0,0.0,10.7,0.2";; *) echo "unknown band $1" >&2; exit 2;; esac; }

printf "%-6s %-8s %7s %10s %8s %9s %10s %11s %9s\n" band threads cache "MB/s in" tiles/s "peak RSS" stored/in "ceil MB/s" build/ceil
for band in $bands; do
  input="$work/in-$band"
  if [ ! -d "$input" ]; then
    "$bin" synth --out "$input" --bbox "$(bbox_for "$band")" --years 2024 --land-fraction 1 --seed 3 >/dev/null
  fi
  in_bytes=$(du -sb "$input" | cut -f1)
  for t in 1 "$threads"; do
    drop_caches
    ceil=$("$bin" ceiling --input "$input" --band "$band" --threads "$t" | sed -n 's/.*= \([0-9.]*\) MB\/s/\1/p')
    store="$work/store-$band-$t.zarr"
    rm -rf "$store"
    drop_caches
    /usr/bin/time -f "%M" -o "$work/rss" "$bin" build --input "$input" --out "$store" --band "$band" --threads "$t" > "$work/build.log"
    mbs=$(sed -n 's/.*(\([0-9.]*\) MB\/s, \([0-9.]*\) tiles\/s.*/\1/p' "$work/build.log")
    tps=$(sed -n 's/.*(\([0-9.]*\) MB\/s, \([0-9.]*\) tiles\/s.*/\2/p' "$work/build.log")
    rss_mb=$(( $(cat "$work/rss") / 1024 ))
    stored=$(du -sb "$store/$band" | cut -f1)
    printf "%-6s %-8s %7s %10s %8s %7s MB %10.3f %11s %9.2f\n" "$band" "$t" "$cache" "$mbs" "$tps" "$rss_mb" \
      "$(echo "$stored / $in_bytes" | bc -l)" "$ceil" "$(echo "$mbs / $ceil" | bc -l)"
  done
  [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$work"/store-"$band"-*.zarr
done
echo "input per band: $(du -sh "$work"/in-* | tr '\n' ' ')"
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GB RAM, $(uname -r)"
