"""`mosaic stac`: the catalog validated by stac-validator (offline schemas), its geometry checked
with shapely against the sample's tiles, every asset opened with xarray, and the map: its tiles
checked against the store, the page loaded in headless Chromium at three zooms (no console
errors; layers checked by pixel colours in screenshots), a click's 128 values (read by the page
from the store's shards) against xarray, the similarity view against numpy's cosine of the same
overview pixels read with zarr-python; from a local HTTP server and from a SeaweedFS bucket."""

import copy
import filecmp
import json
import math
import os
import re
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from PIL import Image
from shapely.geometry import box, shape
from shapely.ops import unary_union

from browser import Browser, Server
from colours import assert_drawn_in, paint, tile_at, tile_pixels
from conftest import EDGE, NORTH, SOUTH, mosaic
from stac_schemas import DATACUBE, PROJECTION, schema_map

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def run_stac(store, out, *extra):
    """`mosaic stac` run from a folder outside the repository (no node_modules anywhere above):
    the map's Leaflet must come from the binary itself."""
    cwd = Path(out).parent
    assert not any((d / "node_modules").exists() for d in [cwd, *cwd.parents])
    return mosaic("stac", "--store", store, "--out", out, *extra, cwd=cwd)


@pytest.fixture(scope="module")
def catalog(sample):
    """The catalog beside the store (`../store.zarr` from the page): the tests serve their
    common folder, so that the page reads the store over HTTP."""
    out = sample["store"].parent / "catalog"
    proc = run_stac(sample["store"], out)
    assert "reads the store at ../store.zarr" in proc.stdout, proc.stdout
    assert "5 items" in proc.stdout, proc.stdout
    yield out
    shutil.rmtree(out, ignore_errors=True)


def band_range(name):
    """(south, north) of a band name such as 70-80 or S70-S60."""
    lo, hi = (-float(p[1:]) if p.startswith("S") else float(p) for p in name.split("-"))
    return lo, hi


def cell_of(tile):
    """(west, south) of a tile name, in tenths of a degree (exact integers)."""
    lon, lat = (round(float(v) * 100) for v in tile.split("_")[1:])
    return (lon - 5) // 10, (lat - 5) // 10


def expected_cells():
    """{(year, band): {(west, south) in tenths}} from the sample's tiles (2024 has no SOUTH)."""
    bands = ["70-80", "S70-S60", "60-70"]
    out = {}
    for year, tiles in [(2023, NORTH + SOUTH + EDGE), (2024, NORTH + EDGE)]:
        for t in tiles:
            x, y = cell_of(t)
            band = next(b for b in bands if band_range(b)[0] * 10 <= y < band_range(b)[1] * 10)
            out.setdefault((year, band), set()).add((x, y))
    return out


def circular_bbox(cells):
    """Smallest [west, south, east, north] around cells (tenths), west > east across 180."""
    cols = sorted({x for x, _ in cells})
    gaps = [(cols[0] + 3600 - cols[-1] - 1, cols[0], cols[-1] + 1)]  # the one across 180
    gaps += [(b - a - 1, b, a + 1) for a, b in zip(cols, cols[1:])]
    best = max(gaps, key=lambda g: g[0])  # first maximum: ties keep the non-crossing box
    west, east = best[1], best[2]
    norm = lambda x: (x + 1800) % 3600 - 1800 if x != 1800 else 1800  # noqa: E731
    return [norm(west) / 10, min(y for _, y in cells) / 10,
            norm(east) / 10, (max(y for _, y in cells) + 1) / 10]


def documents(root):
    return sorted(p for p in root.rglob("*.json"))


def load(path):
    return json.loads(Path(path).read_text())


def items(root):
    return {p.stem: (p, load(p)) for p in root.glob("*/*/*.json")}


def test_every_document_validates_offline(catalog, tmp_path):
    from stac_validator import stac_validator

    mapping = schema_map(tmp_path / "schemas")
    docs = documents(catalog)
    assert len(docs) == 1 + 2 + 5, [str(d) for d in docs]
    for doc in docs:
        v = stac_validator.StacValidate(str(doc), schema_map=mapping)
        assert v.run(), (doc, v.message)
        used = v.message[-1]["schema"]
        if load(doc)["type"] == "Feature":
            # The extension schemas really took part.
            assert mapping[DATACUBE] in used and mapping[PROJECTION] in used, used
    # ... and they have teeth: a broken datacube dimension or proj:code is rejected.
    item = load(next(catalog.glob("2023/*/*.json")))
    for path, value in [(("cube:dimensions", "lon", "axis"), "q"), (("proj:code",), 4326)]:
        bad = copy.deepcopy(item)
        target = bad["properties"]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        v = stac_validator.StacValidate(str(tmp_path / "bad.json"), schema_map=mapping)
        assert not v.run(), path


def test_catalog_links_collections_and_items(catalog):
    root = load(catalog / "catalog.json")
    assert root["type"] == "Catalog" and root["stac_version"] == "1.1.0"
    children = [l for l in root["links"] if l["rel"] == "child"]
    assert [c["href"] for c in children] == ["./2023/collection.json", "./2024/collection.json"]
    expected = expected_cells()
    for year in (2023, 2024):
        coll = load(catalog / str(year) / "collection.json")
        assert coll["id"] == f"tessera-mosaic-{year}"
        assert coll["extent"]["temporal"]["interval"] == [[f"{year}-01-01T00:00:00Z",
                                                           f"{year}-12-31T23:59:59Z"]]
        bands = sorted(b for (y, b) in expected if y == year)
        item_links = [l for l in coll["links"] if l["rel"] == "item"]
        assert sorted(l["title"] for l in item_links) == bands
        all_cells = set().union(*(expected[(year, b)] for b in bands))
        assert coll["extent"]["spatial"]["bbox"] == [circular_bbox(all_cells)]
        for link in coll["links"] + root["links"]:
            base = catalog / str(year) if link in coll["links"] else catalog
            assert (base / link["href"]).resolve().exists(), link
        for link in item_links:
            item = load(catalog / str(year) / link["href"])
            assert item["collection"] == coll["id"]
            assert item["properties"]["start_datetime"] == f"{year}-01-01T00:00:00Z"
            assert item["properties"]["proj:code"] == "EPSG:4326"
            for l in item["links"]:
                assert (catalog / str(year) / link["href"]).parent.joinpath(l["href"]).resolve().exists()


