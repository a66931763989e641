"""The colour path computed by the tests, not by the tool: a year's colour basis from the
store's colour statistics objects (numpy, the formula of docs/format.md "Colour statistics and
the colour basis"), and a picture of a box drawn from the overview pyramid in a given basis
(each picture pixel the stored pixel under its centre, docs/overviews.md "Pictures")."""

import functools
import json

import numpy as np
import xarray as xr
import zarr

from conftest import picture_level


@functools.lru_cache(maxsize=64)
def open_level(store, band, level):
    """An overview level, lazily (kept: a map test draws many tiles from the same levels)."""
    return xr.open_zarr(store, group=f"{band}/overviews/{level}", chunks=None)


def containing(centres, points):
    """Index of the pixel (of a regular axis given by its centres) whose area holds each point;
    a point on an edge belongs to the pixel after it (the writer's rule for exact ties, which
    happen wherever a level halves an even number of pixels)."""
    step = float(centres[1] - centres[0])
    origin = float(centres[0]) - step / 2
    return np.floor((np.asarray(points, float) - origin) / step + 1e-6).astype(int)


def under(ds, lats, lons):
    """The pixels of `ds` under the points (lats x lons)."""
    return ds.isel(lat=containing(ds.lat.values, lats), lon=containing(ds.lon.values, lons))


def statistics_cells(store, band, year_index):
    """(lat cell, lon cell) of the band's cells with colour statistics in a year, from the
    chunk objects on disk (reading the whole sparse array would allocate it densely)."""
    year = store / band / "colour_statistics" / "sums" / "c" / str(year_index)
    return sorted((int(p.parent.parent.name), int(p.parent.name)) for p in year.glob("*/*/0"))


