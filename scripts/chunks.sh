#!/usr/bin/env bash
# Inner chunk shape tuning: build band 70-80 (from scripts/bench.sh's real-size input) with
# several inner chunk shapes and run the read benchmark (scripts/bench_read.py) on each:
# one pixel over all years, a 1 km box and a 20 km box, xarray on the store vs numpy on the
# source tiles. The numbers behind [chunks] in bands.toml (see docs/performance.md).
#
# Usage: scripts/chunks.sh [WORK_DIR]   (default bench-out/; needs the test venv: scripts/setup.sh --tests)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-bench-out}
[ -x .venv/bin/python ] || scripts/setup.sh --tests
cargo build --release --locked --quiet
bin=$(realpath "${CARGO_TARGET_DIR:-target}")/release/mosaic
input="$work/in-70-80"
[ -d "$input" ] || "$bin" synth --out "$input" --bbox 10.0,70.0,11.0,70.4 --years 2024 --land-fraction 1 --seed 3 >/dev/null

for shape in "39 64" "117 128" "390 404"; do
  set -- $shape
  cfg="$work/chunks.toml"
  awk -v r="$1" -v c="$2" '/^\[chunks\]/{print; print "rows = " r; print "target_cols = " c; skip=1; next} /^\[/{skip=0} !skip' bands.toml > "$cfg"
  store="$work/chunks-$1x$2.zarr"
  rm -rf "$store"
  "$bin" build --input "$input" --out "$store" --band 70-80 --bands "$cfg" > /dev/null
  echo "== inner chunk $1 rows x $2 columns (target) x 128 channels; stored $(du -sh "$store" | cut -f1)"
  .venv/bin/python scripts/bench_read.py "$store" 70-80 "$input" 70.2 10.5
  rm -rf "$store" "$cfg"
done
