"""Read what `mosaic build` wrote with xarray, zarr-python and rioxarray, and check every sampled
value against the source tiles at the pixel an independent pyproj computation assigns."""

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

import tessera_ref as ref
from conftest import NORTH, SOUTH

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tile_geometry.csv"


def open_band(store, band, **kw):
    """Open a band as users do; chunks=None reads lazily without building a dask graph over
    millions of inner chunks (the documented way to query regions)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return xr.open_zarr(store, group=band, chunks=kw.pop("chunks", None), **kw)


def test_default_open_zarr_gives_dask_arrays_chunked_like_inner_chunks(sample):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(sample["store"], group="70-80")
    assert ds.embeddings.chunks is not None
    assert ds.embeddings.data.chunksize[1:] == tuple(ds.embeddings.encoding["chunks"][1:])


def test_reference_geometry_matches_the_proj_fixture():
    """The test's own pyproj geometry agrees with the shared fixture (so it can judge ours)."""
    rows = FIXTURE.read_text().strip().splitlines()[1:]
    for line in rows:
        name, epsg, oe, on, h, w = line.split(",")
        g = ref.tile_geometry(name)
        assert g[0] == int(epsg) and (g[3], g[4]) == (int(h), int(w)), name
        assert abs(g[1] - float(oe)) < 1e-3 and abs(g[2] - float(on)) < 1e-3, name
    assert len(rows) == 60


@pytest.mark.parametrize("band", ["70-80", "S70-S60"])
def test_opens_without_warnings_with_cf_coordinates(sample, band):
    ds = open_band(sample["store"], band)
    assert ds.embeddings.dims == ("year", "lat", "lon", "channel")
    assert ds.scales.dims == ("year", "lat", "lon")
    assert ds.embeddings.dtype == np.int8 and ds.scales.dtype == np.float32
    # Tiles carry no observation counts: the array is absent (docs/format.md), not all fill.
    assert set(ds.data_vars) == {"embeddings", "scales"}
    assert list(ds.year.values) == [2023, 2024]
    assert ds.channel.size == 128
    lat = ds.lat.values
    assert np.all(np.diff(lat) > 0), "lat ascending"
    lo, hi = (70.0, 80.0) if band == "70-80" else (-70.0, -60.0)
    assert lo < lat[0] < lo + 1e-3 and hi - 1e-3 < lat[-1] < hi
    assert -180 < ds.lon.values[0] < -179.999 and 179.999 < ds.lon.values[-1] < 180
    assert ds.lat.attrs["units"] == "degrees_north" and ds.lon.attrs["standard_name"] == "longitude"
    assert "spatial_ref" in ds.coords
    assert ds.attrs["proj:code"] == "EPSG:4326"
    assert ds.attrs["geospatial_lat_min"] == lo and ds.attrs["geospatial_lat_max"] == hi
    # Every cell is exactly R x C pixels.
    assert ds.lat.size % 100 == 0 and ds.lon.size % 3600 == 0


def test_rioxarray_finds_epsg_4326(sample):
    import rioxarray  # noqa: F401

    ds = open_band(sample["store"], "70-80")
    assert ds.rio.crs.to_epsg() == 4326
    assert ds.embeddings.rio.crs.to_epsg() == 4326


def test_zarr_python_lists_the_bands(sample):
    g = zarr.open_group(sample["store"], mode="r")
    assert sorted(g.group_keys()) == ["60-70", "70-80", "S70-S60"]
    assert g["70-80"]["embeddings"].shape[0] == 2


def test_sel_returns_the_expected_shape(sample):
    ds = open_band(sample["store"], "70-80")
    rows_per_cell = ds.lat.size // 100
    cols_per_cell = ds.lon.size // 3600
    # Exactly one cell.
    one = ds.sel(lat=slice(70.0, 70.1), lon=slice(5.9, 6.0))
    assert one.embeddings.shape == (2, rows_per_cell, cols_per_cell, 128)
    # An arbitrary box: the pixel centres inside it, counted from the grid definition.
    a, b, c, d = 70.0123, 70.0789, 5.93, 6.071
    box = ds.sel(lat=slice(a, b), lon=slice(c, d))
    step_lat, step_lon = 0.1 / rows_per_cell, 0.1 / cols_per_cell
    n_lat = math.floor((b - 70.0) / step_lat - 0.5) - math.ceil((a - 70.0) / step_lat - 0.5) + 1
    n_lon = math.floor((d + 180) / step_lon - 0.5) - math.ceil((c + 180) / step_lon - 0.5) + 1
    assert box.embeddings.shape == (2, n_lat, n_lon, 128)