def test_item_geometry_is_the_union_of_present_cells(catalog):
    expected = expected_cells()
    found = {}
    for _, (path, item) in items(catalog).items():
        props = item["properties"]
        key = (props["tessera_mosaic:year"], props["tessera_mosaic:band"])
        found[key] = item
        cells = expected[key]
        geom = shape(item["geometry"])
        assert geom.is_valid
        truth = unary_union([box(x / 10, y / 10, (x + 1) / 10, (y + 1) / 10) for x, y in cells])
        assert geom.symmetric_difference(truth).area < 1e-12, key
        assert abs(geom.area - 0.01 * len(cells)) < 1e-9
        polygons = getattr(geom, "geoms", [geom])
        assert all(p.exterior.is_ccw for p in polygons)  # RFC 7946 winding
        assert item["bbox"] == circular_bbox(cells), key
        assert props["tessera_mosaic:cells"] == len(cells)
    assert sorted(found) == sorted(expected)
    # The sample crosses the antimeridian: that item's box does too (west > east).
    west, _, east, _ = found[(2023, "70-80")]["bbox"]
    assert west > east


def test_assets_open_with_xarray(catalog, sample):
    for _, (path, item) in items(catalog).items():
        props = item["properties"]
        asset = item["assets"]["zarr"]
        # Absolute: readers open asset.href as given, from any working folder.
        href = Path(asset["href"])
        assert href.is_absolute() and href == (sample["store"] / props["tessera_mosaic:band"]).resolve()
        assert asset["type"] == "application/vnd+zarr"
        assert asset["zarr:zarr_format"] == 3 and asset["zarr:consolidated"] is True
        ds = xr.open_zarr(href, chunks=None)
        dims = props["cube:dimensions"]
        assert list(ds.scales.dims) == props["cube:variables"]["scales"]["dimensions"]
        assert list(ds.embeddings.dims) == props["cube:variables"]["embeddings"]["dimensions"]
        assert [f"{y}-01-01T00:00:00Z" for y in ds.year.values] == dims["year"]["values"]
        assert list(ds.channel.values) == dims["channel"]["values"]
        assert asset["proj:shape"] == [ds.sizes["lat"], ds.sizes["lon"]]
        assert dims["lat"]["extent"] == [float(ds.lat[0]), float(ds.lat[-1])]
        assert dims["lon"]["extent"] == [float(ds.lon[0]), float(ds.lon[-1])]
        assert np.isclose(dims["lat"]["step"], float(ds.lat[1] - ds.lat[0]), rtol=1e-9)
        assert np.isclose(dims["lon"]["step"], float(ds.lon[1] - ds.lon[0]), rtol=1e-9)
        # Each of the item's cells has its shards for the item's year (docs/format.md keys),
        # and the item has data there (a coarse sample; a cell can be all water).
        year = props["tessera_mosaic:year"]
        band = props["tessera_mosaic:band"]
        yi, south = year - int(ds.year[0]), round(band_range(band)[0] * 10)
        finite = 0
        for x, y in expected_cells()[(year, band)]:
            assert (href / "scales" / "c" / str(yi) / str(y - south) / str(x + 1800)).is_file()
            cell = ds.scales.sel(year=year, lat=slice(y / 10, (y + 1) / 10),
                                 lon=slice(x / 10, (x + 1) / 10))[::37, ::37]
            finite += int(np.isfinite(cell.values).sum())
        assert finite > 0, item["id"]
    # A band-year without an item has no shard: S70-S60 in 2024.
    for tile in SOUTH:
        x, y = cell_of(tile)
        shard = sample["store"] / "S70-S60" / "scales" / "c" / "1" / str(y + 700) / str(x + 1800)
        assert not shard.exists() and shard.parent.parent.parent.is_dir()


def test_output_is_deterministic_and_href_base(catalog, sample, tmp_path):
    again = tmp_path / "again"
    # Elsewhere, the default store URL would be another relative path: name the same one.
    run_stac(sample["store"], again, "--map-store", "../store.zarr")
    mine = sorted(p.relative_to(catalog) for p in catalog.rglob("*") if p.is_file())
    theirs = sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert mine == theirs
    _, mismatch, errors = filecmp.cmpfiles(catalog, again, [str(p) for p in mine], shallow=False)
    assert mismatch == [] and errors == []

    # A browser cannot read s3:// URLs: refused, named.
    bad = mosaic("stac", "--store", sample["store"], "--out", tmp_path / "bad", "--map-store",
                 "s3://bucket/store.zarr", check=False)
    assert bad.returncode != 0 and "--map-store s3://bucket/store.zarr" in bad.stderr, bad.stderr
    # An http(s) href base is the page's store URL too.
    web = tmp_path / "web"
    run_stac(sample["store"], web, "--href-base", "https://data.example.org/store.zarr/")
    assert layers_of(web)["store"] == "https://data.example.org/store.zarr"

    for url in ["https://data.example.org/tessera/store.zarr/", "s3://bucket/tessera/store.zarr/"]:
        remote = tmp_path / "remote"
        run_stac(sample["store"], remote, "--href-base", url, "--no-map")
        assert not (remote / "index.html").exists() and not (remote / "map").exists()
        for _, (_, item) in items(remote).items():
            band = item["properties"]["tessera_mosaic:band"]
            assert item["assets"]["zarr"]["href"] == url + band
            assert not any(k.startswith("preview") for k in item["assets"])


