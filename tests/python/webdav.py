"""A throwaway WebDAV server: WsgiDAV (PyPI `wsgidav`, served by `cheroot`) on a free loopback
port, sharing a temporary folder read-write and anonymously. object_store's HttpStore writes
with PUT and MKCOL and lists with PROPFIND, which is how `mosaic` writes an http(s):// store.
Used by tests/python/test_object_stores.py."""

import contextlib
import subprocess
import sys
import urllib.request
from pathlib import Path

from seaweed import free_port, stop, until_it_takes_a_write


@contextlib.contextmanager
def webdav(data_dir):
    """Start WsgiDAV sharing `data_dir / "share"` as `/`; yield {url, root, log}; stop it after."""
    data_dir = Path(data_dir)
    root = data_dir / "share"
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(data_dir / "wsgidav.log", "w")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "wsgidav"), "--host", "127.0.0.1", "--port", str(port),
         "--root", str(root), "--auth", "anonymous", "--no-config", "--server", "cheroot", "-q"],
        stdout=log, stderr=subprocess.STDOUT)
    try:

        def write():
            put = urllib.request.Request(f"{url}/.ready", data=b"ready", method="PUT")
            urllib.request.urlopen(put, timeout=5).close()
            assert (root / ".ready").read_bytes() == b"ready"
            urllib.request.urlopen(
                urllib.request.Request(f"{url}/.ready", method="DELETE"), timeout=5).close()

        until_it_takes_a_write(proc, f"WsgiDAV at {url}", data_dir / "wsgidav.log", write, 60, 0.3)
        yield {"url": url, "root": root, "log": data_dir / "wsgidav.log"}
    finally:
        stop(proc, log)
