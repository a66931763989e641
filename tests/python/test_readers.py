"""Every reader users have decodes the store the same way: zarr-python (its own codec pipeline
and the zarrs pipeline) and tensorstore read the coordinates and a box identically, and the
coordinates are what the grid says, bit for bit. The coordinates are compressed (blosc zstd with
bit shuffling): opening a band reads well under 1 MB where the raw `lon` alone was 11.7 MB."""

import json

import numpy as np
import pytest
import xarray as xr
import zarr

ts = pytest.importorskip("tensorstore")
pytest.importorskip("zarrs")


def grid_coordinates(store, band):
    """lat and lon of the band's pixel centres, computed here from the documented grid."""
    g = json.loads((store / band / "zarr.json").read_text())["attributes"]["tessera_mosaic"]["grid"]
    R, C = g["rows_per_cell"], g["cols_per_cell"]
    rows = (g["lat_end_index"] - g["lat_start_index"]) * R
    lat = (g["lat_start_index"] * R + np.arange(rows) + 0.5) / (10.0 * R) - 90.0
    lon = (np.arange(3600 * C) + 0.5) / (10.0 * C) - 180.0
    return lat, lon


def read_with(pipeline, store, band):
    zarr.config.set({"codec_pipeline.path": pipeline})
    try:
        ds = xr.open_zarr(store, group=band, chunks=None)
        return ds.lat.values, ds.lon.values
    finally:
        zarr.config.set({"codec_pipeline.path": "zarr.core.codec_pipeline.BatchedCodecPipeline"})


@pytest.mark.parametrize("band", ["70-80", "S70-S60"])
def test_every_reader_reads_the_coordinates_the_grid_gives(sample, band):
    store = sample["store"]
    lat, lon = grid_coordinates(store, band)
    for pipeline in ("zarr.core.codec_pipeline.BatchedCodecPipeline", "zarrs.ZarrsCodecPipeline"):
        got_lat, got_lon = read_with(pipeline, store, band)
        np.testing.assert_array_equal(got_lat, lat, err_msg=pipeline)
        np.testing.assert_array_equal(got_lon, lon, err_msg=pipeline)
    for name, want in (("lat", lat), ("lon", lon)):
        array = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": str(store / band / name)}}).result()
        np.testing.assert_array_equal(array.read().result(), want, err_msg=f"tensorstore {name}")
        # One object each, compressed to a few percent of the raw float64 values.
        objects = [p for p in (store / band / name / "c").rglob("*") if p.is_file()]
        assert len(objects) == 1, objects
        assert objects[0].stat().st_size < 0.02 * want.nbytes, (name, objects[0].stat().st_size, want.nbytes)


def test_every_reader_reads_the_same_box(sample):
    store, band = sample["store"], "70-80"
    ds = xr.open_zarr(store, group=band, chunks=None)
    # The box around the first NORTH tile's centre (6.0E 70.05N), across its inner chunks.
    r0 = int(np.searchsorted(ds.lat.values, 70.03))
    c0 = int(np.searchsorted(ds.lon.values, 5.97))
    box = dict(year=0, lat=slice(r0, r0 + 90), lon=slice(c0, c0 + 70))
    want_e = ds.embeddings.isel(**box).values
    want_s = ds.scales.isel(**box).values
    assert np.isfinite(want_s).mean() > 0.5  # the box holds data
    zarr.config.set({"codec_pipeline.path": "zarrs.ZarrsCodecPipeline"})
    try:
        z = xr.open_zarr(store, group=band, chunks=None)
        np.testing.assert_array_equal(z.embeddings.isel(**box).values, want_e)
        np.testing.assert_array_equal(z.scales.isel(**box).values, want_s)
    finally:
        zarr.config.set({"codec_pipeline.path": "zarr.core.codec_pipeline.BatchedCodecPipeline"})
    for name, want in (("embeddings", want_e), ("scales", want_s)):
        array = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": str(store / band / name)}}).result()
        got = array[0, r0:r0 + 90, c0:c0 + 70].read().result()
        np.testing.assert_array_equal(got, want, err_msg=f"tensorstore {name}")
