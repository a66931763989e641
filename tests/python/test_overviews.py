"""The overview pyramid, the colour statistics and the year's colour basis, read back with
zarr-python/xarray and recomputed with numpy; `mosaic preview --bbox` pictures compared with a
numpy rendering of the pyramid, across a band edge; what a whole-band picture reads."""

import json
import re

import numpy as np
import pytest
import xarray as xr
import zarr
from PIL import Image

from colours import assert_same_basis, basis_from_statistics, open_level, render_like_mosaic, under
from conftest import mosaic, picture_level

BAND = "70-80"


def level_numbers(store, band):
    attrs = zarr.open_group(store, mode="r")[f"{band}/overviews"].attrs
    return [int(e["asset"]) for e in attrs["multiscales"]["layout"]]


@pytest.mark.parametrize("band", [BAND, "S70-S60"])
def test_each_level_copies_the_pixel_of_the_level_below_under_its_centre(sample, band):
    store = sample["store"]
    finer = xr.open_zarr(store, group=band, chunks=None)
    levels = level_numbers(store, band)
    assert levels[0] == 2 and levels == list(range(2, 2 + len(levels)))
    # A window around the sample's cells of this band (2023 has all of them).
    lon0, lon1 = (5.9, 6.1) if band == BAND else (-66.1, -65.9)
    lat0, lat1 = (70.0, 70.1) if band == BAND else (-65.0, -64.9)
    checked = 0
    for level in levels:
        coarse = open_level(store, band, level)
        win = coarse.sel(year=2023, lat=slice(lat0, lat1), lon=slice(lon0, lon1))
        # The finer level's pixel whose area holds each centre.
        src = under(finer.sel(year=2023), win.lat.values, win.lon.values)
        np.testing.assert_array_equal(win.scales.values, src.scales.values)
        np.testing.assert_array_equal(win.embeddings.values, src.embeddings.values)
        valid = np.isfinite(win.scales.values).sum()
        assert valid > 0, level
        checked += valid
        finer = coarse
    assert len(levels) >= 8
    # The coarsest level has about one or two rows per cell.
    rows_per_cell = round(0.1 / float(finer.lat[1] - finer.lat[0]))
    assert rows_per_cell <= 2


def test_the_pyramid_is_declared_with_the_multiscales_convention(sample):
    from geozarr_toolkit.helpers import detect_conventions, validate_attrs

    root = zarr.open_group(sample["store"], mode="r")
    for band in (BAND, "S70-S60", "60-70"):
        attrs = dict(root[f"{band}/overviews"].attrs)
        assert "multiscales" in detect_conventions(attrs)
        errors = validate_attrs(attrs)
        assert not any(errors.values()), errors
        layout = attrs["multiscales"]["layout"]
        assert attrs["multiscales"]["resampling_method"] == "nearest"
        band_ds = xr.open_zarr(sample["store"], group=band, chunks=None)
        previous = (band_ds.lat.size, band_ds.lon.size)
        for k, entry in enumerate(layout):
            assert entry.get("derived_from") == (layout[k - 1]["asset"] if k else None)
            ds = open_level(sample["store"], band, entry["asset"])
            shape = [ds.lat.size, ds.lon.size]
            assert entry["spatial:shape"] == shape
            a, _, c, _, e, f = entry["spatial:transform"]
            assert np.allclose(ds.lon.values[[0, -1]], [c + a / 2, c + a * (shape[1] - 0.5)])
            assert np.allclose(ds.lat.values[[0, -1]], [f + e / 2, f + e * (shape[0] - 0.5)])
            # The scale from the level below, per axis, as the convention defines it.
            # (Levels keep ceil(n / 2) of each cell's rows and columns, so about 2.)
            sy, sx = entry["transform"]["scale"]
            assert np.isclose(sy, previous[0] / shape[0]) and np.isclose(sx, previous[1] / shape[1])
            group_attrs = dict(root[f"{band}/overviews/{entry['asset']}"].attrs)
            assert group_attrs["spatial:transform"] == entry["spatial:transform"]
            assert "spatial" in detect_conventions(group_attrs) and "proj" in detect_conventions(group_attrs)
            previous = shape
        # A negative control: the same validator rejects a broken declaration, so the passes
        # above mean something.
        for name, broken in broken_multiscales(attrs).items():
            errors = validate_attrs(broken, conventions=["multiscales"])
            assert any(errors.values()), (band, name)


def broken_multiscales(attrs):
    """Copies of a group's attributes, each with its multiscales declaration broken one way."""
    import copy

    def edit(change):
        a = copy.deepcopy(attrs)
        change(a["multiscales"])
        return a

    return {
        "no layout": edit(lambda m: m.pop("layout")),
        "layout not a list": edit(lambda m: m.update(layout={"asset": "2"})),
        "an entry without its asset": edit(lambda m: m["layout"][1].pop("asset")),
        "a scale that is text": edit(lambda m: m["layout"][1]["transform"].update(scale="2")),
    }


def cell_index(band_ds, lon, lat):
    rows = round(0.1 / float(band_ds.lat[1] - band_ds.lat[0]))
    south = float(band_ds.lat[0]) - 0.05 / rows
    return round((lat - 0.05 - south) * 10), round((lon - 0.05 + 180) * 10)


