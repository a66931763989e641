"""Read benchmark: xarray on a built band vs numpy on the source tiles (how users read TESSERA
today), for (a) one pixel's 128 channels over all years, (b) a 1 km box, (c) a 20 km box.

Usage: .venv/bin/python scripts/bench_read.py STORE BAND ROOT LAT LON
(LAT, LON: a point with data; boxes are centred on it). Caches are dropped before each timed
read when running as root.

Layout matrix (issue 25): .venv/bin/python scripts/bench_read.py matrix WORK [NAME ...]
synthesises 6 landscape tiles at 70N into WORK/in (once), then for each inner chunk shape,
chunk order and zstd level (or those whose name contains a NAME) builds band 70-80 with
$MOSAIC_BIN (default target/release/mosaic), and prints the build time, the stored bytes and,
per reader (xarray + zarr-python, xarray + the zarrs codec pipeline, tensorstore: the last two
when importable, e.g. `pip install zarrs tensorstore`), the warm time and bytes read of a
pixel, 3,000 random points, a 1 km and a 10 km box, every reader's values checked equal.

The tools against the readers (issue 25): .venv/bin/python scripts/bench_read.py tools WORK [ROUNDS]
synthesises 12 landscape tiles x 2 years at 70-70.3N, 10-10.4E into WORK/in-tools (once),
builds band 70-80 with $MOSAIC_BIN, and times in alternating rounds (ROUNDS, default 3; warm
cache; then one cold round when run as root): `mosaic sample` against xarray's vectorised
nearest (3,000 and 100,000 random points, 2 years), `mosaic query` (.npy, GeoTIFF) against
tensorstore on the same box, then opening the band and sampling over S3 (SeaweedFS on
loopback). Values are checked equal. Needs tensorstore and zarrs importable for those columns.
"""

import math
import os
import shutil
import subprocess
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


# --- The layout matrix: inner chunk shape x chunk order x zstd level ---------------------------

VARIANTS = [  # name, chunk rows, target cols, order, zstd level
    ("117x128 pixel z3 (old default)", 117, 128, "pixel_major", 3),
    ("117x128 pixel z1", 117, 128, "pixel_major", 1),
    ("117x128 planar z3", 117, 128, "channel_planar", 3),
    ("65x64 pixel z3", 65, 64, "pixel_major", 3),
    ("65x64 planar z3", 65, 64, "channel_planar", 3),
    ("30x32 pixel z3", 30, 32, "pixel_major", 3),
    ("30x32 pixel z1", 30, 32, "pixel_major", 1),
    ("30x32 planar z3", 30, 32, "channel_planar", 3),
    ("30x32 planar z1", 30, 32, "channel_planar", 1),
    ("39x40 pixel z3 (new default)", 39, 40, "pixel_major", 3),
    ("39x40 planar z3", 39, 40, "channel_planar", 3),
    ("45x48 pixel z3", 45, 48, "pixel_major", 3),
    ("45x48 pixel z1", 45, 48, "pixel_major", 1),
    ("45x48 planar z3", 45, 48, "channel_planar", 3),
    ("45x48 planar z1", 45, 48, "channel_planar", 1),
]
TILES = [f"grid_{lon}_{lat}" for lat in ("70.05", "70.15") for lon in ("10.05", "10.15", "10.25")]


def bands_toml(rows, cols, order, level):
    base = (Path(__file__).resolve().parents[1] / "bands.toml").read_text()
    head, _, bands = base.partition("[[band]]")
    head = head.split("[chunks]")[0]
    # Pixel-major is the default when `order` is absent (also for binaries without the setting).
    order_line = "" if order == "pixel_major" else f"order = \"{order}\"\n"
    return (f"{head}[chunks]\nrows = {rows}\ntarget_cols = {cols}\n{order_line}\n"
            f"[compression]\ncodec = \"zstd\"\nlevel = {level}\n\n[[band]]{bands}")


def shard_chunks(path, n_chunks):
    """(offset, nbytes) of every inner chunk of a shard, from its index (at the end, + crc32c)."""
    with open(path, "rb") as f:
        f.seek(-(n_chunks * 16 + 4), 2)
        return np.frombuffer(f.read(n_chunks * 16), "<u8").reshape(-1, 2)