def check_tile(ds, sample, year, name, rng, n=3000):
    """Compare n random pixels of a tile's cell (plus its edges) with the source."""
    lon_c, lat_c = ref.parse_name(name)
    cell = ds.sel(lat=slice(lat_c - 0.05, lat_c + 0.05), lon=slice(lon_c - 0.05, lon_c + 0.05))
    lats, lons = cell.lat.values, cell.lon.values
    # Every pixel centre selected belongs to this cell.
    assert {ref.cell_name(*ref.cell_of(lo, la)) for lo in lons[[0, -1]] for la in lats[[0, -1]]} == {name}
    ri = rng.integers(0, lats.size, n)
    ci = rng.integers(0, lons.size, n)
    # Add the whole first/last row and column, where pixels fall outside the tile.
    ri = np.concatenate([ri, np.zeros(lons.size, int), np.full(lons.size, lats.size - 1), np.arange(lats.size), np.arange(lats.size)])
    ci = np.concatenate([ci, np.arange(lons.size), np.arange(lons.size), np.zeros(lats.size, int), np.full(lats.size, lons.size - 1)])
    rows, cols = ref.source_pixels(name, lons[ci], lats[ri])
    tile = ref.Tile(sample["root"], year, name, sample["landmasks"])
    want_emb, want_sc = tile.expected(rows, cols)
    got = cell.sel(year=year)
    emb = got.embeddings.values
    sc = got.scales.values
    got_emb, got_sc = emb[ri, ci], sc[ri, ci]
    bad = np.flatnonzero(np.any(got_emb != want_emb, axis=1) | ~((got_sc == want_sc) | (np.isnan(got_sc) & np.isnan(want_sc))))
    assert bad.size == 0, f"{name} {year}: {bad.size} pixels differ, first at lat {lats[ri[bad[0]]]} lon {lons[ci[bad[0]]]}"
    return (rows < 0).sum(), np.isnan(want_sc).sum(), ri.size


@pytest.mark.parametrize("band,names", [("70-80", NORTH), ("S70-S60", SOUTH)])
def test_values_equal_the_source_pixel_pyproj_assigns(sample, band, names):
    ds = open_band(sample["store"], band)
    rng = np.random.default_rng(5)
    totals = np.zeros(3, int)
    for year in ([2023, 2024] if band == "70-80" else [2023]):
        for name in names:
            totals += check_tile(ds, sample, year, name, rng)
    outside, nodata, checked = totals
    # The samples exercised data and no-data (water, invalid scales, and any pixel of the
    # cell's edge rows that falls outside its tile).
    assert nodata > outside and nodata < checked / 2, totals


def test_missing_tiles_read_as_fill(sample):
    ds = open_band(sample["store"], "S70-S60")
    # 2024 has no southern tiles: the whole cell is fill.
    cell = ds.sel(year=2024, lat=slice(-65.0, -64.9), lon=slice(-66.1, -66.0))
    assert np.isnan(cell.scales.values).all()
    assert (cell.embeddings.values == 0).all()
    # A cell with no tile in any year, next to a built one.
    empty = ds.sel(year=2023, lat=slice(-65.0, -64.9), lon=slice(-66.3, -66.2))
    assert np.isnan(empty.scales.values).all()


def test_dequantised_values(sample):
    """embeddings x scales, as xarray computes it from the store, equals numpy's product of the
    source tile's int8 vector and its scale (float32) at the pixel pyproj assigns, and is NaN
    exactly where the source has no data."""
    ds = open_band(sample["store"], "70-80")
    name = NORTH[0]
    lon_c, lat_c = ref.parse_name(name)
    sub = ds.sel(year=2023, lat=slice(lat_c - 0.01, lat_c + 0.01), lon=slice(lon_c - 0.01, lon_c + 0.01))
    values = (sub.embeddings * sub.scales).transpose("lat", "lon", "channel").values
    assert values.dtype == np.float32
    lats, lons = np.meshgrid(sub.lat.values, sub.lon.values, indexing="ij")
    rows, cols = ref.source_pixels(name, lons.ravel(), lats.ravel())
    tile = ref.Tile(sample["root"], 2023, name, sample["landmasks"])
    q, s = tile.expected(rows, cols)
    want = (q.astype(np.float32) * s[:, None]).reshape(values.shape)
    assert np.isfinite(want).any() and np.isnan(want).any()
    np.testing.assert_array_equal(values, want)  # NaN where both are NaN
    # Not a constant: the values span the int8 range times the scales.
    ok = np.isfinite(want[..., 0])
    assert np.unique(want[ok]).size > 1000