def test_xpystac_opens_an_asset_from_another_working_folder(catalog, sample, tmp_path, monkeypatch):
    """pystac reads the item; xpystac (xarray engine "stac") opens the asset's href as given,
    with the asset's zarr: fields, from a folder that is neither the catalog's nor the store's."""
    import pystac

    path, _ = items(catalog)["2024-70-80"]
    item = pystac.Item.from_file(str(path))
    asset = item.assets["zarr"]
    # pystac knows the media type (its deprecated-but-defined name, the one xpystac and QGIS
    # match exactly; docs/stac.md).
    assert asset.media_type == pystac.MediaType.ZARR
    elsewhere = tmp_path / "a" / "b" / "c"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    ds = xr.open_dataset(asset, engine="stac", chunks=None)
    assert ds.embeddings.dims == ("year", "lat", "lon", "channel")
    assert ds.embeddings.dtype == np.int8
    assert list(ds.year.values) == [2023, 2024]
    assert ds.attrs["tessera_mosaic"]["grid"]["name"] == "70-80"
    # The band's data, the same values the store gives directly.
    box = dict(year=2024, lat=slice(70.04, 70.05), lon=slice(5.95, 5.96))
    got = ds.scales.sel(**box).values
    want = xr.open_zarr(sample["store"], group="70-80", chunks=None).scales.sel(**box).values
    assert np.isfinite(got).any()
    np.testing.assert_array_equal(got, want)


def layers_of(catalog):
    return json.loads(re.search(r"window\.MOSAIC = (.*);", (catalog / "map" / "layers.js")
                               .read_text(), re.S).group(1))


def expected_tiles(cells, z):
    """Tiles (x, y) of Leaflet's EPSG:4326 scheme at zoom z whose box overlaps a cell's (cells
    in tenths of a degree), in exact fractions: a tile spans 180/2^z degrees, x from -180,
    y from +90."""
    span = Fraction(180, 2 ** z)
    out = set()
    for x, y in cells:
        west, east = Fraction(x, 10) + 180, Fraction(x + 1, 10) + 180
        top, bottom = 90 - Fraction(y + 1, 10), 90 - Fraction(y, 10)  # distances from +90
        for tx in range(math.floor(west / span), math.ceil(east / span)):
            for ty in range(math.floor(top / span), math.ceil(bottom / span)):
                out.add((tx, ty))
    return out


def finest(store, band):
    """The band's finest overview level, as xarray reads it."""
    return xr.open_zarr(store, group=f"{band}/overviews/2", chunks=None)


def test_map_tiles(catalog, sample):
    layers = layers_of(catalog)
    # No pixel files any more: the page reads the store (relative to index.html).
    assert layers["store"] == "../store.zarr" and not (catalog / "map" / "pixels").exists()
    assert "previews" not in layers and not list((catalog / "map").glob("preview-*"))
    tiles = {t["year"]: t for t in layers["tiles"]}
    assert sorted(tiles) == [2023, 2024]
    expected = expected_cells()
    for year, t in tiles.items():
        # 1170 rows per cell: level 2 has 293, 0.1/293 degrees; a zoom-11 tile pixel is
        # 180/2^11/256 = 0.000343 degrees, 1.006 times that.
        assert t["max_zoom"] == t["native_max_zoom"] == 11
        cells = set().union(*(c for (y, _), c in expected.items() if y == year))
        root = catalog / t["href"]
        for z in range(12):
            on_disk = {(int(p.parent.name), int(p.stem)) for p in (root / str(z)).glob("*/*.png")}
            assert on_disk == expected_tiles(cells, z), (year, z)
            assert t["per_zoom"][z] == len(on_disk)
        pngs = list(root.rglob("*.png"))
        assert t["bytes"] == sum(p.stat().st_size for p in pngs)
        assert {Image.open(p).size for p in pngs} == {(256, 256)}

    # A zoom-11 tile shows the stored pixel under each of its pixel centres: its opaque pixels
    # are exactly where the finest level has a scale there.
    x, y = cell_of(NORTH[0])
    tx, ty = sorted(expected_tiles({(x, y)}, 11))[0]
    ds = finest(sample["store"], "70-80").sel(year=2024)
    span = 180 / 2 ** 11
    lats = 90 - ty * span - (np.arange(256) + 0.5) * span / 256
    lons = -180 + tx * span + (np.arange(256) + 0.5) * span / 256
    lat_step, lon_step = float(ds.lat[1] - ds.lat[0]), float(ds.lon[1] - ds.lon[0])
    rows = np.floor((lats - 70.0) / lat_step).astype(int)  # -1 and below: band 60-70
    cols = np.floor((lons + 180.0) / lon_step).astype(int)
    r0, c0 = max(rows.min(), 0), cols.min()
    window = ds.scales.isel(lat=slice(r0, rows.max() + 1), lon=slice(c0, cols.max() + 1)).values
    north = rows >= 0  # compare band 70-80's part of the tile
    has_data = np.isfinite(window[np.ix_(rows[north] - r0, cols - c0)])
    alpha = np.array(Image.open(catalog / tiles[2024]["href"] / "11" / str(tx) / f"{ty}.png"))[..., 3]
    assert has_data.sum() > 1000
    np.testing.assert_array_equal(alpha[north] > 0, has_data)


