"""The store speaks the GeoZarr conventions and marks no-data for geospatial readers:
geozarr-toolkit validates the `proj:` and `spatial:` conventions of every band group and data
array; rioxarray derives the same grid from the coordinates and honours `nodata`; titiler.xarray
(in-process, FastAPI's test client) renders a tile across the data's edge with the fill masked."""

import io
import warnings

import numpy as np
import pytest
import xarray as xr
import zarr
from pyproj import CRS

from conftest import EDGE, NORTH, SOUTH

PROJ_UUID = "f17cb550-5864-4468-aeb7-f3180cfb622f"
SPATIAL_UUID = "689b58e2-cf7b-45e0-9fff-9cfc0883d6b4"
# The registration objects of the specifications (zarr-conventions/proj and
# zarr-conventions/spatial, v1: README "Convention Registration" and schema.json consts).
REGISTRATION = {
    PROJ_UUID: {
        "uuid": PROJ_UUID,
        "schema_url": "https://raw.githubusercontent.com/zarr-conventions/geo-proj/refs/tags/v1/schema.json",
        "spec_url": "https://github.com/zarr-conventions/geo-proj/blob/v1/README.md",
        "name": "proj:",
        "description": "Coordinate reference system information for geospatial data",
    },
    SPATIAL_UUID: {
        "uuid": SPATIAL_UUID,
        "schema_url": "https://raw.githubusercontent.com/zarr-conventions/spatial/refs/tags/v1/schema.json",
        "spec_url": "https://github.com/zarr-conventions/spatial/blob/v1/README.md",
        "name": "spatial",
        "description": "Spatial coordinate information",
    },
}
# geo-embeddings/embeddings-zarr-convention v1: the registration object its schema.json pins
# (every field a const there), declared on each band group.
GEOEMB_UUID = "61c12cc5-0e28-4056-999a-480cf3fb7e4c"
GEOEMB = {
    "uuid": GEOEMB_UUID,
    "schema_url": "https://raw.githubusercontent.com/geo-embeddings/embeddings-zarr-convention/refs/tags/v1/schema.json",
    "spec_url": "https://github.com/geo-embeddings/embeddings-zarr-convention/blob/v1/README.md",
    "name": "geoemb:",
    "description": "Geoembeddings convention for geospatial embedding arrays with model provenance",
}
BANDS = ["60-70", "70-80", "S70-S60"]
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # affine `*` in rasterio


def open_band(store, band):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return xr.open_zarr(store, group=band, chunks=None)


def geozarr_nodes(store):
    """(path, attributes) of every band group and data array, as zarr-python reads them."""
    root = zarr.open_group(store, mode="r")
    for band in BANDS:
        yield band, dict(root[band].attrs)
        for name in ("embeddings", "scales"):
            yield f"{band}/{name}", dict(root[band][name].attrs)


def test_geozarr_toolkit_validates_every_band_group_and_data_array(sample):
    from geozarr_toolkit.helpers import detect_conventions, validate_attrs
    from geozarr_toolkit.conventions import ProjConventionMetadata

    nodes = list(geozarr_nodes(sample["store"]))
    assert len(nodes) == 3 * len(BANDS)
    for path, attrs in nodes:
        assert sorted(detect_conventions(attrs)) == ["proj", "spatial"], path
        results = validate_attrs(attrs)
        assert set(results) == {"proj", "spatial", "zarr_conventions"}, path
        assert all(errors == [] for errors in results.values()), (path, results)
        # Declared exactly as the specifications register them (readers match by uuid).
        declared = {c["uuid"]: c for c in attrs["zarr_conventions"]}
        group = "/" not in path
        assert declared == (REGISTRATION | {GEOEMB_UUID: GEOEMB} if group else REGISTRATION), path
        ProjConventionMetadata.model_validate(declared[PROJ_UUID])
        assert CRS.from_user_input(attrs["proj:wkt2"]) == CRS.from_epsg(4326)
        assert attrs["proj:code"] == "EPSG:4326"
        assert attrs["spatial:dimensions"] == ["lat", "lon"]
        assert attrs["spatial:registration"] == "pixel"


