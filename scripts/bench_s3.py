"""S3 write throughput next to the local one: build the same band from the same input into a
local folder and into a SeaweedFS server on loopback (started and stopped here), and print
input MB/s and tiles/s of both. Object storage adds HTTP PUTs of whole shards and the server's
own disk writes on the same machine.

Usage: .venv/bin/python scripts/bench_s3.py INPUT BAND [--threads N]
(e.g. the input scripts/bench.sh synthesises: bench-out/in-70-80 70-80)
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "python"))
from seaweed import seaweed  # noqa: E402

MOSAIC = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")).resolve() / "release" / "mosaic"


def build(input_dir, out, band, threads, env, report):
    subprocess.run([str(MOSAIC), "build", "--input", str(input_dir), "--out", out, "--band", band,
                    "--threads", str(threads), "--report", str(report)],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    r = json.loads(Path(report).read_text())
    return r["bytes_read"] / 1e6 / r["seconds"], r["tiles_written"] / r["seconds"], r["tiles_written"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("band")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=REPO) as tmp:
        tmp = Path(tmp)
        local = build(a.input, str(tmp / "local.zarr"), a.band, a.threads, os.environ, tmp / "local.json")
        shutil.rmtree(tmp / "local.zarr")
        with seaweed(tmp / "seaweed") as s3:
            env = dict(os.environ, **s3["env"])
            remote = build(a.input, "s3://mosaic/bench.zarr", a.band, a.threads, env, tmp / "s3.json")
    print(f"band {a.band}, {local[2]} tiles, {a.threads} threads")
    print(f"local folder       : {local[0]:7.1f} MB/s in, {local[1]:.2f} tiles/s")
    print(f"S3 (SeaweedFS, lo) : {remote[0]:7.1f} MB/s in, {remote[1]:.2f} tiles/s")


if __name__ == "__main__":
    main()
