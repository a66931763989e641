"""What the overviews and colour statistics cost a build (issue 16, item 5): the same build with
and without `--no-overviews`, alternating, each into a fresh store; prints the median wall time
and peak memory (RSS) of each, their ratios, and the bytes each store holds.

Input: synthetic real-size tiles (`mosaic synth`, landscape content that compresses like real
tiles; not real content) of CELLS cells around 70N in band 70-80, one year, written once to
WORK_DIR/tessera and read from the page cache after the first round (warm cache).

Usage: python3 scripts/bench_overviews.py [WORK_DIR] [--cells N] [--rounds R] [--threads T]
Needs the release binary (cargo build --release).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MOSAIC = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release" / "mosaic"


def run(args):
    """Run mosaic; return (wall seconds, peak RSS in MB) of that process alone."""
    start = time.perf_counter()
    proc = subprocess.Popen([str(MOSAIC), *map(str, args)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"mosaic {' '.join(map(str, args))} failed:\n{proc.stderr.read().decode()}")
    return seconds, usage.ru_maxrss / 1024


def size(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work", nargs="?", default="/tmp/bench-overviews")
    ap.add_argument("--cells", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    work = Path(a.work)
    tiles = work / "tessera"
    cols = 8
    rows = -(-a.cells // cols)
    marker = work / f"tessera-{a.cells}.done"
    if not marker.exists():
        shutil.rmtree(tiles, ignore_errors=True)
        lon0, lat0 = 10.0, 70.0
        subprocess.run([str(MOSAIC), "synth", "--out", tiles, "--bbox",
                        f"{lon0},{lat0},{lon0 + cols / 10},{lat0 + rows / 10}",
                        "--years", "2024", "--land-fraction", "1.0", "--seed", "7"],
                       check=True, stdout=subprocess.DEVNULL)
        marker.touch()
    input_bytes = size(tiles)
    figures = {"with": [], "without": []}
    stored = {}
    for r in range(a.rounds):
        for kind in (["with", "without"] if r % 2 == 0 else ["without", "with"]):
            out = work / f"store-{kind}.zarr"
            shutil.rmtree(out, ignore_errors=True)
            subprocess.run(["sync"])
            extra = ["--no-overviews"] if kind == "without" else []
            figures[kind].append(run(["build", "--input", tiles, "--out", out, "--band", "70-80",
                                      "--threads", a.threads, *extra]))
            stored[kind] = size(out)
            print(f"round {r + 1} {kind:>7} overviews: {figures[kind][-1][0]:6.2f} s, "
                  f"{figures[kind][-1][1]:6.0f} MB peak", flush=True)
    t = {k: statistics.median(s for s, _ in v) for k, v in figures.items()}
    m = {k: statistics.median(mb for _, mb in v) for k, v in figures.items()}
    print(f"\ninput: {a.cells} synthetic cells of band 70-80, 1 year, {input_bytes / 1e9:.2f} GB "
          f"(warm page cache); {os.cpu_count()} cores; threads {a.threads or 'all'}")
    print(f"without overviews: {t['without']:.2f} s, {m['without']:.0f} MB peak, "
          f"store {stored['without'] / 1e6:.0f} MB")
    print(f"with overviews:    {t['with']:.2f} s, {m['with']:.0f} MB peak, "
          f"store {stored['with'] / 1e6:.0f} MB")
    print(f"ratio: time {t['with'] / t['without']:.3f}x (target <= 1.15), "
          f"peak memory {m['with'] / m['without']:.3f}x (target <= 1.10), "
          f"bytes {stored['with'] / stored['without']:.3f}x")


if __name__ == "__main__":
    main()
