//! The Zarr metadata documents of a band group and its arrays, and of the root group: written
//! by us (not by zarrs) so that their bytes are deterministic. CF attributes for xarray and
//! rioxarray, ACDD 1.3 discovery attributes, and the GeoZarr conventions `proj:` and `spatial:`
//! (zarr-conventions), declared in `zarr_conventions` on the band group and its data arrays.

use serde_json::{Map, Value, json};

use super::codecs::{coordinate_codecs, sharding_codec};
use super::layout::{BandLayout, COUNTS_FILL, FORMAT_VERSION};
use crate::grid::{BandGrid, CHANNELS};

/// The zarr-conventions `proj:` convention (github.com/zarr-conventions/proj, v1), as
/// registered in `zarr_conventions`; readers identify it by uuid.
pub const PROJ_CONVENTION_UUID: &str = "f17cb550-5864-4468-aeb7-f3180cfb622f";
/// The zarr-conventions `spatial:` convention (github.com/zarr-conventions/spatial, v1).
pub const SPATIAL_CONVENTION_UUID: &str = "689b58e2-cf7b-45e0-9fff-9cfc0883d6b4";

/// The geo-embeddings `geoemb:` convention (github.com/geo-embeddings/embeddings-zarr-convention,
/// v1), which TESSERA's own store and aef-mosaic declare.
pub const GEOEMB_CONVENTION_UUID: &str = "61c12cc5-0e28-4056-999a-480cf3fb7e4c";

/// The `geoemb:` attributes of a band group: what the embeddings are (TESSERA's 128-channel
/// per-pixel embeddings of Sentinel-1 and -2 at 10 m), how they are quantised (int8 times the
/// per-pixel `scales` array, NaN where there is no data) and the layout (one global lat/lon
/// array per band), with the convention's entry for `zarr_conventions`.
fn geoemb_attributes() -> (Value, Value) {
    let convention = json!({
        "uuid": GEOEMB_CONVENTION_UUID,
        "schema_url": "https://raw.githubusercontent.com/geo-embeddings/embeddings-zarr-convention/refs/tags/v1/schema.json",
        "spec_url": "https://github.com/geo-embeddings/embeddings-zarr-convention/blob/v1/README.md",
        "name": "geoemb:",
        "description": "Geoembeddings convention for geospatial embedding arrays with model provenance",
    });
    let attributes = json!({
        "geoemb:type": "pixel",
        "geoemb:dimensions": CHANNELS,
        "geoemb:model": "https://github.com/ucam-eo/tessera",
        "geoemb:source_data": [
            "https://sentinel.esa.int/web/sentinel/missions/sentinel-1",
            "https://sentinel.esa.int/web/sentinel/missions/sentinel-2",
        ],
        "geoemb:data_type": "int8",
        "geoemb:gsd": 10.0,
        "geoemb:spatial_layout": "global",
        "geoemb:build_version": format!("tessera-mosaic {}", env!("CARGO_PKG_VERSION")),
        "geoemb:quantization": {
            "method": "per_pixel_scale",
            "original_dtype": "float32",
            "quantized_dtype": "int8",
            "scale": {"type": "array", "array_name": "scales", "nodata": "NaN"},
        },
    });
    (convention, attributes)
}

/// The `zarr_conventions` list of a band group and of its data arrays: `proj:` and `spatial:`,
/// each with the uuid, schema_url, spec_url, name and description of its specification.
pub fn zarr_conventions() -> Value {
    json!([
        {
            "uuid": PROJ_CONVENTION_UUID,
            "schema_url": "https://raw.githubusercontent.com/zarr-conventions/geo-proj/refs/tags/v1/schema.json",
            "spec_url": "https://github.com/zarr-conventions/geo-proj/blob/v1/README.md",
            "name": "proj:",
            "description": "Coordinate reference system information for geospatial data",
        },
        {
            "uuid": SPATIAL_CONVENTION_UUID,
            "schema_url": "https://raw.githubusercontent.com/zarr-conventions/spatial/refs/tags/v1/schema.json",
            "spec_url": "https://github.com/zarr-conventions/spatial/blob/v1/README.md",
            "name": "spatial",
            "description": "Spatial coordinate information",
        },
    ])
}