def test_map_tiles_are_drawn_in_the_years_colour_basis(catalog, sample):
    """docs/stac.md, "Tiles": each tile pixel is the stored overview pixel under its centre, at
    the coarsest level no larger than the tile's pixels, coloured with the year's basis
    (`_mosaic/colour/{year}.json`). The test draws the tiles itself (colours.tile_pixels and
    paint: the level from the documented rule, the colour formula of docs/format.md in numpy)
    at every zoom over the 70N band edge, and at three zooms over the antimeridian in both years
    and over a southern cell in 2023."""
    store = sample["store"]
    tiles = {t["year"]: catalog / t["href"] for t in layers_of(catalog)["tiles"]}
    bases = {y: json.loads((store / "_mosaic" / "colour" / f"{y}.json").read_text()) for y in tiles}
    # Every zoom over the band edge; three zooms at the antimeridian and in the south.
    points = {2023: [(5.99, 70.0, range(12)), (179.97, 70.08, (6, 9, 11)), (-66.0, -64.95, (6, 9, 11))],
              2024: [(5.99, 70.0, range(12)), (179.97, 70.08, (6, 9, 11))]}
    opaque, other = {}, []
    for year, root in tiles.items():
        wanted = {(z, *tile_at(lon, lat, z)) for lon, lat, zooms in points[year] for z in zooms}
        for z, x, y in sorted(wanted):
            img = np.asarray(Image.open(root / str(z) / str(x) / f"{y}.png").convert("RGBA"))
            pixels = tile_pixels(store, year, z, x, y)
            want = paint(pixels, bases[year])
            opaque[year, z] = opaque.get((year, z), 0) + assert_drawn_in(img, want, min_opaque=0)
            # The other year's basis draws other colours: the check can tell bases apart.
            wrong = paint(pixels, bases[2023 + 2024 - year])
            seen = want[..., 3] == 255
            other.append(np.abs(wrong[..., :3].astype(int) - want[..., :3].astype(int)).max(-1)[seen])
    assert all(opaque[y, z] > 1000 for y in tiles for z in range(8, 12)), opaque
    moved = np.concatenate(other)
    assert (moved > 3).mean() > 0.2, (moved > 3).mean()


def pixel(img, p):
    return np.array(img.getpixel((round(p["x"]), round(p["y"]))), dtype=float)


def colours(img, nw, se, margin=2):
    """Distinct colours inside a screen rectangle."""
    crop = np.array(img.crop((nw["x"] + margin, nw["y"] + margin, se["x"] - margin, se["y"] - margin)))
    return len(np.unique(crop.reshape(-1, 3), axis=0))


def save_small(img, name):
    """A screenshot for docs/ (MOSAIC_MAP_SCREENSHOTS=folder), as a small palette PNG."""
    folder = os.environ.get("MOSAIC_MAP_SCREENSHOTS")
    if folder:
        img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(Path(folder) / name, optimize=True)


def click(browser, point):
    """A real mouse click at a screen point; returns the popup's values."""
    browser.evaluate("mosaicMap.lastClick = null")
    for kind in ["mousePressed", "mouseReleased"]:
        browser.call("Input.dispatchMouseEvent", type=kind, x=point["x"], y=point["y"],
                     button="left", clickCount=1)
    return browser.evaluate("mosaicMap.lastClick")


def check_click(browser, store, lat, lon, year):
    """Click at (lat, lon) and compare the inspector's pixel, read by the page from the band's
    shards, with xarray's nearest pixel of the band at the clicked place: all 128 values and
    the scale, exactly (the stored bits)."""
    to_screen = lambda ll: browser.evaluate(  # noqa: E731
        f"(p => ({{x: Math.round(p.x), y: Math.round(p.y)}}))(mosaicMap.map.latLngToContainerPoint({ll}))")
    got = click(browser, to_screen([lat, lon]))
    assert got["year"] == year and got["band"] == "70-80" and got["present"] is True, got
    band = xr.open_zarr(store, group="70-80", chunks=None)
    want = band.sel(year=year, lat=got["lat"], lon=got["lon"], method="nearest")
    assert got["cell"] == f"grid_{math.floor(want.lon.item() * 10) / 10 + 0.05:.2f}_{math.floor(want.lat.item() * 10) / 10 + 0.05:.2f}"
    assert np.float32(got["scale"]) == want.scales.values, (got["scale"], float(want.scales))
    assert len(got["embedding"]) == 128
    np.testing.assert_array_equal(got["embedding"], want.embeddings.values)
    assert got["pixelLat"] == pytest.approx(float(want.lat), abs=1e-9)
    assert got["pixelLon"] == pytest.approx(float(want.lon), abs=1e-9)
    text = browser.evaluate("document.querySelector('.leaflet-popup-content').textContent")
    assert got["cell"] in text and "70-80" in text and " ".join(map(str, got["embedding"][:8])) in text
    assert browser.evaluate("document.querySelectorAll('.leaflet-popup-content svg.chart rect').length") == 128
    return got


def tile_requests(browser):
    return sorted(r.split("/map/tiles/")[1] for r in browser.evaluate(
        "performance.getEntriesByType('resource').map(e => e.name)") if "/map/tiles/" in r)