def geoemb_problems(attrs):
    """What the geoemb: convention (v1, its README and schema.json, read offline and written
    out here as checks) finds wrong with a group's attributes: [] when none."""
    problems = []
    entries = [c for c in attrs.get("zarr_conventions", []) if c.get("uuid") == GEOEMB_UUID]
    if entries != [GEOEMB]:
        problems.append(f"zarr_conventions: {entries}")
    for key in ["geoemb:type", "geoemb:dimensions", "geoemb:model", "geoemb:source_data",
                "geoemb:data_type"]:
        if key not in attrs:
            problems.append(f"{key} missing")
    if attrs.get("geoemb:type") not in ("pixel", "chip"):
        problems.append("geoemb:type")
    if attrs.get("geoemb:type") == "chip" and "geoemb:chip_layout" not in attrs:
        problems.append("geoemb:chip_layout missing for chips")
    dims = attrs.get("geoemb:dimensions")
    if not (isinstance(dims, int) and not isinstance(dims, bool) and dims >= 1):
        problems.append("geoemb:dimensions")
    uri = lambda v: isinstance(v, str) and "://" in v  # noqa: E731
    if not uri(attrs.get("geoemb:model")):
        problems.append("geoemb:model")
    sources = attrs.get("geoemb:source_data")
    if not (isinstance(sources, list) and sources and all(map(uri, sources))):
        problems.append("geoemb:source_data")
    if not isinstance(attrs.get("geoemb:data_type"), str):
        problems.append("geoemb:data_type")
    gsd = attrs.get("geoemb:gsd", 1)
    if not (isinstance(gsd, (int, float)) and gsd > 0):
        problems.append("geoemb:gsd")
    if attrs.get("geoemb:spatial_layout", "global") not in ("utm_zones", "global"):
        problems.append("geoemb:spatial_layout")
    q = attrs.get("geoemb:quantization")
    if q is not None:
        allowed = {"method", "original_dtype", "quantized_dtype", "scale", "link"}
        if not (isinstance(q, dict) and {"method", "original_dtype"} <= set(q) <= allowed):
            problems.append(f"geoemb:quantization: {q}")
        scale = q.get("scale", {"type": "scalar", "scale": 1}) if isinstance(q, dict) else {}
        if scale.get("type") == "array":
            if not (isinstance(scale.get("array_name"), str)
                    and set(scale) <= {"type", "array_name", "nodata"}):
                problems.append(f"geoemb:quantization.scale: {scale}")
        elif not (scale.get("type") == "scalar" and isinstance(scale.get("scale"), (int, float))
                  and set(scale) <= {"type", "scale", "offset"}):
            problems.append(f"geoemb:quantization.scale: {scale}")
    return problems


