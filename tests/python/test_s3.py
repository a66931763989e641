"""Build into a real S3-compatible server (SeaweedFS on loopback, started and stopped here),
read it back with xarray through s3fs, and compare with the local build: identical objects."""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import s3fs
import xarray as xr

from conftest import NORTH, REPO, mosaic

KEY, SECRET = "mosaic-test-key", "mosaic-test-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    weed = shutil.which("weed") or str(Path(os.sys.executable).parent / "weed")
    d = tmp_path_factory.mktemp("seaweed")
    ports = {name: free_port() for name in ["s3", "master", "volume", "filer", "webdav", "admin"]}
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    log = open(d / "weed.log", "w")
    proc = subprocess.Popen(
        [weed, "mini", f"-dir={d}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         f"-s3.port={ports['s3']}", f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
         f"-filer.port={ports['filer']}", f"-webdav.port={ports['webdav']}", f"-admin.port={ports['admin']}"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    fs = s3fs.S3FileSystem(key=KEY, secret=SECRET, client_kwargs={"endpoint_url": endpoint, "region_name": "us-east-1"})
    deadline = time.time() + 90
    while True:
        try:
            fs.mkdir("mosaic")
            break
        except Exception:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError(f"SeaweedFS did not start:\n{(d / 'weed.log').read_text()[-3000:]}")
            time.sleep(1)
    env = {
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }
    yield {"fs": fs, "endpoint": endpoint, "env": env}
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_build_into_s3_equals_the_local_build(sample, s3):
    url = "s3://mosaic/stores/sample.zarr"
    env = dict(os.environ, **s3["env"])
    t = time.perf_counter()
    proc = mosaic("build", "--input", sample["root"], "--out", url, "--band", "70-80", cwd=REPO, env=env)
    seconds = time.perf_counter() - t
    print(f"\nS3 build: {proc.stdout.strip()} ({seconds:.1f} s wall)")

    # Every object of the band equals the local store's file.
    fs = s3["fs"]
    local = sample["store"]
    remote_keys = {k.split("sample.zarr/", 1)[1] for k in fs.find("mosaic/stores/sample.zarr/70-80")}
    local_keys = {str(p.relative_to(local)) for p in (local / "70-80").rglob("*") if p.is_file()}
    assert remote_keys == local_keys
    for key in sorted(remote_keys):
        assert fs.cat(f"mosaic/stores/sample.zarr/{key}") == (local / key).read_bytes(), key

    # xarray reads it back through s3fs.
    opts = {"key": KEY, "secret": SECRET, "client_kwargs": {"endpoint_url": s3["endpoint"], "region_name": "us-east-1"}}
    remote = xr.open_zarr(url, group="70-80", storage_options=opts, chunks=None)
    here = xr.open_zarr(local, group="70-80", chunks=None)
    for name in NORTH[:2]:
        lon_c, lat_c = [float(v) for v in name[5:].split("_")]
        box = dict(lat=slice(lat_c - 0.05, lat_c + 0.05), lon=slice(lon_c - 0.05, lon_c + 0.05))
        a, b = remote.sel(**box), here.sel(**box)
        np.testing.assert_array_equal(a.embeddings.values, b.embeddings.values)
        np.testing.assert_array_equal(a.scales.values, b.scales.values)

    # The tools read from S3 too: verify and status.
    v = mosaic("verify", "--input", sample["root"], "--store", url, "--band", "70-80", "--sample", "300", env=env)
    assert "OK: the band matches its input" in v.stdout
    st = mosaic("status", "--store", url, "--json", env=env)
    assert '"built": 4' in st.stdout

    # A rerun finds everything done.
    again = mosaic("build", "--input", sample["root"], "--out", url, "--band", "70-80", cwd=REPO, env=env)
    assert "0 tiles written" in again.stdout