def test_map_in_headless_chromium(catalog, sample):
    layers = layers_of(catalog)
    cov_png = np.array(Image.open(catalog / layers["coverage"][0]["href"]).convert("RGBA"))
    coverage_rgb = cov_png[cov_png[..., 3] > 0][0, :3].astype(float)  # the colour of a cell
    x, y = cell_of(NORTH[0])  # 5.95_70.05, present in both years; EDGE is south of it
    centre = lambda x, y: [(y + 0.5) / 10, (x + 0.5) / 10]  # noqa: E731
    # 1100 x 900: the whole globe at zoom 1 (1024 x 512 px) is in view, clear of the controls.
    with Server(catalog.parent) as server, Browser(1100, 900) as browser:
        to_screen = lambda ll: browser.evaluate(  # noqa: E731
            f"(p => ({{x: p.x, y: p.y}}))(mosaicMap.map.latLngToContainerPoint({ll}))")

        # 1. The globe (zoom 1): the tiles of zoom 1 that exist, and no others, are loaded.
        assert browser.goto(f"{server.url}/catalog/index.html#1/0/0/2024") == "1"
        # The checks below compare screen pixels with the background: no coastlines over them
        # (test_map_basemap checks the basemap).
        browser.evaluate("mosaicMap.show('Coastlines and borders', false)")
        assert browser.evaluate("mosaicMap.year") == 2024
        assert browser.evaluate("document.getElementById('year').value") == "2024"
        shot = browser.screenshot()
        on_disk = sorted(str(p.relative_to(catalog / "map" / "tiles")) for p in
                         (catalog / "map" / "tiles" / "2024" / "1").rglob("*.png"))
        assert tile_requests(browser) == on_disk and len(on_disk) == 3
        loaded = browser.evaluate("[...document.querySelectorAll('img.embedding-tile')]"
                                  ".map(i => i.complete && i.naturalWidth)")
        assert loaded == [256] * 3
        # Band outlines are drawn.
        row = round(to_screen([70.0, -100])["y"])
        line = np.array(shot.crop((100, row - 2, 1000, row + 3))).reshape(-1, 3).astype(int)
        assert ((line[:, 0] > 180) & (line[:, 1] < 160) & (line[:, 2] < 120)).sum() > 300
        # Every covered cell shows (a screen pixel in the coverage colour), though far smaller
        # than a pixel; nothing elsewhere. (The outlines at 70 and -60 would hide some.)
        browser.evaluate("mosaicMap.show('Band outlines', false)")
        browser.settle()
        shot = browser.screenshot()
        save_small(shot, "map-globe.png")
        background = pixel(shot, to_screen([45, -95]))
        blended = 0.85 * coverage_rgb + 0.15 * background  # layer opacity 0.85

        def near(img, ll, rgb):
            p = to_screen(ll)
            box = np.array(img.crop((round(p["x"]) - 1, round(p["y"]) - 1, round(p["x"]) + 2,
                                     round(p["y"]) + 2))).reshape(-1, 3).astype(float)
            return (np.abs(box - rgb).max(axis=1) < 12).any()
        for tile in NORTH + EDGE:
            assert near(shot, centre(*cell_of(tile)), blended), tile
        for absent in [[45, -95], [-64.9, -100], [70.1, 60]]:
            assert not near(shot, absent, blended), absent
        for tile in SOUTH:  # 2023 only
            assert not near(shot, centre(*cell_of(tile)), blended), tile
        browser.evaluate("mosaicMap.show('Band outlines', true)")

        # 2. A region (zoom 6): tiles show the embeddings in many colours where cells are and
        # nothing where there are none; a year switch changes them.
        browser.evaluate("mosaicMap.view(6, 70.0, 6.0)")
        save_small(browser.screenshot(), "map-region.png")
        browser.evaluate("mosaicMap.show('Coverage', false)")
        browser.evaluate("mosaicMap.show('Graticule (10°)', false)")
        browser.settle()
        shot = browser.screenshot()
        nw, se = to_screen([(y + 1) / 10, x / 10]), to_screen([y / 10, (x + 2) / 10])
        assert colours(shot, nw, se, margin=1) >= 8
        for absent in [(x + 3, y), (x - 2, y), (x + 1, y - 1), (x, y + 2)]:
            assert np.abs(pixel(shot, to_screen(centre(*absent))) - background).max() < 3, absent
        crop24 = np.array(shot.crop((nw["x"] + 1, nw["y"] + 1, se["x"] - 1, se["y"] - 1)), dtype=int)
        browser.evaluate("mosaicMap.setYear(2023)")
        assert browser.evaluate("location.hash").endswith("/2023")
        crop23 = np.array(browser.screenshot().crop((nw["x"] + 1, nw["y"] + 1, se["x"] - 1, se["y"] - 1)),
                          dtype=int)
        assert np.abs(crop23 - crop24).mean() > 20  # another year, other embeddings and colours

        # 3. The pixels (zoom 11, the deepest tiles): one screen pixel per stored pixel.
        browser.evaluate("mosaicMap.setYear(2024)")
        browser.evaluate(f"mosaicMap.view(11, {(y + 0.4) / 10}, {(x + 1) / 10})")
        shot = browser.screenshot()
        nw, se = to_screen([(y + 1) / 10, x / 10]), to_screen([y / 10, (x + 1) / 10])
        assert colours(shot, nw, se) > 200
        # The cell east of EDGE's is absent: background, not a tile.
        assert np.abs(pixel(shot, to_screen(centre(x + 1, y - 1))) - background).max() < 3
        browser.evaluate("mosaicMap.show('Coverage', true)")
        browser.settle()
        got = check_click(browser, sample["store"], (y + 0.43) / 10, (x + 0.61) / 10, 2024)
        assert len(set(got["embedding"])) > 20
        browser.settle()
        save_small(browser.screenshot(), "map-pixels.png")
        # The same place in 2023: other values, from the 2023 shard.
        browser.evaluate("mosaicMap.setYear(2023)")
        check_click(browser, sample["store"], (y + 0.43) / 10, (x + 0.61) / 10, 2023)
        # A click on an absent cell reads nothing.
        browser.evaluate("mosaicMap.lastSimilarity")
        before = browser.evaluate("performance.getEntriesByType('resource').length")
        absent = click(browser, {k: round(v) for k, v in to_screen(centre(x + 1, y - 1)).items()})
        assert absent["present"] is False and "scale" not in absent
        browser.evaluate("mosaicMap.lastSimilarity")
        assert browser.evaluate("performance.getEntriesByType('resource').length") == before

        # The southern cells exist only in 2023: tiles there in 2023, none asked for in 2024.
        sx, sy = cell_of(SOUTH[0])
        browser.evaluate(f"mosaicMap.view(11, {(sy + 0.5) / 10}, {(sx + 0.5) / 10})")
        browser.evaluate("mosaicMap.show('Coverage', false)")
        browser.settle()
        south = lambda: pixel(browser.screenshot(), to_screen(centre(sx, sy)))  # noqa: E731
        # SOUTH[0] is mostly water (NaN scales); its eastern neighbour, SOUTH[1], has land.
        nw, se = to_screen([(sy + 1) / 10, sx / 10]), to_screen([sy / 10, (sx + 2) / 10])
        assert colours(browser.screenshot(), nw, se) > 200
        asked = lambda: {t for t in tile_requests(browser) if t.startswith("2024/")}  # noqa: E731
        before = asked()
        browser.evaluate("mosaicMap.setYear(2024)")
        assert np.abs(south() - background).max() < 3
        assert asked() == before  # no 2024 tile exists here, none was asked for
        # The coverage of 2024 is empty there, that of 2023 is not.
        browser.evaluate("mosaicMap.show('Coverage', true)")
        browser.settle()
        assert np.abs(south() - background).max() < 3
        browser.evaluate("mosaicMap.setYear(2023)")
        browser.evaluate("mosaicMap.show('Embeddings', false)")
        browser.settle()
        assert np.abs(south() - blended).max() < 10

        # Everything came from the local server.
        resources = browser.evaluate(
            "performance.getEntriesByType('resource').map(e => e.name)")
        assert resources and all(r.startswith(server.url) for r in resources), resources
    assert browser.errors == []


