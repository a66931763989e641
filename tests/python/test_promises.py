"""Promises of the docs that no other test held (issue 27, item 3): each checked against
something computed here, not by the tool."""

import json
import math
import re
import shutil
import socket
import subprocess
import zlib

import numpy as np
import pytest
import zarr
from PIL import Image

from colours import assert_drawn_in, assert_same_basis, basis_from_statistics, paint, pixels_under, render_tile
from conftest import MOSAIC, mosaic, picture_level

BAND = "70-80"


def overview_levels(store, band):
    attrs = zarr.open_group(store, mode="r")[f"{band}/overviews"].attrs
    return [int(e["asset"]) for e in attrs["multiscales"]["layout"]]


def codecs(meta):
    """Every codec of an array's zarr.json, sharding's inner codecs included."""
    for c in meta.get("codecs", []):
        yield c
        yield from codecs(c.get("configuration", {}))


@pytest.mark.parametrize("band", [BAND, "S70-S60"])
def test_each_level_keeps_ceil_r_over_2_to_the_l_pixels_per_cell(sample, band):
    """docs/overviews.md: level L keeps ceil(R/2^L) x ceil(C/2^L) pixels per cell."""
    store = sample["store"]
    grid = json.loads((store / band / "zarr.json").read_text())["attributes"]["tessera_mosaic"]["grid"]
    rows, cols = grid["rows_per_cell"], grid["cols_per_cell"]
    cell_rows = grid["lat_end_index"] - grid["lat_start_index"]
    levels = overview_levels(store, band)
    assert len(levels) >= 8
    for level in levels:
        emb = zarr.open_array(store / band / "overviews" / str(level) / "embeddings", mode="r")
        r, c = math.ceil(rows / 2 ** level), math.ceil(cols / 2 ** level)
        # (year, lat, lon, channel): the band's 100 cell rows and the globe's 3600 cell columns.
        assert emb.shape[1:3] == (cell_rows * r, 3600 * c), (level, emb.shape, r, c)
        # Every cell starts on a multiple of its per-cell size: the lat axis of the level.
        lat = zarr.open_array(store / band / "overviews" / str(level) / "lat", mode="r")[:]
        step = 0.1 / r
        np.testing.assert_allclose(np.abs(np.diff(lat)), step, rtol=1e-6)


def test_overviews_are_compressed_at_zstd_level_1_at_most(sample):
    """docs/format.md, docs/overviews.md: overviews at zstd level 1 (the band at its own level)."""
    store = sample["store"]
    band_levels = [c["configuration"]["level"] for c in
                   codecs(json.loads((store / BAND / "embeddings" / "zarr.json").read_text()))
                   if c["name"] in ("zstd", "blosc") and "level" in c.get("configuration", {})]
    seen = 0
    for level in overview_levels(store, BAND):
        for array in ("embeddings", "scales"):
            meta = json.loads((store / BAND / "overviews" / str(level) / array / "zarr.json").read_text())
            zstd = [c for c in codecs(meta) if c["name"] == "zstd"]
            assert zstd, (level, array, meta["codecs"])
            for c in zstd:
                assert c["configuration"]["level"] <= 1, (level, array, c)
                seen += 1
    assert seen >= 16
    # The band itself is at a higher level, so this is not the only level the tool writes.
    assert band_levels and max(band_levels) > 1, band_levels


def test_a_socket_in_place_of_a_tile_file_is_refused_not_read(tmp_path, monkeypatch):
    """docs/scale.md: a FIFO, socket or device where a tile file should be is refused, named."""
    root = tmp_path / "in"
    mosaic("synth", "--out", root, "--tiles", "grid_-99.95_80.05,grid_-99.85_80.05", "--years", "2024")
    path = root / "2024" / "grid_-99.85_80.05" / "grid_-99.85_80.05_scales.npy"
    path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    monkeypatch.chdir(path.parent)  # a socket's path is limited to 107 bytes: bind it by name
    sock.bind(path.name)
    assert path.is_socket()
    sock.listen(1)
    try:
        out = subprocess.run([str(MOSAIC), "build", "--input", str(root), "--out", str(tmp_path / "s.zarr"),
                              "--band", "80-90"], capture_output=True, text=True, timeout=120)
    finally:
        sock.close()
    assert out.returncode == 1, out.stderr
    assert str(path) in out.stderr and "not a regular file" in out.stderr, out.stderr
    assert "1 tiles written" in out.stdout, out.stdout


def test_synth_content_noise_is_nearly_incompressible(tmp_path):
    """README, docs/performance.md: `--content noise` writes the older, nearly incompressible
    content, where the default landscape compresses like TESSERA (zlib here, not the tool's
    codecs: measured 0.94 and 0.41 of the bytes for this tile)."""
    tile = "grid_10.05_70.05"
    ratio = {}
    for content in ("landscape", "noise"):
        root = tmp_path / content
        mosaic("synth", "--out", root, "--tiles", tile, "--years", "2024", "--content", content)
        emb = np.load(root / "2024" / tile / f"{tile}.npy")
        assert emb.dtype == np.int8 and emb.shape[-1] == 128 and emb.shape[0] > 1000
        block = np.ascontiguousarray(emb[:200, :200]).tobytes()
        ratio[content] = len(zlib.compress(block)) / len(block)
    assert ratio["noise"] > 0.8, ratio
    assert ratio["landscape"] < 0.6, ratio