def test_colour_statistics_are_the_exact_sums_of_the_statistics_level(sample):
    store = sample["store"]
    group = zarr.open_group(store, mode="r")[f"{BAND}/colour_statistics"]
    assert "overview level 3" in group.attrs["summary"]
    level = open_level(store, BAND, 3)
    for lon, lat in [(5.95, 70.05), (179.95, 70.05)]:
        i, j = cell_index(level, lon, lat)
        sums = group["sums"][0, i, j, :]
        r, c = round(0.1 / float(level.lat[1] - level.lat[0])), round(0.1 / float(level.lon[1] - level.lon[0]))
        cell = level.sel(year=2023).isel(lat=slice(i * r, (i + 1) * r), lon=slice(j * c, (j + 1) * c))
        s = cell.scales.values.astype(np.float64)
        q = cell.embeddings.values.astype(np.float64)
        ok = np.isfinite(s)
        x = q[ok] * s[ok][:, None]
        assert sums[0] == ok.sum() > 100
        np.testing.assert_allclose(sums[1:129], x.sum(0), rtol=1e-12, atol=1e-9)
        outer = x.T @ x
        np.testing.assert_allclose(sums[129:], outer[np.triu_indices(128)], rtol=1e-12, atol=1e-9)
        sample_px = group["sample"][0, i, j]
        kept = sample_px[np.isfinite(sample_px[:, 0])]
        assert len(kept) == 64
        # Every sampled pixel is one of the cell's pixels.
        as_set = {tuple(np.float32(v)) for v in x.astype(np.float32)}
        assert all(tuple(v) in as_set for v in kept)


def test_one_colour_basis_per_year_is_the_pca_of_every_band(sample):
    """The stored basis equals the PCA and stretch computed here from every band's statistics
    (the sample has fewer than 16 384 sampled pixels, so the weighted sample is all of them)."""
    basis = json.loads((sample["store"] / "_mosaic" / "colour" / "2023.json").read_text())
    want = basis_from_statistics(sample["store"], 2023)
    assert set(want["cells"]) == {"60-70", BAND, "S70-S60"} and want["sampled"] > 100
    assert_same_basis(basis, want)


def run_preview(store, out, *args):
    text = mosaic("preview", "--store", store, *args, "-o", out).stdout
    levels = {b: int(l) for b, l in re.findall(r"([\w-]+) level (\d+)", text)}
    read = re.search(r"\((\d+) bytes\) in (\d+) requests", text)
    return text, levels, int(read.group(1)), int(read.group(2))


def test_a_box_across_the_band_edge_is_drawn_from_the_pyramid_in_the_years_colours(sample, tmp_path):
    store = sample["store"]
    basis = json.loads((store / "_mosaic" / "colour" / "2023.json").read_text())
    bbox = (5.9, 69.9, 6.0, 70.1)  # EDGE (60-70) south of NORTH[0] (70-80)
    png = tmp_path / "edge.png"
    text, printed, _, _ = run_preview(store, png, "--bbox", ",".join(map(str, bbox)), "--year", "2023",
                                      "--width", "120")
    img = np.asarray(Image.open(png).convert("RGBA"))
    h, w = img.shape[:2]
    assert h == 2 * w and w <= 120  # square degrees; no finer than the finest level
    # The level of each band from the documented rule and the store's layout, not from stdout.
    levels = {band: picture_level(store, band, bbox, (h, w)) for band in ("60-70", BAND)}
    assert printed == levels, text
    opaque = img[..., 3] == 255
    assert opaque.mean() > 0.5
    # One colour basis: across the 70N edge the picture changes no more than between
    # neighbouring strips inside a band. The issue measured ~15 levels at the edge with one
    # PCA per band; with one basis the edge step is 6.2 against a median of 10 inside
    # (docs/overviews.md): the edge may not exceed the median inside.
    k = h // 12  # 12 strips, 70N between strips 5 and 6
    strips = [img[r:r + k][opaque[r:r + k]][:, :3].mean(0) for r in range(0, 12 * k, k)]
    steps = np.abs(np.diff(strips, axis=0)).mean(1)
    edge = steps[5]
    inside = np.delete(steps, 5)
    assert edge <= np.median(inside), (edge, inside)
    # Every pixel: the stored pixel under its centre at that level, in the year's colours.
    want = render_like_mosaic(store, basis, bbox, img.shape[:2], levels)
    np.testing.assert_array_equal(img[..., 3], want[..., 3])
    diff = np.abs(img[..., :3].astype(int) - want[..., :3].astype(int))[opaque]
    assert diff.max() <= 1, diff.max()  # rounding of a projection at a .5 boundary


def test_a_whole_band_picture_reads_under_one_percent_of_the_band(sample, tmp_path):
    store = sample["store"]
    stored = sum(p.stat().st_size for name in ("embeddings", "scales")
                 for p in (store / BAND / name).rglob("*") if p.is_file())
    text, levels, read, requests = run_preview(store, tmp_path / "band.png", "--band", BAND, "--year", "2023")
    assert read < 0.01 * stored, (read, stored, text)
    assert levels == {BAND: max(level_numbers(store, BAND))}, text
    # And a cell-sized picture reads the finest level.
    _, levels, _, _ = run_preview(store, tmp_path / "cell.png", "--bbox", "5.9,70.0,6.0,70.1", "--year", "2023")
    assert levels == {BAND: 2}