def similarity_of(browser):
    """The page's last similarity (awaited): per chunk its band, level, place in the level's
    arrays and values (None = no data)."""
    browser.evaluate("mosaicMap.lastSimilarity")
    return browser.evaluate("mosaicMap.similarity()")


def cosine_to(store, year, chunks, refs):
    """numpy's cosine similarity of the chunks' pixels, read with zarr-python from the same
    overview level, to the mean of the dequantised reference pixels (`refs`: band, level, row,
    col in the level's arrays); NaN where a scale is NaN or a vector all zero."""
    import zarr

    root = zarr.open_group(store, mode="r")
    years = list(root["70-80/year"][:])

    def level(band, lv):
        g = root[f"{band}/overviews/{lv}"]
        return g["embeddings"], g["scales"]

    t = years.index(year)
    vectors = []
    for r in refs:
        emb, sc = level(r["band"], r["level"])
        vectors.append(emb[t, r["row"], r["col"], :].astype(np.float64) * float(sc[t, r["row"], r["col"]]))
    ref = np.mean(vectors, axis=0)
    out = []
    for c in chunks:
        emb, sc = level(c["band"], c["level"])
        rows, cols = slice(c["row0"], c["row0"] + c["rows"]), slice(c["col0"], c["col0"] + c["cols"])
        v = emb[t, rows, cols, :].astype(np.float64) * sc[t, rows, cols][..., None].astype(np.float64)
        norm = np.linalg.norm(v, axis=-1) * np.linalg.norm(ref)
        with np.errstate(invalid="ignore", divide="ignore"):
            cos = (v @ ref) / norm
        cos[~(norm > 0)] = np.nan
        out.append(cos)
    return out


def check_similarity(browser, store, year, min_chunks=1):
    """The page's similarity equals numpy's (float32 tolerance), is 1 at the clicked pixel, and
    its drawing shades exactly the pixels at or above the threshold."""
    got = similarity_of(browser)
    assert got and len(got["chunks"]) >= min_chunks, got and got["levels"]
    want = cosine_to(store, year, got["chunks"], got["refs"])
    for c, w in zip(got["chunks"], want):
        values = np.array([np.nan if v is None else v for v in c["values"]]).reshape(c["rows"], c["cols"])
        np.testing.assert_array_equal(np.isnan(values), np.isnan(w))
        np.testing.assert_allclose(values[~np.isnan(w)], w[~np.isnan(w)], rtol=0, atol=2e-6)
        assert c["drawn"] == int((values[~np.isnan(values)] >= got["threshold"]).sum())
    assert sum((~np.isnan(w)).sum() for w in want) > 1000
    # The clicked pixel, found by xarray (nearest pixel centre of the level at the click), not
    # by the page: its similarity.
    last = got["refs"][-1]
    level = xr.open_zarr(store, group=f"{last['band']}/overviews/{last['level']}", chunks=None)
    row = int(np.abs(level.lat.values - last["lat"]).argmin())
    col = int(np.abs(level.lon.values - last["lon"]).argmin())
    at = [c for c in got["chunks"] if c["band"] == last["band"] and c["level"] == last["level"]
          and c["row0"] <= row < c["row0"] + c["rows"] and c["col0"] <= col < c["col0"] + c["cols"]]
    assert len(at) == 1
    c = at[0]
    return got, c["values"][(row - c["row0"]) * c["cols"] + col - c["col0"]]


