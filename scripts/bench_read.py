"""Read benchmark: xarray on a built band vs numpy on the source tiles (how users read TESSERA
today), for (a) one pixel's 128 channels over all years, (b) a 1 km box, (c) a 20 km box.

Usage: .venv/bin/python scripts/bench_read.py STORE BAND ROOT LAT LON
(LAT, LON: a point with data; boxes are centred on it). Caches are dropped before each timed
read when running as root.
"""

import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr
from pyproj import Transformer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
import tessera_ref as ref  # noqa: E402


def drop_caches():
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return "cold"
    except OSError:
        return "warm"


def timed(fn):
    """(cold seconds, warm seconds, cache state, result): once after dropping caches, then again."""
    cache = drop_caches()
    t = time.perf_counter()
    out = fn()
    cold = time.perf_counter() - t
    t = time.perf_counter()
    fn()
    return cold, time.perf_counter() - t, cache, out


def tiles_in_box(lat0, lat1, lon0, lon1):
    names = []
    for j in range(math.floor((lat0 + 90) * 10), math.floor((lat1 + 90) * 10) + 1):
        for i in range(math.floor((lon0 + 180) * 10), math.floor((lon1 + 180) * 10) + 1):
            names.append(ref.cell_name(i, j))
    return names


def numpy_box(root, years, lat0, lat1, lon0, lon1, whole_tiles):
    """Read the source pixels of a box from the tiles: whole tiles (np.load) or windows (mmap)."""
    total = 0
    for year in years:
        for name in tiles_in_box(lat0, lat1, lon0, lon1):
            path = Path(root) / str(year) / name / f"{name}.npy"
            if not path.exists():
                continue
            if whole_tiles:
                arr = np.load(path)
                np.load(path.with_name(f"{name}_scales.npy"))
            else:
                arr = np.load(path, mmap_mode="r")
            epsg, oe, on, h, w = ref.tile_geometry(name)
            t = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
            xs, ys = t.transform([lon0, lon1, lon0, lon1], [lat0, lat0, lat1, lat1])
            c0, c1 = max(0, int((min(xs) - oe) // 10)), min(w, int((max(xs) - oe) // 10) + 1)
            r0, r1 = max(0, int((on - max(ys)) // 10)), min(h, int((on - min(ys)) // 10) + 1)
            total += np.array(arr[r0:r1, c0:c1]).size  # a copy: the pages are really read
    return total


def main():
    store, band, root, lat, lon = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
    t_open, _, cache, ds = timed(lambda: xr.open_zarr(store, group=band, chunks=None))
    years = [int(y) for y in ds.year.values]
    print(f"open_zarr {band}: {t_open * 1000:.0f} ms ({cache}); times below are {cache} / then warm, in ms")
    print(f"{'read':<26} {'xarray (store)':>18} {'numpy mmap (tiles)':>20} {'numpy np.load (tiles)':>22}")

    def ms(cold, warm):
        return f"{cold * 1000:.1f} / {warm * 1000:.1f}"

    def xr_pixel():
        return ds.embeddings.sel(lat=lat, lon=lon, method="nearest").values

    def np_pixel():
        out = []
        for y in years:
            name = ref.cell_name(*ref.cell_of(lon, lat))
            arr = np.load(Path(root) / str(y) / name / f"{name}.npy", mmap_mode="r")
            r, c = ref.source_pixels(name, np.array([lon]), np.array([lat]))
            out.append(np.array(arr[r[0], c[0]]))
        return np.stack(out)

    tx, wx, _, a = timed(xr_pixel)
    tn, wn, _, b = timed(np_pixel)
    assert a.shape == b.shape
    print(f"{'(a) 1 pixel x 128 x years':<26} {ms(tx, wx):>18} {ms(tn, wn):>20} {'-':>22}")

    for label, km in [("(b) 1 km box x years", 1.0), ("(c) 20 km box x years", 20.0)]:
        dlat = km / 111.2 / 2
        dlon = km / (111.3 * math.cos(math.radians(lat))) / 2
        box = dict(lat=slice(lat - dlat, lat + dlat), lon=slice(lon - dlon, lon + dlon))
        edges = (lat - dlat, lat + dlat, lon - dlon, lon + dlon)
        tx, wx, _, arr = timed(lambda: ds.embeddings.sel(**box).values)
        tm, wm, _, _ = timed(lambda: numpy_box(root, years, *edges, False))
        tn, wn, _, _ = timed(lambda: numpy_box(root, years, *edges, True))
        print(f"{label:<26} {ms(tx, wx):>18} {ms(tm, wm):>20} {ms(tn, wn):>22}   {arr.shape}")


if __name__ == "__main__":
    main()
