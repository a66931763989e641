#!/usr/bin/env python3
"""Benchmark `mosaic sample` against xarray's vectorised nearest selection of the same points.

Builds (once, in WORK) a synthetic store of 2 x 2 cells at 70N (band 70-80, one year, real tile
geometry, synthetic content), draws N random points over those cells, then times:
  - `mosaic sample --store STORE --points points.parquet -o out.parquet` (bytes read: its own
    count of bytes read from the store);
  - xarray: `ds.sel(lat=xr.DataArray(lat), lon=xr.DataArray(lon), method="nearest")` of
    `embeddings` and `scales`, loaded (bytes read: this process's rchar from /proc/self/io
    around the selection, i.e. bytes returned by read syscalls, page cache or not).
Usage: scripts/bench_sample.py [N] [WORK]   (MOSAIC_BIN selects the binary)
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

REPO = Path(__file__).resolve().parents[1]
MOSAIC = os.environ.get("MOSAIC_BIN", str(REPO / "target" / "release" / "mosaic"))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
WORK = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/bench_sample")
TILES = "grid_5.95_70.05,grid_6.05_70.05,grid_5.95_70.15,grid_6.05_70.15"


def run(*args):
    return subprocess.run([MOSAIC, *map(str, args)], check=True, capture_output=True, text=True, cwd=REPO)


def rchar():
    return int(re.search(r"rchar: (\d+)", Path("/proc/self/io").read_text()).group(1))


def main():
    WORK.mkdir(parents=True, exist_ok=True)
    store = WORK / "store.zarr"
    if not (store / "zarr.json").exists():
        run("synth", "--out", WORK / "tiles", "--tiles", TILES, "--years", "2024", "--landmasks", "--seed", "5")
        run("build", "--input", WORK / "tiles", "--out", store, "--band", "70-80")
    rng = np.random.default_rng(1)
    pts = pd.DataFrame({"id": np.arange(N), "lon": rng.uniform(5.9, 6.1, N), "lat": rng.uniform(70.0, 70.2, N)})
    src = WORK / "points.parquet"
    pts.to_parquet(src, index=False)

    t = time.perf_counter()
    proc = run("sample", "--store", store, "--points", src, "-o", WORK / "out.parquet")
    mosaic_s = time.perf_counter() - t
    print(f"mosaic sample: {mosaic_s:.2f} s wall; {proc.stdout.splitlines()[0]}")

    ds = xr.open_zarr(store, group="70-80", chunks=None)
    before, t = rchar(), time.perf_counter()
    sel = ds[["embeddings", "scales"]].sel(
        lat=xr.DataArray(pts.lat.values, dims="p"), lon=xr.DataArray(pts.lon.values, dims="p"), method="nearest"
    ).load()
    xr_s, xr_bytes = time.perf_counter() - t, rchar() - before
    print(f"xarray vectorised nearest: {xr_s:.2f} s, {xr_bytes / 1e6:.1f} MB read (rchar); {sel.embeddings.shape}")

    out = pd.read_parquet(WORK / "out.parquet")
    scales = sel.scales.values[0]
    assert np.array_equal(np.isnan(out.scale.values), np.isnan(scales))
    ok = ~np.isnan(scales)
    assert np.array_equal(np.stack(out.embedding[ok]), sel.embeddings.values[0][ok])
    print(f"same values: {ok.sum()} points with data, {(~ok).sum()} on no data")


if __name__ == "__main__":
    main()
