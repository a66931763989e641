"""`mosaic stac`: the catalog validated by stac-validator (offline schemas), its geometry checked
with shapely against the sample's tiles, every asset opened with xarray, and the map loaded in
headless Chromium (no console errors; layers checked by pixel colours in screenshots)."""

import copy
import filecmp
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from PIL import Image
from shapely.geometry import box, shape
from shapely.ops import unary_union

from browser import Browser, Server
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
def catalog(sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("stac") / "catalog"
    proc = run_stac(sample["store"], out)
    assert "5 items" in proc.stdout, proc.stdout
    return out


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
    run_stac(sample["store"], again)
    mine = sorted(p.relative_to(catalog) for p in catalog.rglob("*") if p.is_file())
    theirs = sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert mine == theirs
    _, mismatch, errors = filecmp.cmpfiles(catalog, again, [str(p) for p in mine], shallow=False)
    assert mismatch == [] and errors == []

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


def pixel(img, p):
    return np.array(img.getpixel((round(p["x"]), round(p["y"]))), dtype=float)


def test_map_in_headless_chromium(catalog):
    layers = json.loads(re.search(r"window\.MOSAIC = (.*);", (catalog / "map" / "layers.js")
                                  .read_text(), re.S).group(1))
    assert [c["year"] for c in layers["coverage"]] == [2023, 2024]
    cov_png = np.array(Image.open(catalog / layers["coverage"][0]["href"]).convert("RGBA"))
    coverage_rgb = cov_png[cov_png[..., 3] > 0][0, :3].astype(float)  # the colour of a cell
    assert len(layers["previews"]) > 0

    x, y = cell_of(NORTH[0])  # 5.95_70.05, present in both years; EDGE is south of it
    centre = lambda x, y: [(y + 0.5) / 10, (x + 0.5) / 10]  # noqa: E731
    with Server(catalog) as server, Browser(1000, 700) as browser:
        assert browser.goto(f"{server.url}/index.html#10/70.0/6.0") == "1"
        browser.settle()
        to_screen = lambda ll: browser.evaluate(  # noqa: E731
            f"(p => ({{x: p.x, y: p.y}}))(mosaicMap.map.latLngToContainerPoint({ll}))")
        shot = browser.screenshot()
        if os.environ.get("MOSAIC_MAP_SCREENSHOT"):
            shot.save(os.environ["MOSAIC_MAP_SCREENSHOT"])
        background = pixel(shot, to_screen([69.8, 6.25]))  # no cell, no line there

        # Previews: the cell shows many colours (PCA of the embeddings).
        nw, se = to_screen([(y + 1) / 10, x / 10]), to_screen([y / 10, (x + 1) / 10])
        crop = np.array(shot.crop((nw["x"] + 2, nw["y"] + 2, se["x"] - 2, se["y"] - 2)))
        assert len(np.unique(crop.reshape(-1, 3), axis=0)) > 200
        # Band outlines: the 70-degree edge is drawn in orange across the view.
        row = round(to_screen([70.0, 6.0])["y"])
        line = np.array(shot.crop((0, row - 2, 1000, row + 3))).reshape(-1, 3).astype(int)
        orange = (line[:, 0] > 180) & (line[:, 1] < 140) & (line[:, 2] < 90)
        assert orange.sum() > 300, orange.sum()

        # Coverage 2024 without previews: present cells in the coverage colour, others not.
        browser.evaluate("mosaicMap.show('Previews 2024', false)")
        browser.settle()
        shot = browser.screenshot()
        blended = 0.85 * coverage_rgb + 0.15 * background  # layer opacity 0.85
        for tile in [NORTH[0], NORTH[1], EDGE[0]]:
            assert np.abs(pixel(shot, to_screen(centre(*cell_of(tile)))) - blended).max() < 10, tile
        for absent in [(x + 2, y), (x - 1, y), (x + 1, y - 1)]:
            assert np.abs(pixel(shot, to_screen(centre(*absent))) - background).max() < 10, absent
        crop = np.array(shot.crop((nw["x"] + 2, nw["y"] + 2, se["x"] - 2, se["y"] - 2)))
        assert len(np.unique(crop.reshape(-1, 3), axis=0)) <= 4

        # The southern cells exist only in 2023: empty under Coverage 2024, shown under 2023.
        sx, sy = cell_of(SOUTH[0])
        browser.evaluate(f"location.hash = '#10/{(sy + 0.5) / 10}/{(sx + 0.5) / 10}'")
        browser.settle()
        south = lambda: pixel(browser.screenshot(), to_screen(centre(sx, sy)))  # noqa: E731
        assert np.abs(south() - background).max() < 10
        browser.evaluate("mosaicMap.show('Coverage 2023', true)")
        browser.settle()
        assert np.abs(south() - blended).max() < 10

        # Everything came from the local server.
        resources = browser.evaluate(
            "performance.getEntriesByType('resource').map(e => e.name)")
        assert resources and all(r.startswith(server.url) for r in resources), resources
    assert browser.errors == []
