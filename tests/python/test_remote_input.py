"""Tiles read where TESSERA publishes them: a synthetic TESSERA tree with landmasks, its manifest
and landmasks.parquet (written by `mosaic manifest`, read back here with pyarrow) in SeaweedFS on
loopback. A build from s3:// equals the build from the local tree chunk for chunk, with the
landmasks from our landmasks.parquet or from one in the form geotessera publishes; a deleted
object, a truncated one, one longer than the manifest says, and a server that accepts connections
and never answers each give a named failed tile and exit 1 with the other tiles built; malformed
manifest and landmasks rows are errors naming the row; a manifest or landmasks.parquet whose
existence the store will not confirm (HEAD answers 500) stops the build naming it, instead of
building from a listing or without landmasks. Without a landmasks.parquet the landmasks come
from listing a folder in the bucket, and a folder the store will not list stops the build."""

import datetime

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rasterio
import xarray as xr

import fault_proxy
from conftest import MOSAIC, REPO, mosaic
from seaweed import free_port, seaweed

TILES = ["grid_-99.95_80.05", "grid_-99.85_80.05", "grid_-99.75_80.05"]
YEAR = "2024"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A local tree with its manifest and landmasks.parquet, and the local build of it."""
    d = tmp_path_factory.mktemp("remote-input")
    root = d / "tessera"
    mosaic("synth", "--out", root, "--tiles", ",".join(TILES), "--years", YEAR, "--seed", "5",
           "--landmasks", "--land-fraction", "0.7")
    # Under a name no default finds: a build without --landmasks gets them from landmasks.parquet.
    masks = root / "masks"
    (root / "global_0.1_degree_tiff_all").rename(masks)
    out = mosaic("manifest", "--input", root, "--landmasks", masks).stdout
    assert f"landmasks {root / 'landmasks.parquet'}: {len(TILES)} landmasks" in out, out
    store = d / "local.zarr"
    mosaic("build", "--input", root, "--landmasks", masks, "--out", store, "--band", "80-90", cwd=REPO)
    yield {"dir": d, "root": root, "masks": masks, "store": store}
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with seaweed(tmp_path_factory.mktemp("seaweed-input")) as server:
        yield server


def upload(s3, root, prefix):
    """Copy a local tree to s3://mosaic/{prefix}/."""
    fs = s3["fs"]
    for path in sorted(Path(root).rglob("*")):
        if path.is_file():
            fs.put_file(str(path), f"mosaic/{prefix}/{path.relative_to(root)}")
    return f"s3://mosaic/{prefix}"


def shards(store):
    """Every shard file of band 80-90's embeddings and scales, by key."""
    keys = {str(p.relative_to(store)): p for p in Path(store).rglob("*") if p.is_file()}
    return {k: p.read_bytes() for k, p in keys.items()
            if k.startswith(("80-90/embeddings/c/", "80-90/scales/c/"))}


