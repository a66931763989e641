"""`mosaic stac` at scale: the catalogue and map written straight into a bucket (SeaweedFS, read
back with botocore, not through mosaic) equal those written to a local folder; map tiles are
drawn again only where the store's chunks under them changed (a rerun with nothing changed
draws none and rewrites none; a changed chunk redraws only tiles over it, and the result equals
a fresh run's); a run killed with SIGKILL and rerun ends equal to a clean run; N shares
(`--worker I/N`) then a plain run equal one run."""

import json
import math
import os
import re
import shutil
import signal
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from conftest import MOSAIC, NORTH, mosaic, picture_level

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def files(root):
    """{relative path: bytes} of every file under root."""
    root = Path(root)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def stamps(root, pattern):
    """{relative path: (inode, mtime_ns)} of the files matching pattern: a rewrite changes it."""
    root = Path(root)
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in root.glob(pattern) if p.is_file()}


def tiles_line(stdout):
    """(rendered, kept, removed, total) from the summary line."""
    m = re.search(r"tiles: (\d+) rendered, (\d+) kept, (\d+) removed, of (\d+)", stdout)
    assert m, stdout
    return tuple(int(v) for v in m.groups())


def stac(store, out, *extra, **kw):
    proc = mosaic("stac", "--store", store, "--out", out, *extra, **kw)
    return proc.stdout


@pytest.fixture(scope="module")
def fresh(sample, tmp_path_factory):
    """A clean run's output for the sample store (the catalogue beside the store, as other
    runs here name it with --map-store)."""
    out = tmp_path_factory.mktemp("fresh") / "catalog"
    stac(sample["store"], out, "--map-store", "../store.zarr")
    yield out
    shutil.rmtree(out.parent, ignore_errors=True)


def test_a_rerun_with_nothing_changed_draws_nothing(sample, fresh, tmp_path):
    out = tmp_path / "catalog"
    first = tiles_line(stac(sample["store"], out, "--map-store", "../store.zarr"))
    assert first[0] == first[3] > 100 and first[1] == 0, first
    before, tiles = files(out), stamps(out, "map/tile*/**/*")
    again = tiles_line(stac(sample["store"], out, "--map-store", "../store.zarr", "--threads", "1"))
    assert again == (0, first[3], 0, first[3]), again
    assert files(out) == before
    # No tile and no state rewritten (same inode, same modification time).
    assert stamps(out, "map/tile*/**/*") == tiles
    assert before == files(fresh)