/// The affine transform of a band's grid in Affine order `[a, b, c, d, e, f]`: `lon = a * col +
/// c`, `lat = e * row + f` for pixel corners. Row 0 is the southern edge (lat ascends), so the
/// row step `e` is positive and `f` is the band's southern edge.
pub fn band_transform(g: &BandGrid) -> [f64; 6] {
    [g.lon_step(), 0.0, -180.0, 0.0, g.lat_step(), g.lat_min()]
}

/// The GeoZarr attributes of a band group and its data arrays: `zarr_conventions`, `proj:`
/// (code and WKT2 of EPSG:4326) and `spatial:` (the lat/lon grid, pixel registration), the same
/// grid as the `lat`/`lon` coordinates and the CF grid mapping in `spatial_ref`.
pub fn geozarr_attributes(g: &BandGrid) -> Map<String, Value> {
    grid_geozarr_attributes(g, band_transform(g), [g.rows(), g.cols()])
}

/// The GeoZarr attributes of a lat/lon grid over a band's latitudes with its own `transform`
/// and `shape` (the band's, or an overview level's).
pub(super) fn grid_geozarr_attributes(
    g: &BandGrid,
    transform: [f64; 6],
    shape: [usize; 2],
) -> Map<String, Value> {
    let attrs = json!({
        "zarr_conventions": zarr_conventions(),
        "proj:code": "EPSG:4326",
        "proj:wkt2": WGS84_WKT,
        "spatial:dimensions": ["lat", "lon"],
        "spatial:transform": transform,
        "spatial:shape": shape,
        "spatial:bbox": [-180.0, g.lat_min(), 180.0, g.lat_max()],
        "spatial:registration": "pixel",
    });
    match attrs {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object"),
    }
}

/// `attrs` (an object) with the GeoZarr attributes of `g` added.
fn with_geozarr(mut attrs: Value, g: &BandGrid) -> Value {
    if let Value::Object(map) = &mut attrs {
        map.extend(geozarr_attributes(g));
    }
    attrs
}

/// WKT2 of EPSG:4326 (as PROJ prints it), for `spatial_ref`.
pub const WGS84_WKT: &str = r#"GEOGCRS["WGS 84",ENSEMBLE["World Geodetic System 1984 ensemble",MEMBER["World Geodetic System 1984 (Transit)"],MEMBER["World Geodetic System 1984 (G730)"],MEMBER["World Geodetic System 1984 (G873)"],MEMBER["World Geodetic System 1984 (G1150)"],MEMBER["World Geodetic System 1984 (G1674)"],MEMBER["World Geodetic System 1984 (G1762)"],MEMBER["World Geodetic System 1984 (G2139)"],MEMBER["World Geodetic System 1984 (G2296)"],ELLIPSOID["WGS 84",6378137,298.257223563,LENGTHUNIT["metre",1]],ENSEMBLEACCURACY[2.0]],PRIMEM["Greenwich",0,ANGLEUNIT["degree",0.0174532925199433]],CS[ellipsoidal,2],AXIS["geodetic latitude (Lat)",north,ORDER[1],ANGLEUNIT["degree",0.0174532925199433]],AXIS["geodetic longitude (Lon)",east,ORDER[2],ANGLEUNIT["degree",0.0174532925199433]],USAGE[SCOPE["Horizontal component of 3D system."],AREA["World."],BBOX[-90,-180,90,180]],ID["EPSG",4326]]"#;

fn plain_array(
    shape: Vec<u64>,
    chunk: Vec<u64>,
    dtype: &str,
    fill: Value,
    dims: Vec<&str>,
    attrs: Value,
) -> Value {
    array_document(shape, chunk, dtype, fill, vec![], dims, attrs)
}

/// An unsharded array's metadata document: `bytes` (little endian) then `codecs`.
pub(super) fn array_document(
    shape: Vec<u64>,
    chunk: Vec<u64>,
    dtype: &str,
    fill: Value,
    codecs: Vec<Value>,
    dims: Vec<&str>,
    attributes: Value,
) -> Value {
    let mut chain = vec![json!({"name": "bytes", "configuration": {"endian": "little"}})];
    chain.extend(codecs);
    json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": shape,
        "data_type": dtype,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunk}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill,
        "codecs": chain,
        "attributes": attributes,
        "dimension_names": dims,
    })
}