def test_map_similarity(catalog, sample):
    """A click shades the view by cosine similarity to the clicked pixel, read by the page from
    the overview level that matches the zoom (only that level's chunks are requested): 1 at the
    clicked pixel, numpy's values elsewhere; the threshold slider redraws; the mean of several
    clicks; the legend says what is compared."""
    x, y = cell_of(NORTH[0])
    with Server(catalog.parent) as server, Browser(1100, 900) as browser:
        assert browser.goto(f"{server.url}/catalog/index.html#11/{(y + 0.45) / 10}/{(x + 0.8) / 10}/2024") == "1"
        to_screen = lambda ll: {k: round(v) for k, v in browser.evaluate(  # noqa: E731
            f"(p => ({{x: p.x, y: p.y}}))(mosaicMap.map.latLngToContainerPoint({ll}))").items()}
        del server.requests[:]
        click(browser, to_screen([(y + 0.43) / 10, (x + 0.61) / 10]))
        got, at_click = check_similarity(browser, sample["store"], 2024, min_chunks=2)
        assert at_click == pytest.approx(1.0, abs=1e-6)
        # Zoom 11: the finest level (2), and nothing but level 2's chunks (and the band's inner
        # chunks for the inspector) were read.
        assert got["levels"] == [2]
        chunk_reads = {p for p, _, _ in server.requests if "/c/" in p}
        assert any("/overviews/2/" in p for p in chunk_reads)
        assert all("/overviews/2/" in p or "/overviews/" not in p for p in chunk_reads), chunk_reads
        legend = browser.evaluate("document.querySelector('.legend').textContent")
        assert "to the pixel at" in legend and "128 channels" in legend and "level 2" in legend, legend
        shot = browser.screenshot()
        save_small(shot, "map-similarity.png")

        # The threshold slider (a real drag of the input's value) redraws: fewer pixels at 0.9.
        drawn = lambda: sum(c["drawn"] for c in browser.evaluate("mosaicMap.similarity()")["chunks"])  # noqa: E731
        at_07 = drawn()
        browser.evaluate("""(() => { const i = document.getElementById('sim-threshold');
            i.value = '0.9'; i.dispatchEvent(new Event('input')); })()""")
        check_similarity(browser, sample["store"], 2024)
        assert 0 < drawn() < at_07
        assert "0.90" in browser.evaluate("document.querySelector('.legend').textContent")
        assert np.abs(np.array(browser.screenshot(), dtype=int) - np.array(shot, dtype=int)).mean() > 1

        # The mean of several clicks.
        browser.evaluate("(() => { document.getElementById('sim-mean').click(); })()")
        click(browser, to_screen([(y + 0.47) / 10, (x + 0.9) / 10]))
        got, _ = check_similarity(browser, sample["store"], 2024)
        assert len(got["refs"]) == 2
        assert "mean of 2 clicked pixels" in browser.evaluate("document.querySelector('.legend').textContent")

        # A region (zoom 8): a coarser level, by the rule (the coarsest whose pixels are no
        # larger than a screen pixel), again numpy's values.
        browser.evaluate("mosaicMap.setMean(false)")
        browser.evaluate(f"mosaicMap.view(8, {(y + 0.5) / 10}, {(x + 1) / 10})")
        browser.evaluate("mosaicMap.setThreshold(0.7)")
        click(browser, to_screen([(y + 0.43) / 10, (x + 0.61) / 10]))
        got, at_click = check_similarity(browser, sample["store"], 2024, min_chunks=2)
        assert at_click == pytest.approx(1.0, abs=1e-6)
        screen = 180 / 2 ** 8 / 256
        layout = zarr_layout(sample["store"], "70-80")
        fits = [int(e["asset"]) for e in layout
                if e["spatial:transform"][0] <= screen * 1.0001 and e["spatial:transform"][4] <= screen * 1.0001]
        assert got["levels"][0] == max(fits) > 2, (got["levels"], fits)
        browser.evaluate("void mosaicMap.map.closePopup()")
        browser.settle()
        save_small(browser.screenshot(), "map-similarity-region.png")
    assert browser.errors == []


def test_map_reads_a_channel_planar_store(tmp_path):
    """A store built channel-planar (the `transpose` codec before `bytes`, bands.toml's
    `order`): the page undoes the transpose; the inspector equals xarray, the similarity numpy."""
    from conftest import REPO

    bands = (REPO / "bands.toml").read_text()
    assert 'order = "pixel_major"' in bands
    (tmp_path / "bands.toml").write_text(bands.replace('order = "pixel_major"', 'order = "channel_planar"'))
    mosaic("synth", "--out", tmp_path / "tessera", "--tiles", NORTH[0], "--years", "2024", "--seed", "5")
    store = tmp_path / "store.zarr"
    mosaic("build", "--input", tmp_path / "tessera", "--out", store, "--band", "70-80",
           "--bands", tmp_path / "bands.toml")
    meta = json.loads((store / "70-80" / "overviews" / "2" / "embeddings" / "zarr.json").read_text())
    assert meta["codecs"][0]["name"] == "transpose", meta["codecs"]
    run_stac(store, tmp_path / "catalog")
    x, y = cell_of(NORTH[0])
    with Server(tmp_path) as server, Browser(1000, 700) as browser:
        assert browser.goto(f"{server.url}/catalog/index.html#11/{(y + 0.45) / 10}/{(x + 0.5) / 10}/2024") == "1"
        check_click(browser, store, (y + 0.43) / 10, (x + 0.61) / 10, 2024)
        _, at_click = check_similarity(browser, store, 2024)
        assert at_click == pytest.approx(1.0, abs=1e-6)
    assert browser.errors == []


def zarr_layout(store, band):
    import zarr

    return zarr.open_group(store, mode="r")[f"{band}/overviews"].attrs["multiscales"]["layout"]


