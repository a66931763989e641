"""`mosaic preview`: the transparent pixels of the PCA picture are exactly the sampled band pixels
without data, as xarray reads them from the store's `scales` (NaN = no data)."""

import math

import numpy as np
import xarray as xr
from PIL import Image

from conftest import REPO, mosaic


def test_transparent_pixels_are_exactly_the_no_data_pixels(tmp_path):
    # Two cells at 80N with water (landmasks), so no data lies inside the built cells too.
    root, store = tmp_path / "in", tmp_path / "store.zarr"
    mosaic("synth", "--out", root, "--tiles", "grid_-99.95_80.05,grid_-99.85_80.05", "--years", "2024",
           "--landmasks", "--land-fraction", "0.6", "--seed", "4")
    mosaic("build", "--input", root, "--out", store, "--band", "80-90", cwd=REPO)
    ds = xr.open_zarr(store, group="80-90", chunks=None)
    rows_per_cell, cols_per_cell = ds.lat.size // 100, ds.lon.size // 3600
    step_lat, step_lon = 0.1 / rows_per_cell, 0.1 / cols_per_cell
    # 4 x 2 cells around the two built ones (the others absent): edges a quarter pixel inside
    # the cells' outer edges, so "the band pixels whose centre is in the box" is not a
    # question of rounding.
    lon0, lon1 = -100.1 + step_lon / 4, -99.7 - step_lon / 4
    lat0, lat1 = 80.0 + step_lat / 4, 80.2 - step_lat / 4
    window = ds.sel(year=2024, lat=slice(lat0, lat1), lon=slice(lon0, lon1))
    nrows, ncols = window.lat.size, window.lon.size
    assert (nrows, ncols) == (2 * rows_per_cell, 4 * cols_per_cell)
    nodata = np.isnan(window.scales.values)  # (lat ascending, lon)

    max_width = 257
    png = tmp_path / "p.png"
    mosaic("preview", "--store", store, "--band", "80-90", "--year", "2024",
           "--bbox", f"{lon0!r},{lat0!r},{lon1!r},{lat1!r}", "--width", max_width, "-o", png)
    img = np.asarray(Image.open(png).convert("RGBA"))
    alpha = img[..., 3]

    # Each image pixel shows the band pixel at its centre (image row 0 = north).
    scale = max(ncols / max_width, 1.0)
    height, width = math.ceil(nrows / scale), math.ceil(ncols / scale)
    assert alpha.shape == (height, width)
    rows = np.array([nrows - 1 - min(int((i + 0.5) * scale), nrows - 1) for i in range(height)])
    cols = np.array([min(int((j + 0.5) * scale), ncols - 1) for j in range(width)])
    want_transparent = nodata[np.ix_(rows, cols)]

    assert set(np.unique(alpha)) <= {0, 255}
    differ = np.argwhere((alpha == 0) != want_transparent)
    assert differ.size == 0, f"{len(differ)} pixels differ, first (row, col) {differ[0].tolist()}"
    # The picture holds data, absent cells and no-data pixels inside the built cells (water).
    built = np.zeros((nrows, ncols), bool)
    built[:rows_per_cell, cols_per_cell:3 * cols_per_cell] = True  # 80.0-80.1, -100.0..-99.8
    in_built = built[np.ix_(rows, cols)]
    assert (alpha == 255).sum() > 0
    assert (~in_built).any() and want_transparent[~in_built].all()
    assert (want_transparent & in_built).sum() > 100