def basis_from_statistics(store, year):
    """The year's colour basis computed here from every band's `colour_statistics` objects:
    merged count, mean and covariance, the top three eigenvectors (largest entry positive), and
    per component the 2nd and 98th percentiles of the projections of the weighted sample. Below
    16 384 sampled pixels the weighted sample is every cell's sampled pixel, so low and high are
    the sorted projections' entries at (n - 1) * 2 // 100 and (n - 1) * 98 // 100 (asserted)."""
    root = zarr.open_group(store, mode="r")
    n, total, outer, samples, cells = 0.0, np.zeros(128), np.zeros(128 * 129 // 2), [], {}
    for band in sorted(p.parent.name for p in store.glob("*/colour_statistics")):
        meta = json.loads((store / band / "zarr.json").read_text())["attributes"]["tessera_mosaic"]
        y = year - meta["first_year"]
        if not 0 <= y < meta["years"]:
            continue
        present = statistics_cells(store, band, y)
        if not present:
            continue
        sums = np.array([root[f"{band}/colour_statistics/sums"][y, i, j] for i, j in present])
        cells[band] = len(present)
        n += sums[:, 0].sum()
        total += sums[:, 1:129].sum(0)
        outer += sums[:, 129:].sum(0)
        samples += [root[f"{band}/colour_statistics/sample"][y, i, j] for i, j in present]
    mean = total / n
    m = np.zeros((128, 128))
    m[np.triu_indices(128)] = outer
    m = m + np.triu(m, 1).T
    cov = (m - n * np.outer(mean, mean)) / (n - 1)
    values, vectors = np.linalg.eigh(cov)
    components = []
    for k in range(3):
        v = vectors[:, -1 - k]
        components.append(v if v[np.argmax(np.abs(v))] > 0 else -v)  # largest entry positive
    px = np.concatenate(samples)  # (cells x 64, 128), NaN rows where a cell had fewer pixels
    px = px[np.isfinite(px[:, 0])].astype(np.float64)
    assert 2 < len(px) < 16384, len(px)
    proj = np.sort((px - mean) @ np.array(components).T, axis=0)
    k = len(proj) - 1
    return {"year": year, "pixels": n, "cells": cells, "mean": mean, "components": np.array(components),
            "variances": values[::-1][:3], "low": proj[k * 2 // 100], "high": proj[k * 98 // 100],
            "sampled": len(px)}


def assert_same_basis(got, want):
    """A stored basis (JSON) equals one computed by `basis_from_statistics`, up to the last bits
    of the f64 sums (summed in another order)."""
    assert got["year"] == want["year"] and got["cells"] == want["cells"], (got["cells"], want["cells"])
    assert got["pixels"] == want["pixels"]
    np.testing.assert_allclose(got["mean"], want["mean"], rtol=1e-9, atol=1e-9)
    for k in range(3):
        assert np.dot(want["components"][k], got["components"][k]) > 0.999999, k
    np.testing.assert_allclose(got["variances"], want["variances"], rtol=1e-9)
    np.testing.assert_allclose(got["low"], want["low"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got["high"], want["high"], rtol=1e-9, atol=1e-12)


def pixels_under(store, year, bbox, shape, levels):
    """The dequantised stored pixels under the centres of a picture of `bbox` (W, S, E, N)
    drawn `shape` (rows, columns), at the level given per band: float64 (rows, columns, 128),
    NaN where the scale is NaN or no band lies."""
    lon0, lat0, lon1, lat1 = bbox
    h, w = shape
    lats = lat1 - (np.arange(h) + 0.5) * (lat1 - lat0) / h
    lons = lon0 + (np.arange(w) + 0.5) * (lon1 - lon0) / w
    out = np.full((h, w, 128), np.nan)
    for band, level in levels.items():
        ds = open_level(store, band, level).sel(year=year)
        lo, hi = float(ds.lat[0]) - float(ds.lat[1] - ds.lat[0]) / 2, float(ds.lat[-1]) + float(ds.lat[1] - ds.lat[0]) / 2
        rows = np.where((lats >= lo) & (lats < hi))[0]
        if rows.size == 0:
            continue
        part = under(ds, lats[rows], lons)
        s = part.scales.values.astype(np.float64)
        out[rows] = part.embeddings.values.astype(np.float64) * s[..., None]
    return out


def paint(pixels, basis):
    """RGBA of dequantised pixels (NaN: transparent) in a basis:
    rgb[k] = round(255 * clamp(((x - mean) . components[k] - low[k]) / (high[k] - low[k]), 0, 1))."""
    comps, mean = np.array(basis["components"]), np.array(basis["mean"])
    low, high = np.array(basis["low"]), np.array(basis["high"])
    ok = np.isfinite(pixels[..., 0])
    t = ((np.nan_to_num(pixels) - mean) @ comps.T - low) / (high - low)
    rgba = np.zeros(pixels.shape[:2] + (4,), np.uint8)
    rgba[ok, :3] = np.round(255 * np.clip(t[ok], 0, 1)).astype(np.uint8)
    rgba[ok, 3] = 255
    return rgba


def render_like_mosaic(store, basis, bbox, shape, levels):
    """A picture as RGBA: each picture pixel the stored pixel under its centre at the level
    given per band, in the basis's colours, transparent where there is no data."""
    return paint(pixels_under(store, basis["year"], bbox, shape, levels), basis)


def assert_drawn_in(img, want, min_opaque=100):
    """A picture the tool drew (RGBA array) equals the test's drawing: the same transparent
    pixels, and colours within 1 level (a projection rounded at a .5 boundary). Returns the
    number of opaque pixels."""
    assert img.shape == want.shape, (img.shape, want.shape)
    np.testing.assert_array_equal(img[..., 3], want[..., 3])
    opaque = want[..., 3] == 255
    assert opaque.sum() >= min_opaque, opaque.sum()
    diff = np.abs(img[..., :3].astype(int) - want[..., :3].astype(int))[opaque]
    if opaque.any():
        assert diff.max() <= 1, (diff.max(), (diff > 1).mean())
    return int(opaque.sum())


def tile_bbox(z, x, y):
    """(W, S, E, N) of a map tile: Leaflet's EPSG:4326 scheme, 180/2^z degrees a side, x from
    -180, y from +90 (docs/stac.md, "Tiles")."""
    s = 180 / 2 ** z
    return (-180 + x * s, 90 - (y + 1) * s, -180 + (x + 1) * s, 90 - y * s)


def tile_at(lon, lat, z):
    """(x, y) of the zoom-z tile holding a point."""
    s = 180 / 2 ** z
    return int((lon + 180) // s), int((90 - lat) // s)


def tile_pixels(store, year, z, x, y, size=256):
    """The pixels of a map tile as the test reads them (see `pixels_under`): every band with
    overviews whose year axis holds the year and whose latitudes overlap the tile, each at the
    level the documented rule gives for the tile's pixels."""
    box = tile_bbox(z, x, y)
    levels = {}
    for band in sorted(p.parent.name for p in store.glob("*/overviews")):
        meta = json.loads((store / band / "zarr.json").read_text())["attributes"]["tessera_mosaic"]
        south, north = meta["grid"]["lat_start_index"] / 10 - 90, meta["grid"]["lat_end_index"] / 10 - 90
        if 0 <= year - meta["first_year"] < meta["years"] and north > box[1] and south < box[3]:
            levels[band] = picture_level(store, band, box, (size, size))
    return pixels_under(store, year, box, (size, size), levels)


def render_tile(store, basis, z, x, y):
    """A map tile as the test draws it in a basis."""
    return paint(tile_pixels(store, basis["year"], z, x, y), basis)