def test_catalog_of_a_store_in_a_bucket(sample, tmp_path):
    """`mosaic stac --store s3://...`: the store read from the bucket, its URL the assets' href
    base by default; the catalog equals the one of the local store with that href base."""
    from seaweed import seaweed

    with seaweed(tmp_path / "seaweed") as s3:
        s3["fs"].put(str(sample["store"]), "mosaic/store.zarr", recursive=True)
        url = "s3://mosaic/store.zarr"
        env = {**os.environ, **s3["env"]}
        remote, local = tmp_path / "remote", tmp_path / "local"
        proc = mosaic("stac", "--store", url, "--out", remote, "--no-map", env=env, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    run_stac(sample["store"], local, "--href-base", url, "--no-map")
    docs = sorted(p.relative_to(remote) for p in remote.rglob("*.json"))
    assert docs and docs == sorted(p.relative_to(local) for p in local.rglob("*.json"))
    for d in docs:
        assert (remote / d).read_bytes() == (local / d).read_bytes(), d
    item = next(p for p in docs if len(p.parts) == 3)
    hrefs = [a["href"] for a in json.loads((remote / item).read_text())["assets"].values()]
    assert any(h.startswith(url + "/") for h in hrefs), hrefs


def test_map_basemap(catalog):
    """Coastlines and borders are drawn from the built-in Natural Earth data (no request leaves
    the local server), on by default, and the layer control's checkbox hides them."""
    with Server(catalog.parent) as server, Browser(1100, 900) as browser:
        assert browser.goto(f"{server.url}/catalog/index.html#2/50/10/2024") == "1"
        for name in ["Embeddings", "Coverage", "Band outlines", "Graticule (10°)", "Similarity"]:
            browser.evaluate(f"mosaicMap.show('{name}', false)")
        browser.settle()
        # Dark pixels away from the controls (the map's background is light).
        lines = lambda img: int((np.array(img.convert("L").crop((170, 170, 930, 900)),  # noqa: E731
                                          dtype=int) < 150).sum())
        on = browser.screenshot()
        save_small(on, "map-basemap.png")
        # Europe, Africa and Asia at zoom 2: thousands of dark line pixels.
        assert lines(on) > 3000, lines(on)
        # No line across the map where a coast crosses the antimeridian (Chukotka at 65-71N,
        # Fiji at 16-17S): the rows there are not dark from edge to edge.
        grey = np.array(on.convert("L"), dtype=int)
        assert not any((grey[r, 170:930] < 200).mean() > 0.9 for r in range(170, 900))
        assert browser.evaluate(
            "document.querySelectorAll('.leaflet-basemap-pane path').length") >= 2
        # A real click on the layer control's checkbox hides them.
        box = browser.evaluate("""(() => {
            const label = [...document.querySelectorAll('.leaflet-control-layers-overlays label')]
              .find(l => l.textContent.includes('Coastlines and borders'));
            const r = label.querySelector('input').getBoundingClientRect();
            return {x: r.x + r.width / 2, y: r.y + r.height / 2};
        })()""")
        for kind in ["mousePressed", "mouseReleased"]:
            browser.call("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"],
                         button="left", clickCount=1)
        browser.settle()
        off = browser.screenshot()
        save_small(off, "map-basemap-off.png")
        assert lines(off) == 0, lines(off)
        resources = browser.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        assert any("countries-50m.js" in r for r in resources), resources
        assert all(r.startswith(server.url) for r in resources), resources
    assert browser.errors == []


def test_map_from_a_bucket(catalog, sample, tmp_path):
    """The catalog folder and the store beside it uploaded as they are to an S3 bucket
    (SeaweedFS) with anonymous read: the page, its tiles, and the store's chunks (the band's
    shards read by range) load from the S3 endpoint by their relative URLs; the click's values
    and the similarity are the same as from disk."""
    from seaweed import seaweed

    types = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
             ".json": "application/json", ".png": "image/png"}
    x, y = cell_of(NORTH[0])
    store = sample["store"]
    # The store without the band-level shards of the cells not clicked (or colour statistics):
    # the test reads one cell's shards; the overviews of every band go up whole.
    clicked = {f"embeddings/c/1/{y - 700}/{x + 1800}/0", f"scales/c/1/{y - 700}/{x + 1800}"}

    def wanted(rel):
        parts = rel.parts
        if len(parts) > 2 and parts[1] in ("embeddings", "scales") and parts[2] == "c":
            return parts[0] == "70-80" and "/".join(parts[1:]) in clicked
        return "colour_statistics" not in parts
    with seaweed(tmp_path / "seaweed", bucket="maps") as s3:
        fs = s3["fs"]
        for root, keep in [(catalog, lambda rel: True), (store, wanted)]:
            for p in sorted(root.rglob("*")):
                rel = p.relative_to(root)
                if p.is_file() and keep(rel):
                    fs.pipe(f"maps/tessera/{root.name}/{rel}", p.read_bytes(),
                            ContentType=types.get(p.suffix, "application/octet-stream"))
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"],
            "Resource": ["arn:aws:s3:::maps/*"]}]}
        fs.call_s3("put_bucket_policy", Bucket="maps", Policy=json.dumps(policy))
        base = f"{s3['endpoint']}/maps/tessera"
        with Browser(1000, 700) as browser:
            assert browser.goto(f"{base}/catalog/index.html#11/{(y + 0.45) / 10}/{(x + 0.8) / 10}/2024") == "1"
            assert len(tile_requests(browser)) > 4
            check_click(browser, store, (y + 0.43) / 10, (x + 0.61) / 10, 2024)
            got, at_click = check_similarity(browser, store, 2024, min_chunks=2)
            assert at_click == pytest.approx(1.0, abs=1e-6) and got["levels"] == [2]
            resources = browser.evaluate(
                "performance.getEntriesByType('resource').map(e => e.name)")
            assert resources and all(r.startswith(base) for r in resources), resources
            assert any("/store.zarr/70-80/overviews/2/embeddings/c/" in r for r in resources)
        assert browser.errors == []
