"""`mosaic preview`: the transparent pixels of the picture are exactly the no-data pixels of the
overview level it read (as xarray reads that level's `scales`: NaN = no data), at the centre of
each picture pixel; and a band built with --no-overviews still gets a picture."""


import numpy as np
import xarray as xr
from PIL import Image

from conftest import REPO, mosaic, picture_level


def test_transparent_pixels_are_exactly_the_no_data_pixels(tmp_path):
    # Two cells at 80N with water (landmasks), so no data lies inside the built cells too.
    root, store = tmp_path / "in", tmp_path / "store.zarr"
    mosaic("synth", "--out", root, "--tiles", "grid_-99.95_80.05,grid_-99.85_80.05", "--years", "2024",
           "--landmasks", "--land-fraction", "0.6", "--seed", "4")
    mosaic("build", "--input", root, "--out", store, "--band", "80-90", cwd=REPO)
    # 4 x 2 cells around the two built ones (the others absent).
    lon0, lon1, lat0, lat1 = -100.1, -99.7, 80.0, 80.2
    png = tmp_path / "p.png"
    text = mosaic("preview", "--store", store, "--bbox", f"{lon0},{lat0},{lon1},{lat1}",
                  "--width", "160", "-o", png).stdout
    img = np.asarray(Image.open(png).convert("RGBA"))
    alpha = img[..., 3]
    h, w = alpha.shape
    assert (h, w) == (80, 160)  # square degrees, at most 160 px across
    # The level from the documented rule and the store's layout; the tool says the same.
    level = picture_level(store, "80-90", (lon0, lat0, lon1, lat1), (h, w))
    assert f"80-90 level {level}" in text, text
    ds = xr.open_zarr(store, group=f"80-90/overviews/{level}", chunks=None).sel(year=2024)
    lats = lat1 - (np.arange(h) + 0.5) * (lat1 - lat0) / h
    lons = lon0 + (np.arange(w) + 0.5) * (lon1 - lon0) / w
    # The level's pixel whose area holds each picture pixel's centre.
    index = lambda c, p: np.floor((p - (c[0] - (c[1] - c[0]) / 2)) / (c[1] - c[0]) + 1e-6).astype(int)  # noqa: E731
    nodata = np.isnan(ds.scales.isel(lat=index(ds.lat.values, lats), lon=index(ds.lon.values, lons)).values)

    assert set(np.unique(alpha)) <= {0, 255}
    differ = np.argwhere((alpha == 0) != nodata)
    assert differ.size == 0, f"{len(differ)} pixels differ, first (row, col) {differ[0].tolist()}"
    # The picture holds data, absent cells and no-data pixels inside the built cells (water).
    in_built = (lats[:, None] < 80.1) & (lons[None, :] > -100.0) & (lons[None, :] < -99.8)
    assert (alpha == 255).sum() > 0
    assert nodata[~in_built].all()
    assert (nodata & in_built).sum() > 100


def test_a_band_without_overviews_is_drawn_from_its_arrays(tmp_path):
    root, store = tmp_path / "in", tmp_path / "store.zarr"
    mosaic("synth", "--out", root, "--tiles", "grid_-99.95_80.05", "--years", "2024", "--seed", "4")
    mosaic("build", "--input", root, "--out", store, "--band", "80-90", "--no-overviews", cwd=REPO)
    assert not (store / "80-90" / "overviews").exists()
    assert not (store / "80-90" / "colour_statistics").exists()
    text = mosaic("preview", "--store", store, "--band", "80-90", "-o", tmp_path / "p.png").stdout
    assert "no overviews" in text
    img = np.asarray(Image.open(tmp_path / "p.png").convert("RGBA"))
    assert (img[..., 3] == 255).mean() > 0.5
    # A box needs overviews: the message says so.
    bad = mosaic("preview", "--store", store, "--bbox", "-100,80,-99.9,80.1", "-o", tmp_path / "q.png",
                 check=False)
    assert bad.returncode != 0 and "overviews" in bad.stderr