/// Metadata of every array of a band group, by name.
pub fn band_array_metadata(layout: &BandLayout) -> Vec<(&'static str, Value)> {
    let g = &layout.grid;
    let years = layout.years as u64;
    let shard = g.shard_shape();
    let chunk = g.chunk_shape();
    let data_attrs = |long_name: &str, comment: &str| {
        with_geozarr(
            json!({
                "long_name": long_name,
                "comment": comment,
                "grid_mapping": "spatial_ref",
                "coordinates": "spatial_ref",
            }),
            g,
        )
    };
    // The fill as nodata for rioxarray and rio-tiler. Not `_FillValue`: xarray would decode the
    // int8 array to float to hold NaN. `scales` needs none: its fill is NaN.
    let mut embeddings_attrs = data_attrs(
        "TESSERA embedding, int8 quantised",
        "Dequantise as embeddings * scales. Pixels without data hold the fill value here and NaN in scales.",
    );
    embeddings_attrs["nodata"] = json!(layout.embeddings_fill);
    let embeddings = json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": g.embeddings_shape(years as usize),
        "data_type": "int8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": shard}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": layout.embeddings_fill,
        "codecs": [sharding_codec(&chunk, &layout.compression, 1, g.chunk_order)],
        "attributes": embeddings_attrs,
        "dimension_names": ["year", "lat", "lon", "channel"],
    });
    let scales = json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": [years, g.rows() as u64, g.cols() as u64],
        "data_type": "float32",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": &shard[..3]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": "NaN",
        "codecs": [sharding_codec(&chunk[..3], &layout.compression, 4, g.chunk_order)],
        "attributes": data_attrs(
            "TESSERA embedding scale",
            "Per-pixel scale of the int8 embeddings. NaN marks every pixel without data (no tile, outside the tile, water, or an invalid source scale)."
        ),
        "dimension_names": ["year", "lat", "lon"],
    });
    let rows = g.rows() as u64;
    let cols = g.cols() as u64;
    // Coordinates are one compressed object each: xarray reads them whole to open the band.
    let lat = array_document(
        vec![rows],
        vec![rows],
        "float64",
        json!("NaN"),
        coordinate_codecs(),
        vec!["lat"],
        json!({
            "standard_name": "latitude",
            "long_name": "latitude of pixel centre",
            "units": "degrees_north",
            "axis": "Y",
        }),
    );
    let lon = array_document(
        vec![cols],
        vec![cols],
        "float64",
        json!("NaN"),
        coordinate_codecs(),
        vec!["lon"],
        json!({
            "standard_name": "longitude",
            "long_name": "longitude of pixel centre",
            "units": "degrees_east",
            "axis": "X",
        }),
    );
    let year = plain_array(
        vec![years],
        vec![years],
        "int32",
        json!(0),
        vec!["year"],
        json!({
            "long_name": "year of the annual embedding",
        }),
    );
    let channel = plain_array(
        vec![CHANNELS as u64],
        vec![CHANNELS as u64],
        "int32",
        json!(0),
        vec!["channel"],
        json!({
            "long_name": "embedding channel",
        }),
    );
    let spatial_ref = plain_array(
        vec![],
        vec![],
        "int32",
        json!(0),
        vec![],
        json!({
            "crs_wkt": WGS84_WKT,
            "spatial_ref": WGS84_WKT,
            "grid_mapping_name": "latitude_longitude",
            "semi_major_axis": 6378137.0,
            "inverse_flattening": 298.257223563,
            "longitude_of_prime_meridian": 0.0,
            "reference_ellipsoid_name": "WGS 84",
            "geographic_crs_name": "WGS 84",
            "horizontal_datum_name": "World Geodetic System 1984",
            "prime_meridian_name": "Greenwich",
        }),
    );
    vec![
        ("channel", channel),
        ("embeddings", embeddings),
        ("lat", lat),
        ("lon", lon),
        ("scales", scales),
        ("spatial_ref", spatial_ref),
        ("year", year),
    ]
}

