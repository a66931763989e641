"""The shard index's crc32c, as such: one shard whose index alone is damaged (two stored entries
swapped; the chunks' bytes and the index's stored crc32c untouched) is refused by every reader
that reads shard indexes, ours naming the object: `mosaic verify`, `mosaic query` and
`mosaic sample` (through src/zarr/inner_chunks.rs's cached indexes), and zarr-python and
xarray as the independent readers. A control shows why the crc32c matters: with the crc32c
recomputed over the swapped index (google-crc32c, not our code), zarr-python reads the chunk
without complaint and gets another chunk's values."""

import json
import os
import shutil

import google_crc32c
import numpy as np
import pytest
import xarray as xr
import zarr

from conftest import NORTH, REPO, mosaic

BAND, YEAR = "70-80", 2024
TILE = NORTH[0]
LON_C, LAT_C = [float(v) for v in TILE[5:].split("_")]
EMPTY = 2**64 - 1


def linked_copy(src, dst):
    """A copy of the store made of hard links (the sample store is shared by the session: the
    damaged file is written as a new file, never through a link)."""
    shutil.copytree(src, dst, copy_function=os.link)


@pytest.fixture(scope="module")
def stores(sample, tmp_path_factory):
    """{damaged, forged}: two copies of the sample store, the 2024 embeddings shard of TILE
    with two index entries swapped; `damaged` keeps the stored crc32c, `forged` has it
    recomputed. Also the shard's key and the swapped chunk's position."""
    d = tmp_path_factory.mktemp("shard-index")
    src = sample["store"]
    meta = json.loads((src / BAND / "embeddings" / "zarr.json").read_text())
    shard_shape = meta["chunk_grid"]["configuration"]["chunk_shape"]
    sharding = meta["codecs"][0]
    assert sharding["name"] == "sharding_indexed"
    conf = sharding["configuration"]
    assert conf["index_location"] == "end"
    assert [c["name"] for c in conf["index_codecs"]] == ["bytes", "crc32c"]
    inner = conf["chunk_shape"]
    per_shard = [s // i for s, i in zip(shard_shape, inner)]
    n = int(np.prod(per_shard))

    # A pixel with data near TILE's centre: its row and column from the band's own coordinates
    # (sample reads embeddings only where the scales have data).
    ds = xr.open_zarr(src, group=BAND, chunks=None)
    y = int(np.flatnonzero(ds.year.values == YEAR)[0])
    r_c = int(np.abs(ds.lat.values - LAT_C).argmin())
    c_c = int(np.abs(ds.lon.values - LON_C).argmin())
    window = ds.scales.isel(year=y, lat=slice(r_c - 50, r_c + 50), lon=slice(c_c - 50, c_c + 50)).values
    dr, dc = np.argwhere(np.isfinite(window))[0]
    row, col = r_c - 50 + int(dr), c_c - 50 + int(dc)
    shard = [y // shard_shape[0], row // shard_shape[1], col // shard_shape[2], 0]
    key = f"{BAND}/embeddings/c/" + "/".join(map(str, shard))
    local = [(row % shard_shape[1]) // inner[1], (col % shard_shape[2]) // inner[2]]
    i = int(np.ravel_multi_index([0, *local, 0], per_shard))

    good = (src / key).read_bytes()
    size = n * 16
    index = np.frombuffer(good[-size - 4:-4], dtype="<u8").reshape(n, 2).copy()
    assert google_crc32c.value(good[-size - 4:-4]) == int.from_bytes(good[-4:], "little")
    assert index[i, 0] != EMPTY, "the centre pixel's chunk is stored"
    # Another stored chunk with other bytes: swapped with it, chunk i points at other values.
    j = next(k for k in range(n) if k != i and index[k, 0] != EMPTY and index[k, 1] != index[i, 1])
    index[[i, j]] = index[[j, i]]
    swapped = index.astype("<u8").tobytes()
    out = {"key": key, "row": row, "col": col, "y": y, "inner": inner,
           "lat": float(ds.lat.values[row]), "lon": float(ds.lon.values[col])}
    for name, crc in [("damaged", good[-4:]),
                      ("forged", google_crc32c.value(swapped).to_bytes(4, "little"))]:
        store = d / f"{name}.zarr"
        linked_copy(src, store)
        target = store / key
        target.unlink()
        data = good[:-size - 4] + swapped + crc
        assert data[:-size - 4] == good[:-size - 4], "only the index changes"
        target.write_bytes(data)
        out[name] = store
    yield out
    shutil.rmtree(d, ignore_errors=True)


def chunk_box(s):
    """The (y, rows, cols) slices of the inner chunk holding TILE's centre pixel."""
    r0 = s["row"] // s["inner"][1] * s["inner"][1]
    c0 = s["col"] // s["inner"][2] * s["inner"][2]
    return s["y"], slice(r0, r0 + s["inner"][1]), slice(c0, c0 + s["inner"][2])


def test_control_a_forged_crc_reads_other_values(sample, stores):
    y, rows, cols = chunk_box(stores)
    good = zarr.open_array(sample["store"], path=f"{BAND}/embeddings", mode="r")[y, rows, cols]
    forged = zarr.open_array(stores["forged"], path=f"{BAND}/embeddings", mode="r")[y, rows, cols]
    assert not np.array_equal(good, forged)


def test_zarr_python_and_xarray_refuse_the_damaged_index(stores):
    y, rows, cols = chunk_box(stores)
    array = zarr.open_array(stores["damaged"], path=f"{BAND}/embeddings", mode="r")
    with pytest.raises(Exception, match="(?i)checksum"):
        array[y, rows, cols]
    ds = xr.open_zarr(stores["damaged"], group=BAND, chunks=None)
    with pytest.raises(Exception, match="(?i)checksum"):
        ds.embeddings.isel(year=y, lat=rows, lon=cols).values


def refused(proc, key):
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text
    assert key in text, text
    assert "checksum is invalid" in text, text
    return text


def test_verify_refuses_the_damaged_index_naming_the_shard(sample, stores):
    proc = mosaic("verify", "--input", sample["root"], "--store", stores["damaged"], "--band", BAND,
                  "--years", str(YEAR), "--sample", "50", check=False)
    text = refused(proc, stores["key"])
    assert f"reading embeddings {stores['key']}" in text, text
    assert proc.returncode == 1


def test_query_refuses_the_damaged_index_naming_the_shard(stores, tmp_path):
    lat, lon = stores["lat"], stores["lon"]
    box = ["--lat", f"{lat - 0.0005}:{lat + 0.0005}", "--lon", f"{lon - 0.0005}:{lon + 0.0005}"]
    proc = mosaic("query", "--store", stores["damaged"], *box, "--year", str(YEAR),
                  "-o", tmp_path / "box.npy", check=False, cwd=REPO)
    refused(proc, stores["key"])


def test_sample_refuses_the_damaged_index_naming_the_shard(stores, tmp_path):
    points = tmp_path / "points.csv"
    points.write_text(f"lon,lat\n{stores['lon']},{stores['lat']}\n")
    proc = mosaic("sample", "--store", stores["damaged"], "--points", points, "--years", str(YEAR),
                  "-o", tmp_path / "out.parquet", check=False, cwd=REPO)
    refused(proc, stores["key"])