@pytest.mark.parametrize("band", BANDS)
def test_every_band_group_declares_the_geoemb_convention(sample, band):
    """geoemb: on each band group, valid under the convention's rules and true of the data:
    the dimensions are the channels, the data type the embeddings', the per-pixel scale array
    exists beside them with their lat/lon shape and is NaN exactly where the embeddings are
    fill (the nodata said); the data arrays do not declare it."""
    root = zarr.open_group(sample["store"], mode="r")
    attrs = dict(root[band].attrs)
    assert geoemb_problems(attrs) == []
    assert attrs["geoemb:type"] == "pixel" and attrs["geoemb:spatial_layout"] == "global"
    emb = root[band]["embeddings"]
    assert attrs["geoemb:dimensions"] == emb.shape[-1] == 128
    assert attrs["geoemb:data_type"] == str(emb.dtype) == "int8"
    q = attrs["geoemb:quantization"]
    assert (q["method"], q["original_dtype"], q["quantized_dtype"]) == ("per_pixel_scale", "float32", "int8")
    scales = root[band][q["scale"]["array_name"]]
    assert scales.shape == emb.shape[:-1] and str(scales.dtype) == "float32"
    assert q["scale"]["nodata"] == "NaN"
    ds = open_band(sample["store"], band)
    # The sample's cells in this band (whole-band arrays are hundreds of GB).
    centres = [tuple(map(float, t.split("_")[1:])) for t in NORTH + EDGE + SOUTH]
    for lon, lat in [(x, y) for x, y in centres if ds.lat.min() < y < ds.lat.max()]:
        cell = dict(lat=slice(lat - 0.05, lat + 0.05), lon=slice(lon - 0.05, lon + 0.05))
        s = ds.scales.sel(**cell).values  # every year: some cells are in one year only
        if (~np.isnan(s)).any():  # some cells are all water
            break
    e = ds.embeddings.sel(**cell).values
    fill = ds.embeddings.attrs.get("_FillValue", ds.embeddings.encoding.get("_FillValue"))
    assert (~np.isnan(s)).any(), "data in the sample cell"
    if fill is not None:
        assert (e[np.isnan(s)] == fill).all()
    for name in ("embeddings", "scales"):
        assert not any(k.startswith("geoemb:") for k in root[band][name].attrs), name


def test_the_geoemb_checks_have_teeth(sample):
    """Negative controls: each broken declaration is found."""
    attrs = dict(zarr.open_group(sample["store"], mode="r")["70-80"].attrs)
    breaks = [
        ("geoemb:type", "tile"), ("geoemb:dimensions", 0), ("geoemb:model", "tessera"),
        ("geoemb:source_data", []), ("geoemb:gsd", -10),
        ("geoemb:quantization", {"method": "per_pixel_scale"}),
        ("zarr_conventions", [c for c in attrs["zarr_conventions"] if c["uuid"] != GEOEMB_UUID]),
    ]
    for key, value in breaks:
        assert geoemb_problems({**attrs, key: value}) != [], key
    missing = {k: v for k, v in attrs.items() if k != "geoemb:data_type"}
    assert geoemb_problems(missing) == ["geoemb:data_type missing", "geoemb:data_type"]


def test_geozarr_toolkit_rejects_a_broken_declaration(sample):
    """The validator has teeth: without spatial:dimensions, or with a 5-term transform, the
    spatial convention fails (the failure a store without these attributes showed)."""
    from geozarr_toolkit.helpers import validate_attrs

    _, attrs = next(geozarr_nodes(sample["store"]))
    for key, value in [("spatial:dimensions", None), ("spatial:transform", [1, 0, 0, 0, 1])]:
        bad = dict(attrs)
        if value is None:
            del bad[key]
        else:
            bad[key] = value
        assert validate_attrs(bad)["spatial"] != [], key


@pytest.mark.parametrize("band", BANDS)
def test_spatial_convention_matches_the_coordinates_and_rioxarray(sample, band):
    import rioxarray  # noqa: F401

    ds = open_band(sample["store"], band)
    for attrs in (ds.attrs, ds.embeddings.attrs, ds.scales.attrs):
        a, b, c, d, e, f = attrs["spatial:transform"]
        assert b == 0 and d == 0
        assert attrs["spatial:shape"] == [ds.sizes["lat"], ds.sizes["lon"]]
        # Lat ascends: row 0 is the southern edge, the row step is positive.
        assert e > 0 and f == ds.attrs["geospatial_lat_min"] and c == -180.0
        # Pixel registration: centres at (index + 0.5) give the stored coordinates.
        rows, cols = np.arange(ds.sizes["lat"]), np.arange(ds.sizes["lon"])
        np.testing.assert_allclose(e * (rows + 0.5) + f, ds.lat.values, rtol=0, atol=1e-9)
        np.testing.assert_allclose(a * (cols + 0.5) + c, ds.lon.values, rtol=0, atol=1e-9)
        assert attrs["spatial:bbox"] == [-180.0, f, 180.0, ds.attrs["geospatial_lat_max"]]
        # rioxarray derives the same grid from the coordinates and the CF grid mapping.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PendingDeprecationWarning)  # affine's `*`
            rio = ds.embeddings.rio.transform()
        np.testing.assert_allclose(list(rio)[:6], [a, b, c, d, e, f], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ds.rio.bounds(), attrs["spatial:bbox"], rtol=0, atol=1e-9)
        assert ds.embeddings.rio.crs == CRS.from_user_input(attrs["proj:wkt2"])


