#!/usr/bin/env bash
# The main job on a small sample, from a fresh clone: synthesise real-size TESSERA tiles
# (6 cells around 70N, 2 years, with landmasks), plan them into bands, build the two bands
# they fall in, and open the result with xarray. Usage: scripts/demo.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-sample}
scripts/setup.sh
cargo build --release --locked --quiet
bin=${CARGO_TARGET_DIR:-target}/release/mosaic
set -x
rm -rf "$out"
$bin synth --out "$out/tessera" --bbox 10.0,69.9,10.3,70.1 --years 2023,2024 --landmasks --land-fraction 0.8
$bin plan --input "$out/tessera" --json "$out/plan.json"
$bin build --input "$out/tessera" --out "$out/store.zarr" --band 60-70,70-80
$bin verify --input "$out/tessera" --store "$out/store.zarr" --band 70-80 --full
$bin query --store "$out/store.zarr" --lat 69.95:70.05 --lon 10.0:10.1 --year 2024 --dequantize -o "$out/box.tif"
$bin preview --store "$out/store.zarr" --bbox 10.0,69.9,10.3,70.1 --year 2024 -o "$out/preview-box.png"
$bin preview --store "$out/store.zarr" --band 70-80 --year 2024 -o "$out/preview-70-80.png"
$bin preview --store "$out/store.zarr" --band 70-80 --coverage -o "$out/coverage-70-80.png"
set +x
cat <<PY > "$out/open.py"
import xarray as xr
ds = xr.open_zarr("$out/store.zarr", group="70-80", chunks=None)
region = ds.sel(year=2024, lat=slice(70.0, 70.1), lon=slice(10.0, 10.3))
print(region)
values = region.embeddings * region.scales   # dequantised, NaN where no data
print("valid pixels:", int(values.notnull().any("channel").sum()), "of", region.lat.size * region.lon.size)
PY
echo
echo "Open the result with xarray ($out/open.py):"
sed 's/^/    /' "$out/open.py"
echo
.venv/bin/python "$out/open.py"
