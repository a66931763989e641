"""A throwaway Azure Blob Storage: Azurite (`azurite-blob`, from npm: package.json) on a free
loopback port, with its data in a temporary folder. Used by tests/python/test_object_stores.py."""

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from seaweed import free_port, stop, until_it_takes_a_write

REPO = Path(__file__).resolve().parents[2]
# The emulator's published account and key (the same in every Azurite and in object_store).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_command():
    local = REPO / "node_modules" / ".bin" / "azurite-blob"
    found = str(local) if local.exists() else shutil.which("azurite-blob")
    if found is None:
        raise RuntimeError(f"azurite-blob is neither at {local} nor on PATH: run scripts/setup.sh --tests (npm ci)")
    return found


@contextlib.contextmanager
def azurite(data_dir, container="mosaic"):
    """Start Azurite's blob service, create `container`, yield {client, container, env, log};
    stop it after. `env` holds the variables that point `mosaic` (object_store) at it."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = open(data_dir / "azurite.log", "w")
    proc = subprocess.Popen(
        [azurite_command(), "--blobHost", "127.0.0.1", "--blobPort", str(port),
         "--location", str(data_dir / "data"), "--skipApiVersionCheck", "--loose",
         "--disableTelemetry", "--silent"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        conn = (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint={endpoint}/{ACCOUNT};")
        service = BlobServiceClient.from_connection_string(conn)

        def write():
            client = service.get_container_client(container)
            if not client.exists():
                client.create_container()
            client.upload_blob(".ready", b"ready", overwrite=True)
            assert client.download_blob(".ready").readall() == b"ready"
            client.delete_blob(".ready")
            return client

        client = until_it_takes_a_write(proc, f"Azurite at {endpoint}", data_dir / "azurite.log",
                                        write, 60, 0.5)
        yield {
            "client": client,
            "service": service,
            "endpoint": endpoint,
            "log": data_dir / "azurite.log",
            # object_store's emulator mode: account devstoreaccount1, its well-known key, plain
            # http; AZURITE_BLOB_STORAGE_URL moves it off the default port 10000.
            "env": {"AZURE_STORAGE_USE_EMULATOR": "true", "AZURITE_BLOB_STORAGE_URL": endpoint},
        }
    finally:
        stop(proc, log)
        shutil.rmtree(data_dir / "data", ignore_errors=True)
