"""`mosaic plan --json`: the compression ratio it measures equals numcodecs' zstd on the same
sample bytes, and its stored-bytes estimate is close to what a build then writes."""

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from numcodecs import Zstd

from conftest import REPO, mosaic

TILES = ["grid_-99.95_80.05", "grid_-99.85_80.05", "grid_-99.75_80.05"]


def test_compression_estimate_matches_numcodecs_and_the_built_store(tmp_path):
    root, store = tmp_path / "in", tmp_path / "store.zarr"
    # All land and no landmask: the stored shards hold the tiles' pixels only, no water fill.
    mosaic("synth", "--out", root, "--tiles", ",".join(TILES), "--years", "2024",
           "--land-fraction", "1", "--seed", "3")
    mosaic("plan", "--input", root, "--json", tmp_path / "plan.json", cwd=REPO)
    plan = json.loads((tmp_path / "plan.json").read_text())
    (b,) = plan["bands"]
    assert b["grid"]["name"] == "80-90"

    # What the plan says it measures: the first 4 MiB of embeddings and 128 KiB of scales of
    # (here all three) tiles, compressed with the configured codec (zstd, bands.toml's level).
    config = tomllib.loads((REPO / "bands.toml").read_text())["compression"]
    assert config["codec"] == "zstd"
    codec = Zstd(level=config["level"], checksum=True)
    raw = stored = 0
    for name in TILES:
        d = root / "2024" / name
        for path, limit in [(d / f"{name}.npy", 4 << 20), (d / f"{name}_scales.npy", (4 << 20) // 32)]:
            data = np.load(path, mmap_mode="r").tobytes()[:limit]
            data = data[: len(data) // 4 * 4]
            raw += len(data)
            stored += len(codec.encode(data))
    ratio = stored / raw
    # numcodecs bundles zstd 1.5.6, the Rust crate 1.5.7: at level 1 they agree within 0.2%, at
    # level 3 they differ by ~0.6% on the synthetic tiles.
    assert abs(plan["compression_ratio"] - ratio) < 0.01 * ratio, (plan["compression_ratio"], ratio)

    # Raw bytes: one R x C shard of 128 int8 + one float32 per pixel per tile.
    mosaic("build", "--input", root, "--out", store, "--band", "80-90", cwd=REPO)
    ds = xr.open_zarr(store, group="80-90", chunks=None)
    pixels = (ds.lat.size // 100) * (ds.lon.size // 3600)
    assert b["raw_bytes"] == len(TILES) * pixels * (128 + 4)
    assert b["estimated_stored_bytes"] == int(b["raw_bytes"] * plan["compression_ratio"])

    # The estimate against the shard bytes the build wrote. The output repeats source pixels
    # (a band pixel is narrower than 10 m), which compresses a little better than the tiles
    # the ratio is measured on: the estimate is an upper bound, within 30%. (80-90 repeats the
    # most: 222 columns per cell since format version 2, 218 before; the estimate was 1.251x
    # the stored bytes there, against the 1.25 this test allowed with 218.)
    actual = sum(p.stat().st_size for a in ("embeddings", "scales")
                 for p in Path(store, "80-90", a, "c").rglob("*") if p.is_file())
    est = b["estimated_stored_bytes"]
    assert actual <= est < 1.3 * actual, f"estimated {est}, stored {actual} ({est / actual:.3f}x)"


def test_proposed_bands_bound_the_stretch_measured_with_pyproj(tmp_path):
    """`plan --max-stretch 1.25` proposes bands whose stretch (docs/format.md: C over the 10 m
    source pixels across a cell of the most poleward row, at that row's centre latitude) is at
    most 1.25, with the parallel's length from pyproj's geodesic, not the crate's."""
    from pyproj import Geod

    root = tmp_path / "in"
    mosaic("synth", "--out", root, "--tiles", "grid_-99.95_80.05,grid_110.95_76.85", "--years", "2024")
    text = mosaic("plan", "--input", root, "--max-stretch", "1.25", cwd=REPO).stdout
    proposed = text.split("# proposed bands.toml", 1)[1].split("\n", 1)[1]
    (tmp_path / "proposed.toml").write_text(proposed)
    mosaic("plan", "--input", root, "--bands", tmp_path / "proposed.toml", "--json", tmp_path / "p.json", cwd=REPO)
    bands = tomllib.loads(proposed)["band"]
    assert bands[0]["lat_min"] == 76.0 and bands[-1]["lat_max"] == 81.0 and len(bands) > 1
    assert all(a["lat_max"] == b["lat_min"] for a, b in zip(bands, bands[1:]))
    grids = {b["grid"]["name"]: b["grid"] for b in json.loads((tmp_path / "p.json").read_text())["bands"]}
    # The plan reports the bands that hold tiles (two of them here).
    assert len(grids) == 2 and set(grids) <= {b["name"] for b in bands}
    geod = Geod(ellps="WGS84")
    for band in (b for b in bands if b["name"] in grids):
        poleward_centre = band["lat_max"] - 0.05  # northern bands
        width_m = geod.inv(0.0, poleward_centre, 0.1, poleward_centre)[2]
        cols = grids[band["name"]]["cols_per_cell"]
        stretch = cols / (width_m / 10.0)
        assert stretch <= 1.25, (band, cols, width_m, stretch)
        # And the band is not needlessly narrow: C covers its equatorward cells' 10 m pixels.
        equatorward_centre = band["lat_min"] + 0.05
        assert cols * 10.0 >= geod.inv(0.0, equatorward_centre, 0.1, equatorward_centre)[2] * 0.99


@pytest.mark.parametrize("name", ["grid_179.95_-0.05", "grid_-179.95_-0.05", "grid_5.95_70.05"])
def test_synth_tiles_have_the_geometry_pyproj_gives(tmp_path, name):
    """A synthetic tile's npy shape and its landmask's georeference (CRS, origin, 10 m pixels)
    are those of tessera_ref's pyproj computation of TESSERA's rule: at the equator, on both
    sides of the antimeridian, and at 70N."""
    import rasterio

    import tessera_ref as ref

    root = tmp_path / "in"
    mosaic("synth", "--out", root, "--tiles", name, "--years", "2024", "--landmasks", "--land-fraction", "1")
    epsg, origin_e, origin_n, h, w = ref.tile_geometry(name)
    emb = np.load(root / "2024" / name / f"{name}.npy", mmap_mode="r")
    assert emb.shape == (h, w, 128)
    with rasterio.open(root / "global_0.1_degree_tiff_all" / f"{name}.tiff") as f:
        assert f.crs.to_epsg() == epsg
        assert (f.height, f.width) == (h, w)
        t = f.transform
        assert abs(t.c - origin_e) < 1e-3 and abs(t.f - origin_n) < 1e-3, (t, origin_e, origin_n)
        assert (t.a, t.e) == (10.0, -10.0)