def test_map_max_zoom_writes_zooms_up_to_it_only(sample, tmp_path):
    """docs/stac.md: `--map-max-zoom Z` writes zooms 0..Z only (11 by default for this grid)."""
    out = tmp_path / "cat"
    mosaic("stac", "--store", sample["store"], "--out", out, "--map-max-zoom", "3")
    layers = json.loads(re.search(r"window\.MOSAIC = (.*);", (out / "map" / "layers.js").read_text(),
                                  re.S).group(1))
    assert layers["tiles"]
    for t in layers["tiles"]:
        assert t["max_zoom"] == 3 and t["native_max_zoom"] == 11, t
        root = out / t["href"]
        zooms = sorted(int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit())
        assert zooms == [0, 1, 2, 3], (t["year"], zooms)
        assert all(list((root / str(z)).glob("*/*.png")) for z in zooms)


def two_tiles(tmp_path):
    root = tmp_path / "in"
    mosaic("synth", "--out", root, "--tiles", "grid_-99.95_80.05,grid_-99.85_80.05", "--years", "2024")
    return root


def chunk_files(store, path):
    """The stored chunk objects of an array (none: every read gives the fill value, by Zarr v3)."""
    c = store / path / "c"
    return sorted(p for p in c.rglob("*") if p.is_file()) if c.exists() else []


def test_coarse_levels_are_empty_until_finalize(tmp_path):
    """docs/scale.md: after a worker split the coarse levels (5 and coarser) are empty, so
    zoomed-out pictures show nothing, until `finalize`; levels 2 to 4 are written with the cell."""
    root = two_tiles(tmp_path)
    store = tmp_path / "w.zarr"
    mosaic("build", "--input", root, "--out", store, "--band", "80-90", "--worker", "1/1")
    levels = overview_levels(store, "80-90")
    coarse = [lv for lv in levels if lv >= 5]
    assert levels[:3] == [2, 3, 4] and len(coarse) >= 4, levels
    for level in (2, 3, 4):
        for array in ("embeddings", "scales"):
            assert len(chunk_files(store, f"80-90/overviews/{level}/{array}")) == 2, (level, array)
    for level in coarse:
        for array in ("embeddings", "scales"):
            assert not chunk_files(store, f"80-90/overviews/{level}/{array}"), (level, array)
    assert not list(store.glob("_mosaic/colour/*.json"))
    mosaic("finalize", "--store", store)
    for level in coarse:
        for array in ("embeddings", "scales"):
            assert chunk_files(store, f"80-90/overviews/{level}/{array}"), (level, array)
    assert list(store.glob("_mosaic/colour/*.json"))


@pytest.mark.parametrize("path", ["80-90/overviews/3/embeddings", "80-90/overviews/4/scales",
                                  "80-90/colour_statistics/sums", "80-90/colour_statistics/sample"])
def test_a_cell_missing_only_an_overview_or_statistics_object_is_rebuilt(tmp_path, path):
    """docs/overviews.md: a (cell, year) is done when every sink holds it: a cell whose band
    shards are there but one overview or statistics object is missing is built again, to the
    same bytes."""
    root = two_tiles(tmp_path)
    store = tmp_path / "s.zarr"
    mosaic("build", "--input", root, "--out", store, "--band", "80-90")

    def files():
        return {p.relative_to(store): p.read_bytes() for p in store.rglob("*")
                if p.is_file() and "failures" not in p.parts}

    before = files()
    objects = chunk_files(store, path)
    assert len(objects) == 2, objects  # one per cell
    objects[0].unlink()
    out = mosaic("build", "--input", root, "--out", store, "--band", "80-90")
    assert "1 tiles written, 1 already present" in out.stdout, out.stdout
    assert files() == before


def test_a_band_removed_and_built_again_from_changed_input_equals_a_fresh_build(tmp_path):
    """docs/overviews.md: the finalize partials under `_mosaic/` record which cells they summed,
    not what those held; a build removes the partials of the cells it writes, so a band whose
    folder was removed and built again from changed input (another seed) gets its coarse levels
    and the year's colour basis from the new content: the store equals a fresh build's, file for
    file."""
    old, new = tmp_path / "old", tmp_path / "new"
    # Cells 832 and 833 of their row start block column 13 (64 cells a block); the coarsest
    # levels' chunks holding them start in block 12, whose partial makes them.
    tiles = "grid_-96.75_80.05,grid_-96.65_80.05"
    for root, seed in [(old, "42"), (new, "7")]:
        mosaic("synth", "--out", root, "--tiles", tiles, "--years", "2024", "--seed", seed)
    again, fresh = tmp_path / "again.zarr", tmp_path / "fresh.zarr"
    mosaic("build", "--input", old, "--out", again, "--band", "80-90")
    shutil.rmtree(again / "80-90")
    mosaic("build", "--input", new, "--out", again, "--band", "80-90")
    mosaic("build", "--input", new, "--out", fresh, "--band", "80-90")

    def files(store):
        return {str(p.relative_to(store)): p.read_bytes() for p in store.rglob("*") if p.is_file()}

    built, expected = files(again), files(fresh)
    assert any(k.startswith("80-90/overviews/5/") for k in expected)  # coarse levels exist
    assert sorted(k for k in expected if k.startswith("_mosaic/finalize/")) == [
        "_mosaic/finalize/2024/80-90/26-12.bin", "_mosaic/finalize/2024/80-90/26-13.bin"]
    assert sorted(built) == sorted(expected), sorted(set(expected) ^ set(built))
    differ = sorted(k for k in expected if built[k] != expected[k])
    assert differ == [], differ


