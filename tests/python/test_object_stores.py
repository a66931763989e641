"""Build into Azure Blob Storage (Azurite) and into a WebDAV server (WsgiDAV), each started on
loopback here, and compare object by object with the local build through the server's own
side (azure-storage-blob; the WebDAV server's folder on disk), not through object_store.
A build into WebDAV killed mid-PUT leaves no truncated object under a final key.
gs:// has no test: fake-gcs-server refuses object_store's plain XML-API PUT
(docs/guarantees.md, "Not held by a test")."""

import os
import time

import pytest

import fault_proxy
from azurite import azurite
from conftest import MOSAIC, REPO, mosaic
from seaweed import free_port
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


def is_temporary(key):
    """A writer's temporary (`NAME.tmp.PID.N.HOST`, src/store/local.rs), not data."""
    return ".tmp." in key.rsplit("/", 1)[-1]


def test_an_interrupted_webdav_put_leaves_no_truncated_object(sample, tmp_path):
    """A build into WebDAV through a proxy that cuts the 3rd embeddings shard's PUT half-way,
    killed right after the cut. WsgiDAV writes a PUT's body in place, so the half body lands on
    disk under the name the PUT gave: in the server's folder every final key holds the local
    build's bytes, and the cut PUT named a temporary. A second run removes the killed build's
    temporary and completes the band to the local build's bytes."""
    build_out = "stores/cut.zarr"
    with webdav(tmp_path / "dav") as server:
        folder = server["root"] / build_out

        def files():
            return {str(p.relative_to(folder)): p.read_bytes()
                    for p in (folder / BAND).rglob("*") if p.is_file()}

        port = free_port()
        cut = fault_proxy.build_killed_at_cut(
            [str(MOSAIC), "build", "--input", str(sample["root"]),
             "--out", f"http://127.0.0.1:{port}/{build_out}", "--band", BAND],
            server["url"], port, tmp_path / "proxy.jsonl", f"/{BAND}/embeddings/c/", cwd=REPO)
        cut_name = cut["path"].split("cut.zarr/", 1)[1]

        time.sleep(1)  # the server is done with the cut request
        local = sample["store"]
        on_disk = files()
        final = {k: v for k, v in on_disk.items() if not is_temporary(k)}
        print(f"\ncut PUT {cut_name} after {cut['forwarded']} of {cut['length']} bytes; "
              f"{len(final)} objects at the kill; temporaries: "
              f"{ {k: len(v) for k, v in on_disk.items() if is_temporary(k)} }")
        for key, data in sorted(final.items()):
            assert data == (local / key).read_bytes(), f"{key}: {len(data)} bytes on the " \
                f"server, {(local / key).stat().st_size} in the local build"
        assert len([k for k in final if "/embeddings/c/" in k]) >= 2, sorted(final)
        assert is_temporary(cut_name), cut_name
        assert cut_name.split(".tmp.")[0] not in final

        mosaic("build", "--input", sample["root"], "--out", f"{server['url']}/{build_out}",
               "--band", BAND, cwd=REPO)
        local_files = {str(p.relative_to(local)): p.read_bytes()
                       for p in (local / BAND).rglob("*") if p.is_file()}
        remote = files()
        assert sorted(remote) == sorted(local_files)  # the temporary is gone too
        for key in sorted(local_files):
            assert remote[key] == local_files[key], key
