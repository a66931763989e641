#!/usr/bin/env python3
"""Per-cell costs of a year's steps on this machine, and what they come to at 1.8 million cells.

Synthesises cells of band 80-90 (narrow tiles, ~200 columns: disk stays small) in batches,
builds each batch into one local store and deletes the batch's input, then runs
`finalize --worker i/N` for every share, the final `finalize`, the same finalize in one process
(the partials deleted first: it then makes every block), and `mosaic stac`. Prints wall and CPU
seconds per step and per cell, the bytes the final step reads against what a finalize reading
every cell's statistics reads, and the extrapolation docs/scale.md gives.

    python3 scripts/bench_scale.py --work /tmp/bench-scale --cells 500 --batch 100 --shares 4

The store (~11 MB a cell) and the work folder are deleted at the end unless --keep.
Figures are of the machine it runs on, synthetic content, warm page cache (each step reads
what the step before just wrote)."""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd, quiet=True):
    t, c = time.time(), cpu()
    p = subprocess.run([str(x) for x in cmd], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))}: exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    if not quiet:
        print(p.stdout.strip())
    return time.time() - t, cpu() - c, p.stdout


def du(path, match=lambda p: True):
    total, n = 0, 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            p = Path(dirpath) / f
            if match(p):
                total += p.stat().st_size
                n += 1
    return total, n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--mosaic", default=os.environ.get("MOSAIC_BIN", ROOT / "target/release/mosaic"))
    ap.add_argument("--cells", type=int, default=500)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--shares", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--year", default="2024")
    ap.add_argument("--target-cells", type=float, default=1.8e6)
    ap.add_argument("--machines", type=int, default=100)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    m = a.mosaic
    if a.work.exists():
        shutil.rmtree(a.work)
    a.work.mkdir(parents=True)
    store = a.work / "store.zarr"
    # Cells 80.0-82.0 N, 20 rows, from 10.0 E eastwards: 25 columns per 500 cells.
    names = []
    for k in range(a.cells):
        lat = 80.05 + 0.1 * (k % 20)
        lon = 10.05 + 0.1 * (k // 20)
        names.append(f"grid_{lon:.2f}_{lat:.2f}")
    fig = {"cells": a.cells, "threads": a.threads, "shares": a.shares, "build_s": 0.0,
           "build_cpu_s": 0.0, "input_bytes": 0, "synth_s": 0.0}
    for start in range(0, a.cells, a.batch):
        batch = names[start:start + a.batch]
        inp = a.work / "in"
        t, _, _ = run([m, "synth", "--out", inp, "--tiles", ",".join(batch), "--years", a.year])
        fig["synth_s"] += t
        fig["input_bytes"] += du(inp)[0]
        t, c, _ = run([m, "build", "--input", inp, "--out", store, "--band", "80-90",
                       "--threads", a.threads, "--worker", "1/1"])
        fig["build_s"] += t
        fig["build_cpu_s"] += c
        shutil.rmtree(inp)
        print(f"built {start + len(batch)}/{a.cells} cells: {fig['build_s']:.1f} s so far", flush=True)
    fig["store_bytes"] = du(store)[0]

    shares_s, shares_cpu, made = [], [], 0
    for i in range(1, a.shares + 1):
        t, c, out = run([m, "finalize", "--store", store, "--worker", f"{i}/{a.shares}"])
        shares_s.append(t)
        shares_cpu.append(c)
        made += sum(int(l.split()[2]) for l in out.splitlines() if l.startswith("year "))
    fig["finalize_shares_s"] = shares_s
    fig["finalize_shares_cpu_s"] = shares_cpu
    fig["blocks"] = made
    t, c, out = run([m, "finalize", "--store", store])
    fig["reduce_s"], fig["reduce_cpu_s"] = t, c
    partial_bytes, partials = du(store / "_mosaic" / "finalize")
    stats_bytes, stats_objects = du(store / "80-90" / "colour_statistics",
                                    lambda p: "/c/" in str(p))
    fig |= {"partials": partials, "partial_bytes": partial_bytes,
            "statistics_objects": stats_objects, "statistics_bytes": stats_bytes}
    # The same finalize in one process: with no partials it makes every block itself.
    shutil.rmtree(store / "_mosaic" / "finalize")
    t, c, _ = run([m, "finalize", "--store", store])
    fig["single_finalize_s"], fig["single_finalize_cpu_s"] = t, c
    t, c, _ = run([m, "stac", "--store", store, "--out", a.work / "stac"])
    fig["stac_s"], fig["stac_cpu_s"] = t, c
    fig["stac_bytes"] = du(a.work / "stac")[0]
    fig["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    n = a.cells
    per = {
        "build": (fig["build_s"] / n, fig["build_cpu_s"] / n),
        "finalize shares (all)": (sum(shares_s) / n, sum(shares_cpu) / n),
        "final finalize (reduce)": (fig["reduce_s"] / n, fig["reduce_cpu_s"] / n),
        "finalize in one process": (fig["single_finalize_s"] / n, fig["single_finalize_cpu_s"] / n),
        "stac": (fig["stac_s"] / n, fig["stac_cpu_s"] / n),
    }
    print(f"\n{n} synthetic cells of band 80-90 (year {a.year}), {a.threads} threads, "
          f"{os.cpu_count()} cores, warm page cache")
    print(f"input {fig['input_bytes'] / 1e9:.2f} GB, store {fig['store_bytes'] / 1e9:.2f} GB")
    print(f"{'step':28} {'wall s':>9} {'cpu s':>9} {'wall ms/cell':>13} {'cpu ms/cell':>12}")
    totals = {"build": (fig["build_s"], fig["build_cpu_s"]),
              "finalize shares (all)": (sum(shares_s), sum(shares_cpu)),
              "final finalize (reduce)": (fig["reduce_s"], fig["reduce_cpu_s"]),
              "finalize in one process": (fig["single_finalize_s"], fig["single_finalize_cpu_s"]),
              "stac": (fig["stac_s"], fig["stac_cpu_s"])}
    for k, (w, c) in per.items():
        print(f"{k:28} {totals[k][0]:9.1f} {totals[k][1]:9.1f} {1000 * w:13.1f} {1000 * c:12.1f}")
    print(f"finalize shares: {a.shares}, {fig['blocks']} blocks; per share "
          + ", ".join(f"{s:.1f}" for s in shares_s) + " s")
    print(f"final step reads {partials} partials, {partial_bytes / 1e6:.1f} MB; reading every "
          f"cell's statistics: {stats_objects} objects, {stats_bytes / 1e6:.1f} MB")

    # Extrapolation: per-cell costs x cells / machines (each machine like this one).
    cells_per_machine = a.target_cells / a.machines
    hours = lambda s: s / 3600
    print(f"\nAt {a.target_cells:.2g} cells on {a.machines} machines like this one "
          f"({cells_per_machine:.0f} cells each), these cells' sizes:")
    for k in ["build", "finalize shares (all)", "stac"]:
        w = per[k][0]
        spread = cells_per_machine if k != "stac" else a.target_cells
        print(f"  {k:26} {hours(w * spread):8.2f} h" + ("  (one process)" if k == "stac" else ""))
    print(json.dumps(fig, indent=1))
    if not a.keep:
        shutil.rmtree(a.work)


if __name__ == "__main__":
    main()