/// The `s2_obs_count` array of a band built from an input that has per-pixel counts: chunked
/// and sharded as `scales` (one shard per cell and year), with its own fill ([`COUNTS_FILL`])
/// wherever `scales` is NaN, declared like the other data arrays.
pub fn counts_array_metadata(layout: &BandLayout) -> Value {
    let g = &layout.grid;
    let shard = g.shard_shape();
    let chunk = g.chunk_shape();
    let mut attrs = with_geozarr(
        json!({
            "long_name": "Sentinel-2 observations per pixel and year",
            "comment": "Usable optical observations behind each embedding (TESSERA's global store, s2_obs_count), copied from the same source pixel as the embedding. 65535 (the fill) wherever scales is NaN.",
            "units": "1",
            "grid_mapping": "spatial_ref",
            "coordinates": "spatial_ref",
        }),
        g,
    );
    // For rioxarray, as on `embeddings`; not `_FillValue`, which makes xarray decode to float.
    attrs["nodata"] = json!(COUNTS_FILL);
    json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": [layout.years as u64, g.rows() as u64, g.cols() as u64],
        "data_type": "uint16",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": &shard[..3]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": COUNTS_FILL,
        "codecs": [sharding_codec(&chunk[..3], &layout.compression, 2, g.chunk_order)],
        "attributes": attrs,
        "dimension_names": ["year", "lat", "lon"],
    })
}

/// The band group's metadata: CF, ACDD 1.3 and GeoZarr `proj:`/`spatial:` attributes plus our
/// layout.
pub fn band_group_metadata(layout: &BandLayout, source: &str) -> Value {
    let g = &layout.grid;
    let last_year = layout.first_year + layout.years - 1;
    let attributes = with_geozarr(
        json!({
                "Conventions": "CF-1.10, ACDD-1.3",
                "title": format!("TESSERA embeddings, latitude band {}", g.name),
                "summary": format!(
                    "Annual 128-channel TESSERA embeddings between latitudes {} and {}, reprojected by nearest neighbour (bit-exact copies of source pixels) from per-cell UTM tiles onto a regular EPSG:4326 grid with {} rows and {} columns per 0.1-degree cell.",
                    g.lat_min(), g.lat_max(), g.rows_per_cell, g.cols_per_cell
                ),
                "keywords": "TESSERA, embeddings, foundation model, remote sensing",
                "geospatial_lat_min": g.lat_min(),
                "geospatial_lat_max": g.lat_max(),
                "geospatial_lon_min": -180.0,
                "geospatial_lon_max": 180.0,
                "geospatial_lat_units": "degrees_north",
                "geospatial_lon_units": "degrees_east",
                "geospatial_lat_resolution": g.lat_step(),
                "geospatial_lon_resolution": g.lon_step(),
                "time_coverage_start": format!("{}-01-01", layout.first_year),
                "time_coverage_end": format!("{last_year}-12-31"),
                "source": source,
                "history": format!("built by tessera-mosaic {} (format {})", env!("CARGO_PKG_VERSION"), layout.format_version),
                "processing_level": "nearest-neighbour mosaic of TESSERA tiles",
                "tessera_mosaic": layout,
        }),
        g,
    );
    let mut attributes = attributes;
    let (convention, geoemb) = geoemb_attributes();
    if let (Value::Object(map), Value::Object(extra)) = (&mut attributes, geoemb) {
        if let Some(Value::Array(conventions)) = map.get_mut("zarr_conventions") {
            conventions.push(convention);
        }
        map.extend(extra);
    }
    json!({
        "zarr_format": 3,
        "node_type": "group",
        "attributes": attributes,
    })
}

/// The root group: the list of bands and the consolidated metadata of every band and array
/// (`groups`: each band's group document as stored, with its own consolidated metadata).
pub fn root_group_metadata(groups: Vec<(String, Value)>) -> Value {
    let mut all = serde_json::Map::new();
    let mut bands = Vec::new();
    for (band, mut group) in groups {
        let children = group
            .as_object_mut()
            .and_then(|g| g.remove("consolidated_metadata"))
            .and_then(|c| c.get("metadata").cloned());
        all.insert(band.clone(), group);
        if let Some(Value::Object(children)) = children {
            for (name, meta) in children {
                all.insert(format!("{band}/{name}"), meta);
            }
        }
        bands.push(band);
    }
    json!({
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {
            "title": "TESSERA embeddings in latitude bands",
            "summary": "One group per latitude band; each holds embeddings (year, lat, lon, channel) and scales on a regular EPSG:4326 grid. Open a band with xarray.open_zarr(store, group=BAND).",
            "tessera_mosaic_bands": bands,
            "tessera_mosaic_format_version": FORMAT_VERSION,
        },
        "consolidated_metadata": {"kind": "inline", "must_understand": false, "metadata": all},
    })
}