def map_tiles(catalog):
    """{(year, z, x, y): path} of the map's tile PNGs, as `mosaic stac` wrote them."""
    layers = json.loads(re.search(r"window\.MOSAIC = (.*);", (catalog / "map" / "layers.js").read_text(),
                                  re.S).group(1))
    out = {}
    for t in layers["tiles"]:
        for p in (catalog / t["href"]).glob("*/*/*.png"):
            out[(t["year"], int(p.parent.parent.name), int(p.parent.name), int(p.stem))] = p
    return out


def test_a_stale_colour_basis_is_recomputed_by_readers_and_updated_by_finalize(tmp_path):
    """docs/format.md, docs/overviews.md: a reader that finds a stored basis whose cell counts
    differ from the statistics in the store computes the basis from the statistics itself;
    `finalize` stores the new one. Made stale as a user would: a whole-band build of two cells
    (which stores the basis), then a third cell added by a `--worker` build (which does not)."""
    root = two_tiles(tmp_path)
    third = "grid_-99.75_80.15"
    mosaic("synth", "--out", tmp_path / "more", "--tiles", third, "--years", "2024")
    store = tmp_path / "s.zarr"
    mosaic("build", "--input", root, "--out", store, "--band", "80-90")
    key = store / "_mosaic" / "colour" / "2024.json"
    stale = json.loads(key.read_text())
    assert_same_basis(stale, basis_from_statistics(store, 2024))
    (tmp_path / "more" / "2024" / third).rename(root / "2024" / third)
    out = mosaic("build", "--input", root, "--out", store, "--band", "80-90", "--worker", "1/1")
    assert "1 tiles written, 2 already present" in out.stdout, out.stdout
    assert json.loads(key.read_text()) == stale  # a worker's build leaves the basis as it was
    want = basis_from_statistics(store, 2024)
    assert stale["cells"] == {"80-90": 2} and want["cells"] == {"80-90": 3}

    # (a) Readers draw in the basis of the statistics, not the stored one: a preview of the
    # three cells, and every tile of the map.
    bbox = (-100.0, 80.0, -99.7, 80.2)
    png = tmp_path / "stale.png"
    mosaic("preview", "--store", store, "--bbox", ",".join(map(str, bbox)), "--year", "2024",
           "--width", "300", "-o", png)
    img = np.asarray(Image.open(png).convert("RGBA"))
    levels = {"80-90": picture_level(store, "80-90", bbox, img.shape[:2])}
    pixels = pixels_under(store, 2024, bbox, img.shape[:2], levels)
    drawn = paint(pixels, want)
    assert_drawn_in(img, drawn, min_opaque=5000)
    # The stale basis would draw other colours: the check above can tell the two apart.
    old = paint(pixels, stale)
    opaque = drawn[..., 3] == 255
    moved = np.abs(old[..., :3].astype(int) - drawn[..., :3].astype(int)).max(-1)[opaque]
    assert (moved > 3).mean() > 0.2, (moved > 3).mean()

    catalog = tmp_path / "cat"
    mosaic("stac", "--store", store, "--out", catalog, "--map-max-zoom", "10")
    tiles = map_tiles(catalog)
    assert {z for (_, z, _, _) in tiles} == set(range(11)), sorted(tiles)
    opaque = {}
    for (year, z, x, y), path in sorted(tiles.items()):
        tile = np.asarray(Image.open(path).convert("RGBA"))
        opaque[z] = opaque.get(z, 0) + assert_drawn_in(tile, render_tile(store, want, z, x, y), min_opaque=0)
    # Zoomed out, a tile pixel rarely falls on data; from zoom 7 on every zoom shows the cells.
    assert all(opaque[z] > 100 for z in range(7, 11)), opaque

    # (b) finalize stores the basis of the statistics, and pictures do not change with it.
    mosaic("finalize", "--store", store)
    assert_same_basis(json.loads(key.read_text()), want)
    again = tmp_path / "finalized.png"
    mosaic("preview", "--store", store, "--bbox", ",".join(map(str, bbox)), "--year", "2024",
           "--width", "300", "-o", again)
    assert again.read_bytes() == png.read_bytes()
