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


def test_geotiff_is_georeferenced_north_up_and_equals_the_npy(sample, tmp_path):
    args = ["--store", sample["store"], "--lat", "70.03:70.06", "--lon", "179.91:179.99", "--year", "2024", "--dequantize"]
    mosaic("query", *args, "-o", tmp_path / "t.npy")
    mosaic("query", *args, "-o", tmp_path / "t.tif")
    npy = np.load(tmp_path / "t.npy")[0]
    meta = json.loads((tmp_path / "t.json").read_text())
    with rasterio.open(tmp_path / "t.tif") as f:
        assert f.count == 128 and f.crs.to_epsg() == 4326
        assert f.dtypes[0] == "float32"
        data = f.read()  # (band, row, col), row 0 = north
        west, north = f.transform.c, f.transform.f
        assert abs(west - (meta["lon"][0] - meta["lon_step"] / 2)) < 1e-9
        assert abs(north - (meta["lat"][-1] + meta["lat_step"] / 2)) < 1e-9
        assert abs(f.transform.a - meta["lon_step"]) < 1e-12 and abs(f.transform.e + meta["lat_step"]) < 1e-12
    np.testing.assert_array_equal(np.moveaxis(data, 0, -1)[::-1], npy)


@pytest.mark.parametrize("lat,lon,message", [
    ("55:50", "100:110", "must be less than"),
    ("-91:-80", "100:110", "within -90..90"),
    ("0:1", "0:1", "holds no pixel"),
])
def test_bad_ranges_give_clear_errors(sample, tmp_path, lat, lon, message):
    proc = mosaic("query", "--store", sample["store"], "--lat", lat, "--lon", lon, "-o", tmp_path / "x.npy", check=False)
    assert proc.returncode == 2 and message in proc.stderr
