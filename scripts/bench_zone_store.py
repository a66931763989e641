"""Read cost of the zone-store input at the published chunking (256 x 256 inner chunks in
2048 x 2048 shards): writes a zone store of one group (32N, one year) over a block of cells with
tests/python/zone_store.py (synthetic content), builds its band with the chunk cache and without,
and prints the read amplification (bytes fetched / distinct bytes fetched) and the time of each.

    .venv/bin/python scripts/bench_zone_store.py [--lon 9.05 --lat 45.05 --nx 3 --ny 2] [--dir D]
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "python"))
from zone_store import write_zone_store  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lon", type=float, default=9.05)
    p.add_argument("--lat", type=float, default=45.05)
    p.add_argument("--nx", type=int, default=3)
    p.add_argument("--ny", type=int, default=2)
    p.add_argument("--dir", type=Path)
    p.add_argument("--mosaic", type=Path, default=REPO / "target" / "release" / "mosaic")
    a = p.parse_args()
    d = a.dir or Path(tempfile.mkdtemp(prefix="zone-bench-"))
    root = d / "zones"
    cells = [(round(a.lon + 0.1 * i, 2), round(a.lat + 0.1 * j, 2))
             for i in range(a.nx) for j in range(a.ny)]
    zone = int((a.lon + 180) // 6) + 1
    group = f"{zone:02d}{'N' if a.lat > 0 else 'S'}"
    if not root.exists():
        t = time.time()
        write_zone_store(root, {group: {"complete": [2024], "written": [2024]}}, cells,
                         chunk=256, shard=2048)
        print(f"wrote {root} ({len(cells)} cells, group {group}) in {time.time() - t:.0f} s")
    band = f"{int(a.lat // 10 * 10)}-{int(a.lat // 10 * 10 + 10)}"
    for cache in ["2048", "0"]:
        out = d / f"out-{cache}.zarr"
        subprocess.run(["rm", "-rf", str(out)], check=True)
        t = time.time()
        proc = subprocess.run([str(a.mosaic), "build", "--input", str(root), "--out", str(out),
                               "--band", band, "--no-overviews", "--zone-cache-mb", cache],
                              capture_output=True, text=True, check=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("band")]
        print(f"--zone-cache-mb {cache}: {time.time() - t:.1f} s")
        for line in lines:
            print("  " + line)


if __name__ == "__main__":
    main()
