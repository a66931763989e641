"""Input at a year's scale (issue 15): prints
1. `mosaic plan` of a 1.8-million-row manifest (one synthetic year, real TESSERA tile sizes from
   the georeference rule computed here with pyproj): wall seconds and peak memory;
2. `mosaic plan` of a 20,000-tile local tree (sparse files: real headers and sizes, no data):
   wall seconds;
3. the build's input MB/s reading the same real-size tiles from S3 (SeaweedFS on loopback) and
   from the local tree.

Usage: .venv/bin/python scripts/bench_input.py [WORK_DIR] [--skip-s3]
Needs the release binary (cargo build --release) and the test venv (pyarrow, pyproj, s3fs).
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyproj import Transformer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "python"))
MOSAIC = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release" / "mosaic"
HEADER = 128  # numpy's header for these shapes
# The tiles read from S3 and from the local tree: 8 x 4 cells across 70N (1.8 GB), enough that
# each band runs for several seconds.
S3_BBOX = "10.0,69.8,10.8,70.2"


def geometry(lon_c, lat_c):
    """(H, W) of every cell centre by the georeference rule (DESIGN.md), vectorised per zone."""
    zone = np.floor((lon_c + 180) / 6).astype(int) + 1
    h = np.zeros(len(lon_c), dtype=np.int64)
    w = np.zeros(len(lon_c), dtype=np.int64)
    for south in (False, True):
        for z in np.unique(zone):
            m = (zone == z) & ((lat_c < 0) == south)
            if not m.any():
                continue
            t = Transformer.from_crs(4326, (32700 if south else 32600) + int(z), always_xy=True)
            lo, la = lon_c[m], lat_c[m]
            ul = t.transform(lo - 0.05, la + 0.05)
            ur = t.transform(lo + 0.05, la + 0.05)
            ll = t.transform(lo - 0.05, la - 0.05)
            lr = t.transform(lo + 0.05, la - 0.05)
            oe = np.minimum(ul[0], ll[0])
            on = np.maximum(ul[1], ur[1])
            h[m] = np.round((on - np.minimum(ll[1], lr[1])) / 10).astype(np.int64)
            w[m] = np.round((np.maximum(ur[0], lr[0]) - oe) / 10).astype(np.int64)
    return h, w


def land_cells(n):
    """About n cell centres between 56S and 80N, spread like land (a fixed pseudo-random pick)."""
    lon_i, lat_i = np.meshgrid(np.arange(3600), np.arange(340, 1700))
    lon_i, lat_i = lon_i.ravel(), lat_i.ravel()
    keep = np.random.default_rng(7).random(lon_i.size) < n / lon_i.size
    lon_i, lat_i = lon_i[keep][:n], lat_i[keep][:n]
    return np.round(-180 + lon_i * 0.1 + 0.05, 2), np.round(-90 + lat_i * 0.1 + 0.05, 2)


def name(lon, lat):
    return f"grid_{lon:.2f}_{lat:.2f}"


def timed(args):
    """Run mosaic under /usr/bin/time-like accounting: (seconds, peak RSS MB, stdout)."""
    t = time.perf_counter()
    proc = subprocess.run(["/usr/bin/env", "python3", "-c", (
        "import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(p.stdout); print(p.stderr[-2000:], file=sys.stderr); "
        "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(p.returncode)"),
        str(MOSAIC), *map(str, args)], capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        raise SystemExit(f"mosaic {args} failed:\n{proc.stderr}")
    peak = int(re.search(r"PEAK_KB (\d+)", proc.stdout).group(1)) / 1024
    return seconds, peak, proc.stdout


def manifest_plan(work):
    n = 1_800_000
    lon, lat = land_cells(n)
    h, w = geometry(lon, lat)
    names = [name(a, b) for a, b in zip(lon, lat)]
    table = pa.table({
        "version": ["1.1"] * len(names), "variant": ["cambridge"] * len(names),
        "lon": lon, "lat": lat, "year": np.full(len(names), 2024, dtype=np.int32),
        "grid_size": HEADER + h * w * 128, "scales_size": HEADER + h * w * 4,
        "grid_path": [f"2024/{x}/{x}.npy" for x in names],
        "scales_path": [f"2024/{x}/{x}_scales.npy" for x in names],
        "grid_mtime": np.zeros(len(names), dtype=np.int64), "scales_mtime": np.zeros(len(names), dtype=np.int64),
    })
    path = work / "year" / "manifest.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    seconds, peak, out = timed(["plan", "--input", path.parent])
    tiles = re.search(r"(\d+) tiles in", out).group(1)
    print(f"1. plan of a {len(names):,}-row manifest ({path.stat().st_size / 1e6:.0f} MB): "
          f"{seconds:.1f} s wall, peak RSS {peak:.0f} MB, {tiles} tiles catalogued "
          f"(targets: < 60 s, < 2 GB)")


def sparse_tree_plan(work):
    n = 20_000
    lon, lat = land_cells(n)
    h, w = geometry(lon, lat)
    root = work / "tree20k"
    if not (root / "2024").exists():
        for a, b, hh, ww in zip(lon, lat, h, w):
            x = name(a, b)
            d = root / "2024" / x
            d.mkdir(parents=True, exist_ok=True)
            for file, shape, dtype in ((f"{x}.npy", (hh, ww, 128), "|i1"), (f"{x}_scales.npy", (hh, ww), "<f4")):
                header = np.lib.format.header_data_from_array_1_0(np.empty((0,), dtype=dtype))
                header["shape"] = tuple(int(v) for v in shape)
                with open(d / file, "wb") as f:
                    np.lib.format.write_array_header_1_0(f, header)
                    f.truncate(f.tell() + int(np.prod(shape)) * np.dtype(dtype).itemsize)
    subprocess.run(["sync"])
    seconds, peak, out = timed(["plan", "--input", root])
    tiles = re.search(r"(\d+) tiles in", out).group(1)
    print(f"2. plan of a {n:,}-tile local tree (sparse files, warm cache): {seconds:.1f} s wall, "
          f"peak RSS {peak:.0f} MB, {tiles} tiles catalogued (target: < 10 s)")


def s3_vs_local(work):
    from seaweed import seaweed
    root = work / "real"
    if not root.exists():
        subprocess.run([MOSAIC, "synth", "--out", root, "--bbox", S3_BBOX, "--years", "2024",
                        "--land-fraction", "1.0"], check=True, capture_output=True)
        subprocess.run([MOSAIC, "manifest", "--input", root], check=True, capture_output=True)
    with seaweed(work / "seaweed") as s3:
        fs = s3["fs"]
        for p in sorted(root.rglob("*")):
            if p.is_file():
                fs.put_file(str(p), f"mosaic/real/{p.relative_to(root)}")
        env = dict(os.environ, **s3["env"])
        # Alternating rounds, local then S3, for the default build and one without overviews
        # (less work per byte, so the input's share of the time is larger).
        for extra in ([], ["--no-overviews"]):
            rates = {"local": [], "s3": []}
            for label, source in (("local", root), ("s3", "s3://mosaic/real")) * 2:
                out = work / f"out-{label}.zarr"
                subprocess.run(["rm", "-rf", out])
                proc = subprocess.run([MOSAIC, "build", "--input", source, "--out", out, "--band", "60-70,70-80",
                                       *extra], capture_output=True, text=True, env=env, cwd=REPO)
                got = [float(x) for x in re.findall(r"\(([\d.]+) MB/s", proc.stdout)]
                rates[label] += got
                print(f"3. build {' '.join(extra) or '(default)'} from {label:5}: "
                      f"{', '.join(f'{r:.0f}' for r in got)} MB/s in (bands 60-70, 70-80)")
            ratios = sorted(s / l for s, l in zip(rates["s3"], rates["local"]))
            print(f"   S3 / local, pairwise: {', '.join(f'{r:.2f}' for r in ratios)}; median "
                  f"{ratios[len(ratios) // 2]:.2f} (target >= 0.7)")


def main():
    work = Path(next((a for a in sys.argv[1:] if not a.startswith("--")), "/tmp/mosaic-bench-input"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} cores; binary {MOSAIC}")
    manifest_plan(work)
    sparse_tree_plan(work)
    if "--skip-s3" not in sys.argv:
        s3_vs_local(work)


if __name__ == "__main__":
    main()
