#!/usr/bin/env bash
# Inner chunk shape tuning: build band 70-80 (from scripts/bench.sh's real-size input) with
# several inner chunk shapes and run the read benchmark (scripts/bench_read.py) on each:
# one pixel over all years, a 1 km box and a 20 km box, xarray on the store vs numpy on the
# source tiles. The numbers behind [chunks] in bands.toml (see docs/performance.md).
#
# Prints the stored size and the build time (all threads) of each shape too.
#
# Usage: scripts/chunks.sh [WORK_DIR]   (default bench-out/; needs the test venv: scripts/setup.sh --tests)
# Env: BENCH_SMALL=1 for a short run on 12 tiles (as scripts/bench.sh BENCH_SMALL=1).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-bench-out}
[ -x .venv/bin/python ] || scripts/setup.sh --tests
cargo build --release --locked --quiet
bin=$(realpath "${CARGO_TARGET_DIR:-target}")/release/mosaic
input="$work/in-70-80"
if [ "${BENCH_SMALL:-0}" = 1 ]; then bbox=10.0,70.0,10.6,70.2; point="70.1 10.3"; else bbox=10.0,70.0,11.0,70.4; point="70.2 10.5"; fi
[ -d "$input" ] || "$bin" synth --out "$input" --bbox "$bbox" --years 2024 --land-fraction 1 --seed 3 >/dev/null

for shape in "39 64" "117 128" "234 256" "390 404"; do
  set -- $shape
  cfg="$work/chunks.toml"
  awk -v r="$1" -v c="$2" '/^\[chunks\]/{print; print "rows = " r; print "target_cols = " c; skip=1; next} /^\[/{skip=0} !skip' bands.toml > "$cfg"
  store="$work/chunks-$1x$2.zarr"
  rm -rf "$store"
  start=$(date +%s.%N)
  "$bin" build --input "$input" --out "$store" --band 70-80 --bands "$cfg" > /dev/null
  secs=$(echo "$(date +%s.%N) - $start" | bc -l | cut -c1-5)
  echo "== inner chunk $1 rows x $2 columns (target) x 128 channels; stored $(du -sb "$store/70-80" | cut -f1) bytes (input $(du -sb "$input" | cut -f1)); build ${secs} s"
  .venv/bin/python scripts/bench_read.py "$store" 70-80 "$input" $point
  rm -rf "$store" "$cfg"
done
