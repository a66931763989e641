"""`mosaic query` output (.npy + JSON sidecar, GeoTIFF) against xarray reading the store."""

import json

import numpy as np
import pytest
import rasterio
import xarray as xr

from conftest import mosaic


def band(sample, name):
    return xr.open_zarr(sample["store"], group=name, chunks=None)


def test_npy_box_within_one_band_equals_xarray(sample, tmp_path):
    out = tmp_path / "box.npy"
    mosaic("query", "--store", sample["store"], "--lat", "70.02:70.05", "--lon", "5.97:6.03", "-o", out)
    emb = np.load(out)
    scales = np.load(tmp_path / "box_scales.npy")
    meta = json.loads((tmp_path / "box.json").read_text())
    ds = band(sample, "70-80").sel(lat=slice(70.02, 70.05), lon=slice(5.97, 6.03))
    assert emb.shape == (2, ds.lat.size, ds.lon.size, 128) and emb.dtype == np.int8
    np.testing.assert_array_equal(emb, ds.embeddings.values)
    np.testing.assert_array_equal(scales, ds.scales.values)
    np.testing.assert_array_equal(meta["lat"], ds.lat.values)
    np.testing.assert_array_equal(meta["lon"], ds.lon.values)
    assert meta["year"] == [2023, 2024]
    # Columns per cell from the whole band as xarray reads it: 3600 cells around the globe.
    whole = band(sample, "70-80")
    assert whole.lon.size % 3600 == 0
    cols_per_cell = whole.lon.size // 3600
    assert meta["row_sources"] == [{"band": "70-80", "rows": [0, ds.lat.size], "cols_per_cell": cols_per_cell, "resampled": False}]
    assert not np.isnan(scales).all() and np.isnan(scales).any()


def test_box_across_a_band_edge_is_resampled_by_nearest_column(sample, tmp_path):
    out = tmp_path / "edge.npy"
    mosaic("query", "--store", sample["store"], "--lat", "69.98:70.02", "--lon", "5.92:5.98",
           "--year", "2023", "--dequantize", "-o", out)
    values = np.load(out)[0]
    meta = json.loads((tmp_path / "edge.json").read_text())
    assert not (tmp_path / "edge_scales.npy").exists()
    south, north = meta["row_sources"]
    assert (south["band"], north["band"]) == ("60-70", "70-80")
    # 60-70 has the finer columns: its part is copied as is, 70-80's columns are repeated.
    assert not south["resampled"] and north["resampled"]
    lons = np.array(meta["lon"])
    lats = np.array(meta["lat"])
    assert np.all(np.diff(lats) > 0) and lats[south["rows"][1] - 1] < 70.0 < lats[north["rows"][0]]
    for src in (south, north):
        ds = band(sample, src["band"]).sel(year=2023)
        rows = slice(*src["rows"])
        # The documented rule: band column = floor((lon + 180) * 10 * C), the column whose
        # area holds the output centre (the eastern one on a shared edge).
        cols = np.floor((lons + 180.0) * 10.0 * src["cols_per_cell"]).astype(int)
        part = ds.sel(lat=lats[rows]).isel(lon=cols)
        assert np.all(np.abs(part.lon.values - lons) <= 0.05 / src["cols_per_cell"] + 1e-12)
        want = (part.embeddings * part.scales).transpose("lat", "lon", "channel").values
        np.testing.assert_array_equal(values[rows], want)


def test_geotiff_is_georeferenced_north_up_and_equals_xarray(sample, tmp_path):
    lat0, lat1, lon0, lon1 = 70.03, 70.06, 179.91, 179.99
    mosaic("query", "--store", sample["store"], "--lat", f"{lat0}:{lat1}", "--lon", f"{lon0}:{lon1}",
           "--year", "2024", "--dequantize", "-o", tmp_path / "t.tif")
    whole = band(sample, "70-80")
    # The band grid, as xarray reads it: rows and columns per 0.1-degree cell.
    rows_per_cell, cols_per_cell = whole.lat.size // 100, whole.lon.size // 3600
    lat_step, lon_step = 0.1 / rows_per_cell, 0.1 / cols_per_cell
    box = whole.sel(year=2024, lat=slice(lat0, lat1), lon=slice(lon0, lon1))
    want = (box.embeddings * box.scales).transpose("lat", "lon", "channel").values[::-1]  # north first
    with rasterio.open(tmp_path / "t.tif") as f:
        assert f.count == 128 and f.crs.to_epsg() == 4326
        assert f.dtypes[0] == "float32"
        assert (f.height, f.width) == want.shape[:2]
        data = np.moveaxis(f.read(), 0, -1)  # (row, col, band), row 0 = north
        # The transform from the band grid: the box's pixel edges, north up.
        t = f.transform
        west = -180.0 + np.ceil((lon0 + 180.0) / lon_step - 0.5) * lon_step
        north = 70.0 + (np.floor((lat1 - 70.0) / lat_step - 0.5) + 1) * lat_step
        assert np.allclose([t.a, t.b, t.c, t.d, t.e, t.f], [lon_step, 0, west, 0, -lat_step, north],
                           rtol=0, atol=1e-9), t
        # Each pixel centre is the coordinate xarray gives it.
        assert np.allclose(t.c + (np.arange(f.width) + 0.5) * t.a, box.lon.values, atol=1e-9)
        assert np.allclose(t.f + (np.arange(f.height) + 0.5) * t.e, box.lat.values[::-1], atol=1e-9)
    assert np.isfinite(want).any() and np.isnan(want).any()
    np.testing.assert_array_equal(data, want)


@pytest.mark.parametrize("lat,lon,message", [
    ("55:50", "100:110", "must be less than"),
    ("-91:-80", "100:110", "within -90..90"),
    ("0:1", "0:1", "holds no pixel"),
])
def test_bad_ranges_give_clear_errors(sample, tmp_path, lat, lon, message):
    proc = mosaic("query", "--store", sample["store"], "--lat", lat, "--lon", lon, "-o", tmp_path / "x.npy", check=False)
    assert proc.returncode == 2 and message in proc.stderr
