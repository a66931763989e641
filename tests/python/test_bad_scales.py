"""Pixels whose scale is negative, +inf or -inf become no data (scale NaN, embeddings 0); their
valid neighbours keep their source values. Checked at the source pixel pyproj assigns."""

import numpy as np
import xarray as xr

import tessera_ref as ref
from conftest import REPO, mosaic

NAME = "grid_-99.95_80.05"


def test_negative_and_infinite_scales_are_no_data(tmp_path):
    root, store = tmp_path / "in", tmp_path / "store.zarr"
    mosaic("synth", "--out", root, "--tiles", NAME, "--years", "2024", "--land-fraction", "1",
           "--seed", "5")
    path = root / "2024" / NAME / f"{NAME}_scales.npy"
    scales = np.load(path)
    # A patch in the middle of the tile: every pixel gets one of four kinds, so every bad pixel
    # has valid neighbours and the other way round.
    r, c = np.mgrid[500:560, 60:150]
    kind = (r + 2 * c) % 4
    planted = {0: np.float32(-0.01), 1: np.float32(np.inf), 2: np.float32(-np.inf)}
    patch = np.full(r.shape, np.float32(0.02))  # kind 3: valid
    for k, v in planted.items():
        patch[kind == k] = v
    scales[500:560, 60:150] = patch
    np.save(path, scales)

    mosaic("build", "--input", root, "--out", store, "--band", "80-90", cwd=REPO)
    ds = xr.open_zarr(store, group="80-90", chunks=None)
    lon_c, lat_c = ref.parse_name(NAME)
    cell = ds.sel(year=2024, lat=slice(lat_c - 0.05, lat_c + 0.05), lon=slice(lon_c - 0.05, lon_c + 0.05))
    lons, lats = np.meshgrid(cell.lon.values, cell.lat.values)
    rows, cols = ref.source_pixels(NAME, lons.ravel(), lats.ravel())
    emb = cell.embeddings.values.reshape(-1, 128)
    sc = cell.scales.values.ravel()
    source = np.load(root / "2024" / NAME / f"{NAME}.npy", mmap_mode="r")

    in_patch = (rows >= 500) & (rows < 560) & (cols >= 60) & (cols < 150)
    k = np.where(in_patch, (rows + 2 * cols) % 4, -1)
    for value in (0, 1, 2):
        bad = k == value
        assert bad.sum() > 500, (value, bad.sum())
        assert np.isnan(sc[bad]).all(), f"scale {planted[value]}: not no data"
        assert (emb[bad] == 0).all(), f"scale {planted[value]}: embeddings not the fill"
    good = k == 3
    assert good.sum() > 500
    assert (sc[good] == np.float32(0.02)).all()
    np.testing.assert_array_equal(emb[good], source[rows[good], cols[good]])