def run(args, env, timeout=300):
    proc = subprocess.run([str(MOSAIC), *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=timeout)
    return proc


def test_the_manifest_mosaic_writes_has_tesseras_columns(tree):
    table = pq.read_table(tree["root"] / "manifest.parquet")
    # geotessera's s3scan columns, in its order (its `directory` left out).
    assert table.column_names == ["version", "variant", "year", "lon", "lat", "grid_path",
                                  "scales_path", "grid_mtime", "scales_mtime", "grid_size",
                                  "scales_size", "lon_i", "lat_i"]
    rows = table.to_pylist()
    assert len(rows) == len(TILES)
    for row in rows:
        name = f"grid_{row['lon']:.2f}_{row['lat']:.2f}"
        assert name in TILES and row["year"] == int(YEAR)
        path = tree["root"] / row["grid_path"]
        assert row["grid_path"] == f"{YEAR}/{name}/{name}.npy"
        assert row["grid_size"] == path.stat().st_size
        assert row["scales_size"] == (tree["root"] / row["scales_path"]).stat().st_size


def test_landmasks_parquet_lists_the_trees_landmasks(tree):
    table = pq.read_table(tree["root"] / "landmasks.parquet")
    assert table.column_names == ["lon", "lat", "file_size", "mtime", "path", "lon_i", "lat_i"]
    rows = table.to_pylist()
    assert sorted(f"grid_{r['lon']:.2f}_{r['lat']:.2f}" for r in rows) == sorted(TILES)
    for row in rows:
        name = f"grid_{row['lon']:.2f}_{row['lat']:.2f}"
        assert row["path"] == f"masks/{name}.tiff"
        assert row["file_size"] == (tree["masks"] / f"{name}.tiff").stat().st_size
        assert (row["lon_i"], row["lat_i"]) == (round(row["lon"] * 100), round(row["lat"] * 100))


def test_a_build_from_s3_equals_the_local_build(tree, s3, tmp_path):
    # manifest.parquet and landmasks.parquet: nothing is listed.
    url = upload(s3, tree["root"], "good")
    env = dict(os.environ, **s3["env"])
    store = tmp_path / "from-s3.zarr"
    proc = run(["build", "--input", url, "--out", store, "--band", "80-90"], env)
    assert proc.returncode == 0, proc.stderr
    assert "3 tiles written" in proc.stdout
    local = shards(tree["store"])
    assert len(local) == 2 * len(TILES)
    assert shards(store) == local
    # Without the manifest the prefix is listed and the headers read: the same catalogue.
    s3["fs"].rm(f"mosaic/good/manifest.parquet")
    plan = run(["plan", "--input", url], env)
    assert plan.returncode == 0, plan.stderr
    assert "3 tiles in 1 years" in plan.stdout
    verify = run(["verify", "--input", url, "--store", store, "--band", "80-90", "--sample", "200"], env)
    assert "OK: the band matches its input" in verify.stdout, verify.stdout + verify.stderr


def test_landmasks_in_the_form_geotessera_publishes(tree, s3, tmp_path):
    """landmasks/{version}/grid_*.tiff beside a landmasks.parquet of geotessera's `s3scan`
    (lon, lat, file_size, mtime, key = the object's s3:// URL, lon_i, lat_i), named by URL; and
    its older form without `key` (the file is grid_{lon}_{lat}.tiff beside it)."""
    url = upload(s3, tree["root"], "published")
    s3["fs"].rm("mosaic/published/landmasks.parquet")
    rows = []
    for tiff in sorted(tree["masks"].glob("*.tiff")):
        key = f"mosaic/landmasks/v1/{tiff.name}"
        s3["fs"].put_file(str(tiff), key)
        lon, lat = (float(v) for v in tiff.stem.split("_")[1:])
        rows.append({"lon": lon, "lat": lat, "file_size": tiff.stat().st_size,
                     "mtime": datetime.datetime(2025, 5, 1, tzinfo=datetime.timezone.utc),
                     "key": f"s3://{key}", "lon_i": round(lon * 100), "lat_i": round(lat * 100)})
    table = pa.Table.from_pylist(rows, schema=pa.schema([
        ("lon", pa.float64()), ("lat", pa.float64()), ("file_size", pa.int64()),
        ("mtime", pa.timestamp("us", tz="UTC")), ("key", pa.string()), ("lon_i", pa.int32()),
        ("lat_i", pa.int32())]))
    listed = "s3://mosaic/landmasks/v1/landmasks.parquet"
    env = dict(os.environ, **s3["env"])
    for form in [table, table.drop(["key"])]:
        with s3["fs"].open(listed.removeprefix("s3://"), "wb") as f:
            pq.write_table(form, f)
        if "key" in form.column_names:
            store = tmp_path / "published.zarr"
            proc = run(["build", "--input", url, "--landmasks", listed, "--out", store,
                        "--band", "80-90"], env)
            assert proc.returncode == 0, proc.stderr
            assert shards(store) == shards(tree["store"])
        else:
            proc = run(["verify", "--input", url, "--landmasks", listed, "--store", store,
                        "--band", "80-90", "--sample", "300"], env)
            assert "OK: the band matches its input" in proc.stdout, proc.stdout + proc.stderr
    # Without any landmasks the same store does not match its input: they were applied.
    proc = run(["verify", "--input", url, "--store", store, "--band", "80-90", "--sample", "300"], env)
    assert proc.returncode == 1 and "mismatch" in proc.stdout, proc.stdout + proc.stderr


def broken_build(s3, tree, tmp_path, prefix, suffix, damage):
    """Upload the tree, damage one object (the second tile's file `{name}{suffix}`) with
    `damage(fs, key)`, build; return (process, the damaged URL)."""
    url = upload(s3, tree["root"], prefix)
    name = TILES[1]
    key = f"mosaic/{prefix}/{YEAR}/{name}/{name}{suffix}"
    damage(s3["fs"], key)
    env = dict(os.environ, **s3["env"])
    store = tmp_path / f"{prefix}.zarr"
    proc = run(["build", "--input", url, "--out", store, "--band", "80-90",
                "--read-timeout", "5", "--read-retries", "1"], env)
    return proc, f"s3://{key}"


def assert_named_failure(proc, url, reason):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "2 tiles written" in proc.stdout, proc.stdout
    failed = [line for line in proc.stderr.splitlines() if url in line]
    assert failed and reason in failed[0], proc.stderr


def test_a_deleted_object_fails_its_tile(tree, s3, tmp_path):
    proc, url = broken_build(s3, tree, tmp_path, "deleted", "_scales.npy",
                             lambda fs, key: fs.rm(key))
    assert_named_failure(proc, url, "missing")


def test_a_truncated_object_fails_its_tile(tree, s3, tmp_path):
    proc, url = broken_build(s3, tree, tmp_path, "truncated", ".npy",
                             lambda fs, key: fs.pipe(key, fs.cat(key)[:100_000]))
    assert_named_failure(proc, url, "received 100000 bytes")


def test_an_object_longer_than_the_manifest_says_fails_its_tile(tree, s3, tmp_path):
    proc, url = broken_build(s3, tree, tmp_path, "longer", ".npy",
                             lambda fs, key: fs.pipe(key, fs.cat(key) + b"\0" * 64))
    assert_named_failure(proc, url, "were expected")


def test_a_server_that_never_answers_fails_its_tile_within_the_deadline(tree, s3, tmp_path):
    # A loopback socket that accepts connections and never says a word.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        silent.settimeout(0.5)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                pass
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        port = silent.getsockname()[1]
        # The input is the silent server, the manifest a local copy of it (as geotessera caches
        # its registry): every file of every tile is asked of a server that never answers. (A
        # manifest row can no longer send one tile elsewhere: an absolute URL outside the input
        # gives way to the naming rule under it, as geotessera finds files from any mirror.)
        input_url = f"http://127.0.0.1:{port}/tessera"
        name = TILES[1]
        hanging = f"{input_url}/{YEAR}/{name}/{name}.npy"
        started = time.monotonic()
        # The landmasks named too: asked whether the input holds a landmasks.parquet, a silent
        # server stops the build (test_a_parquet_the_store_will_not_confirm_stops_the_build).
        proc = run(["build", "--input", input_url, "--manifest", tree["root"] / "manifest.parquet",
                    "--landmasks", tree["root"] / "landmasks.parquet",
                    "--out", tmp_path / "hanging.zarr", "--band", "80-90",
                    "--read-timeout", "2", "--read-retries", "1"], os.environ, timeout=120)
        seconds = time.monotonic() - started
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "0 tiles written" in proc.stdout, proc.stdout
        failed = [line for line in proc.stderr.splitlines() if hanging in line]
        assert failed and "no answer within 2 s" in failed[0], proc.stderr
        assert seconds < 60, f"the deadline did not hold: {seconds:.0f} s"
    finally:
        stop.set()
        thread.join()
        for c in held:
            c.close()
        silent.close()


def plan_with_changed_rows(tree, table, change, bad, flag):
    """`mosaic plan` of the tree with `flag bad`, where `bad` is the tree's `table` with its rows
    altered by `change`; asserts exit code 2 and returns the process."""
    rows = pq.read_table(tree["root"] / table).to_pylist()
    change(rows)
    pq.write_table(pa.Table.from_pylist(rows), bad)
    proc = mosaic("plan", "--input", tree["root"], flag, bad, check=False)
    assert proc.returncode == 2
    return proc


@pytest.mark.parametrize("change, message", [
    (lambda rows: rows[1].update(lon=-99.9), "row 1: lon -99.9, lat 80.05 is not a cell centre"),
    (lambda rows: rows[2].update(grid_size=-5), "row 2: grid_size -5 is not a positive byte count"),
    (lambda rows: [r.pop("scales_path") for r in rows], "no column `scales_path`"),
])
def test_a_malformed_manifest_is_an_error_naming_the_row(tree, tmp_path, change, message):
    bad = tmp_path / "bad.parquet"
    proc = plan_with_changed_rows(tree, "manifest.parquet", change, bad, "--manifest")
    assert str(bad) in proc.stderr and message in proc.stderr, proc.stderr


@pytest.mark.parametrize("change, message", [
    (lambda rows: rows[1].update(lat=80.1), "row 1: lon -99.85, lat 80.1 is not a cell centre"),
    (lambda rows: rows[2].update(file_size=0), "row 2: file_size 0 is not a positive byte count"),
    (lambda rows: [r.pop("file_size") for r in rows], "no column `file_size`"),
])
def test_a_malformed_landmasks_row_is_an_error_naming_the_row(tree, tmp_path, change, message):
    bad = tmp_path / "landmasks.parquet"
    proc = plan_with_changed_rows(tree, "landmasks.parquet", change, bad, "--landmasks")
    assert f"landmasks {bad}" in proc.stderr and message in proc.stderr, proc.stderr


def test_failed_requests_are_retried_with_backoff(tree, tmp_path):
    """An HTTP server that answers the first two GETs of every .npy with 500: with the default
    retries the build succeeds and equals the local build, each .npy asked three times with
    growing waits between (the backoff: 0.4 s, then 0.8 s); with one retry every tile fails,
    named, after two attempts."""
    import http.server

    asked = {}  # path -> times of its GETs
    lock = threading.Lock()

    class Flaky(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kw):
            super().__init__(*args, directory=str(tree["dir"]), **kw)

        def do_GET(self):
            if self.path.endswith(".npy"):
                with lock:
                    times = asked.setdefault(self.path, [])
                    times.append(time.monotonic())
                    fail = len(times) <= 2
                if fail:
                    self.send_error(500, "injected failure")
                    return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/tessera"
        store = tmp_path / "retried.zarr"
        proc = run(["build", "--input", url, "--out", store, "--band", "80-90"], os.environ)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert shards(store) == shards(tree["store"])
        npy = {p: t for p, t in asked.items()}
        assert len(npy) == 2 * len(TILES), sorted(npy)
        for path, times in npy.items():
            assert len(times) == 3, (path, times)
            first, second = times[1] - times[0], times[2] - times[1]
            assert first >= 0.35 and second >= 0.75 and second > first, (path, first, second)
        asked.clear()
        proc = run(["build", "--input", url, "--out", tmp_path / "given-up.zarr", "--band", "80-90",
                    "--read-retries", "1"], os.environ)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "0 tiles written" in proc.stdout, proc.stdout
        # Each failed tile names its file and the server's answer (an HTML page, over several
        # lines), then the attempts made.
        assert all(f"{name}.npy: " in proc.stderr for name in TILES), proc.stderr
        assert proc.stderr.count("(after 2 attempts)") >= len(TILES), proc.stderr
        assert all(len(t) == 2 for t in asked.values()), asked
    finally:
        server.shutdown()
        thread.join()


def build_through_failing_proxy(s3, url, tmp_path, **faults):
    """Build band 80-90 from `url` (one retry) through a proxy in front of SeaweedFS that
    answers 500 to every request `faults` picks (`fault_proxy.start`'s hard rules) and logs
    every request: (the finished build, the proxy's log, the store folder)."""
    log = tmp_path / "faults.jsonl"
    port = free_port()
    proxy = fault_proxy.start(s3["endpoint"], port, log, rate=0.0, hard_count=10**6, trace=True,
                              **faults)
    try:
        env = dict(os.environ, **s3["env"])
        env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        store = tmp_path / "store.zarr"
        proc = run(["build", "--input", url, "--out", store, "--band", "80-90",
                    "--read-retries", "1"], env)
    finally:
        proxy.shutdown()
    return proc, fault_proxy.read_log(log), store


@pytest.mark.parametrize("name", ["manifest.parquet", "landmasks.parquet"])
def test_a_parquet_the_store_will_not_confirm_stops_the_build(tree, s3, tmp_path, name):
    # Every HEAD of the parquet answers 500 (through a fault-injecting proxy). Taking that for
    # "absent" would list the prefix and read every tile's header (no manifest) or build without
    # landmasks; either way a store unlike the local build, and nothing said.
    url = upload(s3, tree["root"], f"unconfirmed-{name.split('.')[0]}")
    proc, requests, store = build_through_failing_proxy(s3, url, tmp_path, hard=[name],
                                                        hard_methods=("HEAD",))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{url}/{name}" in proc.stderr and "after 2 attempts" in proc.stderr, proc.stderr
    heads = [r for r in requests if r["method"] == "HEAD" and r["path"].endswith(name)]
    assert len(heads) == 2 and all(r["fault"] == "500" for r in heads), heads
    assert not [r for r in requests if r["path"].endswith(".npy")], "tiles read"
    assert not (store / "80-90" / "embeddings" / "c").exists()


def nan_and_water_fractions(tree, store):
    """The share of no-data pixels over the three built cells (zarr-python through xarray), and
    the share of water in their landmask GeoTIFFs (rasterio). They agree (about 0.3 here) when
    the landmasks were applied; without them the first is about 0.0002 (the few invalid scales
    synth plants)."""
    water = total = 0
    for tiff in tree["masks"].glob("*.tiff"):
        with rasterio.open(tiff) as f:
            mask = f.read(1)
        water, total = water + int((mask == 0).sum()), total + mask.size
    ds = xr.open_zarr(store, group="80-90", chunks=None)
    scales = ds.scales.sel(year=int(YEAR), lat=slice(80.0, 80.1), lon=slice(-100.0, -99.7)).values
    assert scales.size > 700_000
    return float(np.isnan(scales).mean()), water / total


def test_landmasks_listed_from_a_url_folder(tree, s3, tmp_path):
    """No landmasks.parquet anywhere: the landmasks come from listing a folder of GeoTIFFs in
    the bucket: `global_0.1_degree_tiff_all` under the input (with a manifest: that folder
    alone is listed; without: the whole prefix is), or a folder named by `--landmasks URL`. Each
    build equals the local build with the same landmasks, and its share of no data is the
    landmasks' share of water; a file in the folder with a name off the grid is an input
    problem naming its URL (exit 1, the tiles built)."""
    fs = s3["fs"]
    url = upload(s3, tree["root"], "listed")
    fs.rm("mosaic/listed/landmasks.parquet")
    for tiff in sorted(tree["masks"].glob("*.tiff")):
        fs.put_file(str(tiff), f"mosaic/listed/global_0.1_degree_tiff_all/{tiff.name}")
    bad_name = "s3://mosaic/listed/masks/grid_-99.9_80.05.tiff"
    fs.put_file(str(next(tree["masks"].glob("*.tiff"))), bad_name)
    env = dict(os.environ, **s3["env"])
    local = shards(tree["store"])
    cases = {  # each case's extra arguments and expected exit code
        "default folder, manifest": ([], 0),
        "named folder, manifest": (["--landmasks", f"{url}/masks"], 1),
        "default folder, no manifest": ([], 0),
    }
    # Every case is run and its findings gathered, so that a failure shows which cases fail.
    found, want = {}, {}
    for n, (case, (extra, code)) in enumerate(cases.items()):
        if case.endswith("no manifest"):
            fs.rm("mosaic/listed/manifest.parquet")
        store = tmp_path / f"listed-{n}.zarr"
        proc = run(["build", "--input", url, *extra, "--out", store, "--band", "80-90"], env)
        print(f"\n{case}: {proc.stdout.strip()}")
        nan, water = nan_and_water_fractions(tree, store)
        problem = [line for line in proc.stderr.splitlines() if bad_name in line]
        found[case] = {
            "exit": proc.returncode,
            "written": "3 tiles written" in proc.stdout,
            "equals the local build": shards(store) == local,
            "no data is the water": abs(nan - water) < 0.02,
            "bad name named": bool(problem) and "bad landmask name" in problem[0],
        }
        want[case] = {"exit": code, "written": True, "equals the local build": True,
                      "no data is the water": True, "bad name named": code == 1}
    assert found == want, found


def test_a_landmask_folder_the_store_will_not_list_stops_the_build(tree, s3, tmp_path):
    """Every listing of the landmask folder answers 500 (through a fault-injecting proxy):
    building without landmasks would give a store unlike the local build, and nothing said, so
    the build stops before any tile is read, naming the folder."""
    fs = s3["fs"]
    url = upload(s3, tree["root"], "unlisted")
    fs.rm("mosaic/unlisted/landmasks.parquet")
    folder = "unlisted/global_0.1_degree_tiff_all"
    for tiff in sorted(tree["masks"].glob("*.tiff")):
        fs.put_file(str(tiff), f"mosaic/{folder}/{tiff.name}")
    proc, requests, store = build_through_failing_proxy(s3, url, tmp_path,
                                                        hard_query=[f"prefix={folder}"])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    named = [line for line in proc.stderr.splitlines() if f"landmasks s3://mosaic/{folder}" in line]
    assert named and "after 2 attempts" in named[0], proc.stderr
    listings = [r for r in requests if f"prefix={folder}" in r.get("query", "")]
    assert len(listings) == 2 and all(r["fault"] == "500" for r in listings), listings
    assert not [r for r in requests if r["path"].endswith(".npy")], "tiles read"
    assert not (store / "80-90" / "embeddings" / "c").exists()