def test_embeddings_fill_is_nodata_without_float_decoding(sample):
    import rioxarray  # noqa: F401

    ds = open_band(sample["store"], "70-80")
    assert ds.embeddings.dtype == np.int8  # no _FillValue: xarray does not decode to float
    assert "_FillValue" not in ds.embeddings.attrs and "_FillValue" not in ds.embeddings.encoding
    assert ds.embeddings.rio.nodata == 0 == ds.attrs["tessera_mosaic"]["embeddings_fill"]
    assert ds.scales.dtype == np.float32
    empty = ds.scales.sel(year=2024, lat=slice(70.0, 70.1), lon=slice(5.8, 5.9)).values
    assert np.isnan(empty).all()  # scales still mark no-data with NaN


def edge_tile():
    """A WebMercatorQuad tile at zoom 12 across the western edge of NORTH[0]'s cell (5.9E,
    70.0..70.1N): its western columns lie in a cell without a tile."""
    import morecantile

    tms = morecantile.tms.get("WebMercatorQuad")
    tile = tms.tile(5.9, 70.05, 12)
    bounds = tms.bounds(tile)
    assert NORTH[0] == "grid_5.95_70.05"
    assert bounds.left < 5.9 - 0.005 < 5.9 + 0.05 < bounds.right and 70.0 < bounds.bottom
    return tile, bounds


def test_titiler_xarray_renders_a_tile_across_the_data_edge_with_the_fill_masked(sample):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from PIL import Image
    from titiler.xarray.factory import TilerFactory
    from titiler.xarray.io import Reader

    tile, bounds = edge_tile()
    app = FastAPI()
    app.include_router(TilerFactory().router)
    client = TestClient(app)
    params = [("url", str(sample["store"])), ("group", "70-80"), ("variable", "embeddings"),
              ("sel", "year=2024"), ("sel", "channel=0"), ("sel", "channel=1"),
              ("sel", "channel=2"), ("rescale", "-128,127")]
    r = client.get(f"/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png", params=params)
    assert r.status_code == 200, r.text
    png = np.array(Image.open(io.BytesIO(r.content)))
    assert png.shape == (256, 256, 4)
    alpha = png[..., 3]
    # Columns west of 5.9E (no tile there): fully transparent.
    lon = bounds.left + (np.arange(256) + 0.5) * (bounds.right - bounds.left) / 256
    west = lon < 5.9 - 0.001
    assert west.sum() > 20 and (alpha[:, west] == 0).all()
    # East of the edge the data shows, transparent exactly where scales are NaN (water) up
    # to pixels whose three channels all equal the fill.
    east = lon > 5.9 + 0.001
    assert (alpha[:, east] == 255).mean() > 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Reader(str(sample["store"]), variable="scales", group="70-80",
                    sel=["year=2024"]) as src:
            assert src.crs == CRS.from_epsg(4326)
            np.testing.assert_allclose(src.bounds, (-180.0, 70.0, 180.0, 80.0), atol=1e-9)
            scales = src.tile(tile.x, tile.y, tile.z).data[0]
    nodata = np.isnan(scales)
    assert nodata[:, west].all()
    agree = (alpha[:, east] == 0) == nodata[:, east]
    assert agree.mean() > 0.99, agree.mean()