def bytes_needed(store, band, rows, cols):
    """Bytes a reader must fetch for pixel rows/cols ranges of year 0: each shard's index and
    the inner chunks under the box, embeddings and scales (from the stored shard indexes)."""
    import json
    layout = json.loads((Path(store) / band / "zarr.json").read_text())["attributes"]["tessera_mosaic"]["grid"]
    R, C, cr, cc = layout["rows_per_cell"], layout["cols_per_cell"], layout["chunk_rows"], layout["chunk_cols"]
    ni, nj = R // cr, C // cc
    total = 0
    for array in ("embeddings", "scales"):
        for ci in range(rows[0] // cr, (rows[1] - 1) // cr + 1):
            for cj in range(cols[0] // cc, (cols[1] - 1) // cc + 1):
                shard = Path(store) / band / array / "c" / "0" / str(ci // ni) / str(cj // nj)
                if array == "embeddings":
                    shard = shard / "0"
                if not shard.exists():
                    continue
                total += shard_chunks(shard, ni * nj)[(ci % ni) * nj + cj % nj, 1]
        # one index per shard touched
        shards = {(ci * cr // R, cj * cc // C) for ci in range(rows[0] // cr, (rows[1] - 1) // cr + 1)
                  for cj in range(cols[0] // cc, (cols[1] - 1) // cc + 1)}
        total += len(shards) * (ni * nj * 16 + 4)
    return int(total)


def rchar():
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def measure(fn, repeat=3):
    """(best warm seconds, bytes read by the process in the first call, result)."""
    before = rchar()
    out = fn()
    read = rchar() - before
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best, read, out


def read_figures(store, band, lat, lon, points):
    """Warm read times (ms) and bytes read, per reader, for a pixel, a point sample, a 1 km and a
    10 km box of year 0; every reader's values are checked against xarray's."""
    import zarr
    out = {}
    boxes = {}
    for km in (1.0, 10.0):
        dlat = km / 111.2 / 2
        dlon = km / (111.3 * math.cos(math.radians(lat))) / 2
        boxes[km] = dict(lat=slice(lat - dlat, lat + dlat), lon=slice(lon - dlon, lon + dlon))
    readers = ["zarr-python", "zarrs pipeline", "tensorstore"]
    ref_values = {}
    for reader in readers:
        if reader == "tensorstore":
            try:
                import tensorstore as ts
            except ImportError:
                out[reader] = None
                continue
        pipeline = "zarrs.ZarrsCodecPipeline" if reader == "zarrs pipeline" else "zarr.core.codec_pipeline.BatchedCodecPipeline"
        if reader == "zarrs pipeline":
            try:
                import zarrs  # noqa: F401
            except ImportError:
                out[reader] = None
                continue
        zarr.config.set({"codec_pipeline.path": pipeline})
        ds = xr.open_zarr(store, group=band, chunks=None)
        lat_v, lon_v = ds.lat.values, ds.lon.values
        r = {}
        if reader == "tensorstore":
            emb = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": f"{store}/{band}/embeddings"}}).result()
            sca = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": f"{store}/{band}/scales"}}).result()

            def near(v, axis):
                i = np.clip(np.searchsorted(axis, v), 1, len(axis) - 1)
                return np.where(np.abs(axis[i - 1] - v) < np.abs(axis[i] - v), i - 1, i)  # ties: the later, as pandas

            def box(sel):
                r0, r1 = np.searchsorted(lat_v, [sel["lat"].start, sel["lat"].stop])
                c0, c1 = np.searchsorted(lon_v, [sel["lon"].start, sel["lon"].stop])
                return emb[0, r0:r1, c0:c1, :].read().result(), sca[0, r0:r1, c0:c1].read().result()

            ri, ci = near(np.array([lat]), lat_v)[0], near(np.array([lon]), lon_v)[0]
            pr, pc = near(points[0], lat_v), near(points[1], lon_v)
            fns = {
                "pixel": lambda: emb[0, ri, ci, :].read().result(),
                "points": lambda: (emb.vindex[0, pr, pc, :].read().result(), sca.vindex[0, pr, pc].read().result()),
                "1 km": lambda: box(boxes[1.0]),
                "10 km": lambda: box(boxes[10.0]),
            }
        else:
            e, s = ds.embeddings.isel(year=0), ds.scales.isel(year=0)
            plat, plon = xr.DataArray(points[0], dims="p"), xr.DataArray(points[1], dims="p")
            fns = {
                "pixel": lambda: e.sel(lat=lat, lon=lon, method="nearest").values,
                "points": lambda: (e.sel(lat=plat, lon=plon, method="nearest").values,
                                   s.sel(lat=plat, lon=plon, method="nearest").values),
                "1 km": lambda: (e.sel(**boxes[1.0]).values, s.sel(**boxes[1.0]).values),
                "10 km": lambda: (e.sel(**boxes[10.0]).values, s.sel(**boxes[10.0]).values),
            }
        for name, fn in fns.items():
            t, nbytes, values = measure(fn, repeat=1 if name in ("points", "10 km") else 3)
            first = values[0] if isinstance(values, tuple) else values
            if name in ref_values:
                np.testing.assert_array_equal(np.asarray(first), ref_values[name], err_msg=f"{reader} {name}")
            else:
                ref_values[name] = np.asarray(first)
            r[name] = (t, nbytes)
        out[reader] = r
    zarr.config.set({"codec_pipeline.path": "zarr.core.codec_pipeline.BatchedCodecPipeline"})
    # What the layout itself costs: shard indexes and inner chunks under each read.
    ds = xr.open_zarr(store, group=band, chunks=None)
    lat_v, lon_v = ds.lat.values, ds.lon.values
    need = {}
    ri, ci = int(np.abs(lat_v - lat).argmin()), int(np.abs(lon_v - lon).argmin())
    need["pixel"] = bytes_needed(store, band, (ri, ri + 1), (ci, ci + 1))
    for km in (1.0, 10.0):
        sel = boxes[km]
        r0, r1 = np.searchsorted(lat_v, [sel["lat"].start, sel["lat"].stop])
        c0, c1 = np.searchsorted(lon_v, [sel["lon"].start, sel["lon"].stop])
        need[f"{km:g} km"] = bytes_needed(store, band, (r0, r1), (c0, c1))
    return out, need


def stored_bytes(store, band):
    return sum(f.stat().st_size for a in ("embeddings", "scales")
               for f in (Path(store) / band / a / "c").rglob("*") if f.is_file())


def matrix(work, mosaic, only=None):
    work = Path(work)
    root = work / "in"
    if not root.exists():
        subprocess.run([mosaic, "synth", "--out", str(root), "--tiles", ",".join(TILES), "--years", "2024"], check=True)
    band, lat, lon = "70-80", 70.10013, 10.20017  # off pixel edges
    rng = np.random.default_rng(7)
    points = (rng.uniform(70.0 + 0.01, 70.2 - 0.01, 3000), rng.uniform(10.0 + 0.01, 10.3 - 0.01, 3000))
    rows = []
    for name, cr, cc, order, level in VARIANTS:
        if only and not any(o in name for o in only):
            continue
        tag = f"{cr}x{cc}-{order}-z{level}"
        store = work / f"store-{tag}"
        toml = work / f"bands-{tag}.toml"
        toml.write_text(bands_toml(cr, cc, order, level))
        shutil.rmtree(store, ignore_errors=True)
        cache = drop_caches()
        t = time.perf_counter()
        subprocess.run([mosaic, "build", "--input", str(root), "--out", str(store), "--bands", str(toml),
                        "--band", band], check=True, stdout=subprocess.DEVNULL)
        build = time.perf_counter() - t
        figures, need = read_figures(str(store), band, lat, lon, points)
        rows.append((name, build, cache, stored_bytes(store, band), figures, need))
        print_row(rows[-1], header=len(rows) == 1)
        shutil.rmtree(store)


def print_row(row, header):
    name, build, cache, stored, figures, need = row
    reads = ["pixel", "points", "1 km", "10 km"]
    if header:
        print(f"# band 70-80, 6 synthetic landscape tiles (1 year); build {cache} cache, reads warm; "
              "ms (best of 3; points and 10 km: 1 run) / MB read by the process (rchar, first call); need = MB of "
              "shard indexes + inner chunks under the read")
        print(f"{'variant':<32} {'build s':>7} {'stored MB':>9} {'reader':<15} " + " ".join(f"{r:>15}" for r in reads))
    first = True
    for reader, r in figures.items():
        lead = f"{name:<32} {build:>7.2f} {stored / 1e6:>9.1f}" if first else " " * 50
        first = False
        if r is None:
            print(f"{lead} {reader:<15} not installed")
            continue
        print(f"{lead} {reader:<15} " + " ".join(f"{r[k][0] * 1000:>7.1f}/{r[k][1] / 1e6:>7.2f}" for k in reads))
    print(" " * 50 + f" {'need MB':<15} " + " ".join(
        f"{'':>7} {need[k] / 1e6:>7.3f}" if k in need else f"{'-':>15}" for k in reads))
    sys.stdout.flush()


# --- The tools against the readers ------------------------------------------------------------

TOOLS_BOX = (70.0, 70.3, 10.0, 10.4)  # 12 cells


def write_points(path, n, seed):
    rng = np.random.default_rng(seed)
    lat = rng.uniform(TOOLS_BOX[0], TOOLS_BOX[1], n)
    lon = rng.uniform(TOOLS_BOX[2], TOOLS_BOX[3], n)
    with open(path, "w") as f:
        f.write("lon,lat\n")
        for a, b in zip(lon, lat):
            f.write(f"{float(a)!r},{float(b)!r}\n")
    return lat, lon


def alternate(rounds, a, b, cold):
    """Run a() and b() in alternating rounds (warm), then once each after dropping caches when
    `cold`; (a's times, b's times, a cold, b cold)."""
    ta, tb = [], []
    for _ in range(rounds):
        for fn, out in ((a, ta), (b, tb)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    ca = cb = None
    if cold:
        drop_caches()
        t = time.perf_counter()
        a()
        ca = time.perf_counter() - t
        drop_caches()
        t = time.perf_counter()
        b()
        cb = time.perf_counter() - t
    return ta, tb, ca, cb


def report(label, rounds, names):
    ta, tb, ca, cb = rounds
    ratios = sorted(y / x for x, y in zip(ta, tb))
    med = lambda v: sorted(v)[len(v) // 2]
    cold = f"; cold {ca:.2f} s vs {cb:.2f} s ({cb / ca:.1f}x)" if ca is not None else ""
    print(f"{label:<44} {names[0]} {med(ta):.3f} s, {names[1]} {med(tb):.3f} s (warm medians); "
          f"{names[1]}/{names[0]} per round {', '.join(f'{r:.2f}' for r in ratios)}{cold}")
    sys.stdout.flush()


def run_mosaic(mosaic, *args, env=None):
    subprocess.run([mosaic, *map(str, args)], check=True, stdout=subprocess.DEVNULL, env=env)


def tools(work, mosaic, rounds):
    import pandas as pd
    import zarr
    work = Path(work)
    root, store, band = work / "in-tools", work / "store-tools.zarr", "70-80"
    if not root.exists():
        box = f"{TOOLS_BOX[2]},{TOOLS_BOX[0]},{TOOLS_BOX[3]},{TOOLS_BOX[1]}"
        subprocess.run([mosaic, "synth", "--out", str(root), "--bbox", box, "--years", "2023,2024"],
                       check=True, stdout=subprocess.DEVNULL)
    shutil.rmtree(store, ignore_errors=True)
    run_mosaic(mosaic, "build", "--input", root, "--out", store, "--band", band)
    cold = drop_caches() == "cold"
    print(f"# band {band}, 12 synthetic landscape tiles x 2 years ({sum(f.stat().st_size for f in root.rglob('*.npy')) / 1e9:.2f} GB), "
          f"store {stored_bytes(store, band) / 1e6:.0f} MB; {os.cpu_count()} CPUs, every reader on all of them; "
          f"{rounds} alternating warm rounds" + (", then one cold round each" if cold else ""))
    ds = xr.open_zarr(str(store), group=band, chunks=None)

    # Points: mosaic sample against xarray's vectorised nearest selection, both years.
    for name, n in (("3,000 sparse points", 3000), ("100,000 dense points", 100_000)):
        csv = work / f"points-{n}.csv"
        lat, lon = write_points(csv, n, seed=n)
        out = work / f"sample-{n}.parquet"
        plat, plon = xr.DataArray(lat, dims="p"), xr.DataArray(lon, dims="p")

        def xarray_points():
            return (ds.embeddings.sel(lat=plat, lon=plon, method="nearest").values,
                    ds.scales.sel(lat=plat, lon=plon, method="nearest").values)

        result = report_pair(f"sample, {name} x 2 years", rounds, cold,
                             lambda: run_mosaic(mosaic, "sample", "--store", store, "--points", csv, "-o", out),
                             xarray_points, ("mosaic sample", "xarray .sel"))
        e, _ = result
        table = pd.read_parquet(out)  # a row per (point, year), point-major
        valid = ~np.isnan(table.scale.to_numpy())
        got = np.stack(table.embedding[valid].to_numpy())
        np.testing.assert_array_equal(got, np.moveaxis(e, 0, 1).reshape(-1, 128)[valid])

    # Boxes: mosaic query against tensorstore on the same rows and columns.
    try:
        import tensorstore as ts
    except ImportError:
        ts = None
        print("tensorstore not importable: query rows skipped")
    lat_v, lon_v = ds.lat.values, ds.lon.values
    for km, years in ((10.0, None), (10.0, 2024), (1.0, None)):
        clat, clon = 70.15, 10.2
        dlat, dlon = km / 111.2 / 2, km / (111.3 * math.cos(math.radians(clat))) / 2
        lat0, lat1, lon0, lon1 = clat - dlat, clat + dlat, clon - dlon, clon + dlon
        r0, r1 = np.searchsorted(lat_v, lat0), np.searchsorted(lat_v, lat1, side="right")
        c0, c1 = np.searchsorted(lon_v, lon0), np.searchsorted(lon_v, lon1, side="right")
        y0, y1 = (0, 2) if years is None else (1, 2)
        for ext in ("npy", "tif") if years else ("npy",):
            out = work / f"query.{ext}"
            args = ["query", "--store", store, "--lat", f"{lat0}:{lat1}", "--lon", f"{lon0}:{lon1}", "-o", out]
            if years:
                args += ["--year", years]
            if ts is None:
                continue
            emb = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": f"{store}/{band}/embeddings"}}).result()
            sca = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": f"{store}/{band}/scales"}}).result()

            def tensorstore_box(save=True):
                e = emb[y0:y1, r0:r1, c0:c1, :].read().result()
                s = sca[y0:y1, r0:r1, c0:c1].read().result()
                if save:
                    np.save(work / "ts.npy", e)
                    np.save(work / "ts_scales.npy", s)
                return e

            label = f"query {km:g} km box x {y1 - y0} year{'s' if y1 - y0 > 1 else ''} -> .{ext}"
            report_pair(label, rounds, cold, lambda: run_mosaic(mosaic, *args), tensorstore_box,
                        ("mosaic query", "tensorstore read+np.save"))
            report_pair(label, rounds, cold, lambda: run_mosaic(mosaic, *args),
                        lambda: tensorstore_box(save=False), ("mosaic query", "tensorstore read"))
            if ext == "npy":
                np.testing.assert_array_equal(np.load(out), tensorstore_box(save=False))

    s3_figures(work, mosaic, store, band, rounds)


def report_pair(label, rounds, cold, a, b, names):
    result = b()
    report(label, alternate(rounds, a, b, cold), names)
    return result


def s3_figures(work, mosaic, store, band, rounds):
    """Open the band and sample points over S3 (SeaweedFS on loopback)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))
    try:
        from seaweed import seaweed
    except ImportError as e:
        print(f"S3 rows skipped: {e}")
        return
    with seaweed(work / "seaweed") as s3:
        fs = s3["fs"]
        fs.put(str(store), "mosaic/store.zarr", recursive=True)
        url = "s3://mosaic/store.zarr"
        fetched = {"bytes": 0, "requests": 0}
        cat = type(fs)._cat_file

        async def counting_cat(self, path, start=None, end=None, **kw):
            data = await cat(self, path, start=start, end=end, **kw)
            fetched["bytes"] += len(data)
            fetched["requests"] += 1
            return data

        type(fs)._cat_file = counting_cat
        times = []
        for _ in range(rounds):
            fetched.update(bytes=0, requests=0)
            t = time.perf_counter()
            ds = xr.open_zarr(url, group=band, storage_options=s3["storage_options"], chunks=None)
            times.append(time.perf_counter() - t)
        type(fs)._cat_file = cat
        print(f"{'open the band over S3 (xarray + s3fs)':<44} {sorted(times)[len(times) // 2]:.3f} s median of {rounds}; "
              f"{fetched['bytes'] / 1e6:.2f} MB in {fetched['requests']} requests; lon {ds.lon.size} values")
        env = dict(os.environ, **s3["env"])
        csv = work / "points-3000.csv"
        t = time.perf_counter()
        run_mosaic(mosaic, "sample", "--store", url, "--points", csv, "-o", work / "s3.parquet", env=env)
        remote = time.perf_counter() - t
        t = time.perf_counter()
        run_mosaic(mosaic, "sample", "--store", store, "--points", csv, "-o", work / "local.parquet")
        local = time.perf_counter() - t
        same = (work / "s3.parquet").read_bytes() == (work / "local.parquet").read_bytes()
        print(f"{'sample, 3,000 sparse points x 2 years, S3':<44} {remote:.2f} s (local {local:.2f} s); "
              f"output identical to the local one: {same}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "tools":
        tools(sys.argv[2], os.environ.get("MOSAIC_BIN", "target/release/mosaic"),
              int(sys.argv[3]) if len(sys.argv) > 3 else 3)
    elif len(sys.argv) > 1 and sys.argv[1] == "matrix":
        matrix(sys.argv[2], os.environ.get("MOSAIC_BIN", "target/release/mosaic"), sys.argv[3:])
    else:
        main()
