"""Build into Azure Blob Storage (Azurite) and into a WebDAV server (WsgiDAV), each started on
loopback here, and compare object by object with the local build through the server's own
side (azure-storage-blob; the WebDAV server's folder on disk), not through object_store.
gs:// has no test: fake-gcs-server refuses object_store's plain XML-API PUT
(docs/guarantees.md, "Not held by a test")."""

import os

import pytest

from azurite import azurite
from conftest import REPO, mosaic
from webdav import webdav

BAND = "70-80"


def built_equals_local(sample, url, env, remote_objects):
    """Build BAND into `url`, check that `remote_objects()` ({key below the store: bytes}) equals
    the local build file by file, and that `mosaic verify` passes on the remote store."""
    proc = mosaic("build", "--input", sample["root"], "--out", url, "--band", BAND, cwd=REPO, env=env)
    print(f"\n{url}: {proc.stdout.strip()}")
    local = sample["store"]
    local_files = {str(p.relative_to(local)): p.read_bytes()
                   for p in (local / BAND).rglob("*") if p.is_file()}
    remote = remote_objects()
    assert sorted(remote) == sorted(local_files)
    for key in sorted(local_files):
        assert remote[key] == local_files[key], key
    v = mosaic("verify", "--input", sample["root"], "--store", url, "--band", BAND, "--sample", "300", env=env)
    assert "OK: the band matches its input" in v.stdout
    # The store lists what it holds: a rerun writes nothing.
    again = mosaic("build", "--input", sample["root"], "--out", url, "--band", BAND, cwd=REPO, env=env)
    assert "0 tiles written" in again.stdout, again.stdout


@pytest.fixture(scope="module")
def az(tmp_path_factory):
    with azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


def test_build_into_azure_equals_the_local_build(sample, az):
    env = dict(os.environ, **az["env"])
    client = az["client"]

    def objects():
        prefix = "stores/sample.zarr/"
        return {b.name[len(prefix):]: client.download_blob(b.name).readall()
                for b in client.list_blobs(name_starts_with=prefix + BAND + "/")}

    built_equals_local(sample, "az://mosaic/stores/sample.zarr", env, objects)


def test_build_into_webdav_equals_the_local_build(sample, tmp_path):
    with webdav(tmp_path / "dav") as server:
        folder = server["root"] / "stores" / "sample.zarr"

        def files():
            return {str(p.relative_to(folder)): p.read_bytes()
                    for p in (folder / BAND).rglob("*") if p.is_file()}

        built_equals_local(sample, f"{server['url']}/stores/sample.zarr", dict(os.environ), files)