def test_a_changed_chunk_redraws_only_the_tiles_over_it(sample, fresh, tmp_path):
    """One cell's finest overview chunk (2024) changes: the tiles that read it (zoom 11 over
    that cell) are drawn again, no other tile is rewritten, and the output equals a fresh run
    on the changed store."""
    import zarr

    store = tmp_path / "store.zarr"
    # A copy of the store by hard links (cheap); the changed chunk gets a new file.
    subprocess.run(["cp", "-al", str(sample["store"]), str(store)], check=True)
    out = tmp_path / "catalog"
    shutil.copytree(fresh, out)
    lon, lat = (round(float(v) * 100) for v in NORTH[0].split("_")[1:])
    x, y = (lon - 5) // 10, (lat - 5) // 10  # the cell's west, south edges in tenths
    level = zarr.open_group(store, mode="r")["70-80/overviews/2"]
    rows_per_cell = level["scales"].chunks[1]
    cols_per_cell = level["scales"].chunks[2]
    a, c = y - 700, x + 1800
    key = store / "70-80" / "overviews" / "2" / "scales" / "c" / "1" / str(a) / str(c)
    assert key.is_file(), key
    scales = level["scales"][1, a * rows_per_cell:(a + 1) * rows_per_cell,
                             c * cols_per_cell:(c + 1) * cols_per_cell]
    assert np.isfinite(scales).sum() > 1000
    scales[:, : cols_per_cell // 2] = np.nan  # the west half of the cell: no data
    key.unlink()  # a new file, not a write into the linked one
    zarr.open_group(store, mode="r+")["70-80/overviews/2/scales"][
        1, a * rows_per_cell:(a + 1) * rows_per_cell, c * cols_per_cell:(c + 1) * cols_per_cell] = scales
    assert key.is_file()

    before = stamps(out, "map/tiles/**/*.png")
    rendered, kept, removed, total = tiles_line(stac(store, out, "--map-store", "../store.zarr"))
    after = stamps(out, "map/tiles/**/*.png")
    rewritten = sorted(k for k in after if after[k] != before.get(k))
    # Only tiles of 2024 over the cell, at the zooms that read level 2 of band 70-80 (the
    # documented rule, from the store's multiscales layout: zooms 9-11 here).
    def over(z):
        span = Fraction(180, 2 ** z)  # exact: a tile's edges against the cell's
        west, east = Fraction(x, 10) + 180, Fraction(x + 1, 10) + 180
        top, bottom = 90 - Fraction(y + 1, 10), 90 - Fraction(y, 10)
        return {(z, tx, ty) for tx in range(math.floor(west / span), math.ceil(east / span))
                for ty in range(math.floor(top / span), math.ceil(bottom / span))}

    reads_level_2 = [z for z in range(12)
                     if picture_level(store, "70-80", (0.0, 70.0, 180 / 2 ** z, 70.0 + 180 / 2 ** z),
                                      (256, 256)) == 2]
    assert reads_level_2 and 11 in reads_level_2 and 0 not in reads_level_2
    expected = set().union(*(over(z) for z in reads_level_2))
    assert 1 <= rendered <= len(expected), (rendered, expected)
    assert len(rewritten) == rendered and removed == 0 and kept == total - rendered
    for k in rewritten:
        year, z, tx, ty = k.split("/")[2:6]
        assert year == "2024" and (int(z), int(tx), int(ty.split(".")[0])) in expected, k
    # What a fresh run on the changed store writes.
    clean = tmp_path / "clean"
    stac(store, clean, "--map-store", "../store.zarr")
    mine, theirs = files(out), files(clean)
    assert sorted(mine) == sorted(theirs)
    assert [k for k in mine if mine[k] != theirs[k]] == []
    assert mine != files(fresh)  # the change is visible in the map


def test_a_killed_run_resumed_equals_a_clean_run(sample, fresh, tmp_path):
    """SIGKILL in the middle of a block of tiles (one thread draws them in order: years, zooms,
    blocks, tiles, as the clean run's block states list them), then a rerun. The block: the
    first of 8 tiles (zoom 11, the slowest tiles), killed after its 3rd."""
    blocks = sorted((int(p.parent.parent.name), int(p.parent.name),
                     tuple(int(v) for v in p.stem.split("-")), len(p.read_text().splitlines()) - 1)
                    for p in (fresh / "map" / "tile-state").rglob("*.txt"))
    before = 0
    for *_, size in blocks:
        if size >= 8:
            break
        before += size
    else:
        pytest.fail(f"no block of 8 tiles in the sample: {blocks}")
    kill_at, block_end = before + 3, before + size
    out = tmp_path / "catalog"
    args = [str(MOSAIC), "stac", "--store", str(sample["store"]), "--out", str(out),
            "--map-store", "../store.zarr", "--threads", "1"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list((out / "map" / "tiles").rglob("*.png"))) < kill_at:
        assert proc.poll() is None and time.time() < deadline, "the run ended before the kill"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    left = files(out)
    written = sum(k.startswith("map/tiles/") and k.endswith(".png") for k in left)
    assert kill_at <= written < block_end, (kill_at, written, block_end)  # mid-block
    rendered, kept, removed, total = tiles_line(
        stac(sample["store"], out, "--map-store", "../store.zarr"))
    # Resumed: the blocks the killed run finished (their state written) are kept.
    assert kept >= before and rendered > 0 and rendered + kept == total, (rendered, kept, total)
    mine, theirs = files(out), files(fresh)
    assert sorted(mine) == sorted(theirs), set(mine) ^ set(theirs)
    assert [k for k in mine if mine[k] != theirs[k]] == []


def share_line(stdout):
    """(rendered, kept, removed, total) from a share's summary line."""
    m = re.search(r"share \d+/\d+ of the map's tile blocks .*: (\d+) rendered, (\d+) kept, "
                  r"(\d+) removed, of (\d+)", stdout)
    assert m, stdout
    return tuple(int(v) for v in m.groups())


def test_shares_then_a_plain_run_equal_one_run(sample, fresh, tmp_path):
    """`stac --worker I/3` in the order 2, 3, 1 (one thread each): every share draws a
    non-empty set of blocks no other share drew (told by the block states each adds) and writes
    neither catalogue nor page; together they draw the clean run's blocks and tiles; the plain
    run after them draws nothing and ends equal to the clean run file by file."""
    out = tmp_path / "catalog"

    def states(root=out):
        return {str(p.relative_to(root)) for p in root.glob("map/tile-state/**/*.txt")}

    fresh_states = states(fresh)
    fresh_total = len(list(fresh.glob("map/tiles/**/*.png")))
    assert len(fresh_states) >= 6 and fresh_total > 100, (fresh_states, fresh_total)
    drawn_by, rendered_sum = [], 0
    for i in (2, 3, 1):
        before = states()
        rendered, kept, removed, total = share_line(
            stac(sample["store"], out, "--worker", f"{i}/3", "--map-store", "../store.zarr",
                 "--threads", "1"))
        added = states() - before
        assert added and before == states() - added, (i, added)
        assert rendered == total > 0 and kept == removed == 0, (i, rendered, kept, total)
        drawn_by.append(added)
        rendered_sum += rendered
        assert not (out / "catalog.json").exists() and not (out / "index.html").exists()
    assert set().union(*drawn_by) == fresh_states
    assert sum(map(len, drawn_by)) == len(fresh_states)  # disjoint
    assert rendered_sum == fresh_total
    rendered, kept, removed, total = tiles_line(stac(sample["store"], out, "--map-store",
                                                     "../store.zarr"))
    assert (rendered, kept, removed, total) == (0, fresh_total, 0, fresh_total)
    mine, theirs = files(out), files(fresh)
    assert sorted(mine) == sorted(theirs), set(mine) ^ set(theirs)
    assert [k for k in mine if mine[k] != theirs[k]] == []


def test_stac_into_a_bucket_equals_stac_into_a_folder(sample, tmp_path):
    """`--store s3://... --out s3://.../catalog`: every object, listed and read with botocore,
    equals the file of the same run into a local folder; asset hrefs are the store's URL; the
    page's types are set for a browser; a rerun draws nothing and rewrites nothing."""
    import botocore.session

    from seaweed import seaweed

    with seaweed(tmp_path / "seaweed") as s3:
        s3["fs"].put(str(sample["store"]), "mosaic/store.zarr", recursive=True)
        env = {**os.environ, **s3["env"]}
        url = "s3://mosaic/store.zarr"
        first = stac(url, "s3://mosaic/catalog/", env=env)
        assert "the page reads the store at ../store.zarr" in first, first
        rendered, kept, _, total = tiles_line(first)
        assert rendered == total > 100 and kept == 0
        local = tmp_path / "local"
        stac(url, local, "--map-store", "../store.zarr", env=env)

        client = botocore.session.get_session().create_client(
            "s3", endpoint_url=s3["endpoint"], region_name="us-east-1",
            aws_access_key_id=s3["env"]["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=s3["env"]["AWS_SECRET_ACCESS_KEY"])

        def listing():
            out, token = {}, {}
            while True:
                page = client.list_objects_v2(Bucket="mosaic", Prefix="catalog/", **token)
                out.update({o["Key"][len("catalog/"):]: o for o in page.get("Contents", [])})
                if not page.get("IsTruncated"):
                    return out
                token = {"ContinuationToken": page["NextContinuationToken"]}

        objects = listing()
        want = files(local)
        assert sorted(objects) == sorted(want)
        for key in want:
            got = client.get_object(Bucket="mosaic", Key=f"catalog/{key}")
            assert got["Body"].read() == want[key], key
        item = client.get_object(Bucket="mosaic", Key="catalog/2024/2024-70-80/2024-70-80.json")
        assert json.loads(item["Body"].read())["assets"]["zarr"]["href"] == f"{url}/70-80"
        types = {"index.html": "text/html", "map/layers.js": "text/javascript",
                 "catalog.json": "application/json", "vendor/leaflet/leaflet.css": "text/css",
                 next(k for k in want if k.startswith("map/tiles/")): "image/png"}
        for key, mime in types.items():
            assert client.head_object(Bucket="mosaic", Key=f"catalog/{key}")["ContentType"] == mime

        again = tiles_line(stac(url, "s3://mosaic/catalog/", env=env))
        assert again == (0, total, 0, total), again
        after = listing()
        tiles = [k for k in objects if k.startswith("map/tile")]
        assert all(after[k]["LastModified"] == objects[k]["LastModified"] for k in tiles)
        assert sorted(after) == sorted(objects)
