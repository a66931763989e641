//! `mosaic stac`: a static STAC catalog of a store, and a static HTML map beside it.
//!
//! Layout (docs/stac.md):
//!
//! ```text
//! OUT/catalog.json                               the root catalog
//! OUT/{year}/collection.json                     one collection per year with data
//! OUT/{year}/{year}-{band}/{year}-{band}.json    one item per band with data that year
//! OUT/index.html, OUT/map/, OUT/vendor/leaflet/  the map (unless disabled): tiles per year
//! ```
//!
//! Each item's asset points at the band's Zarr group (all years); the item's geometry is the
//! exact union of the cells present that year, its bbox the smallest box around them (crossing
//! the antimeridian when that is smaller, RFC 7946 section 5.2). Every document is written with
//! sorted keys and holds nothing that varies between runs: the same store gives the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use serde_json::{Value, json};

use super::footprint::{footprint_geojson, footprint_indices};
use super::map::{MapOptions, write_map, write_tiles};
use super::tiles::MapSummary;
use crate::grid::{BBox, CHANNELS, Cell};
use crate::preview::PreviewError;
use crate::store::{Store, StoreError};
use crate::zarr::{BandLayout, FormatError, MosaicStore, band_transform};

/// The STAC version written.
pub const STAC_VERSION: &str = "1.1.0";
/// Schema of the datacube extension used by the items.
pub const DATACUBE_EXTENSION: &str =
    "https://stac-extensions.github.io/datacube/v2.2.0/schema.json";
/// Schema of the projection extension used by the items.
pub const PROJECTION_EXTENSION: &str =
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json";
/// Media type of a Zarr asset. pystac 1.15 names `application/vnd.zarr` and keeps
/// `application/vnd+zarr` as deprecated; xpystac 0.5 opens exactly `application/vnd+zarr` or
/// `application/vnd.zarr` (no parameters); QGIS's STAC browser recognises exactly
/// `application/vnd+zarr` or `application/vnd.zarr; version=2|3[; profile=multiscales]`. The
/// one type all of them read is `application/vnd+zarr` (docs/stac.md).
pub const ZARR_MEDIA_TYPE: &str = "application/vnd+zarr";
/// Id of the root catalog.
pub const CATALOG_ID: &str = "tessera-mosaic";

/// Errors of `mosaic stac`.
#[derive(Debug, thiserror::Error)]
pub enum StacError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("drawing {what}: {source}")]
    Draw { what: String, source: PreviewError },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "Leaflet not found in {0}: expected leaflet.js and leaflet.css there or in its dist/ folder (npm ci installs it under node_modules/leaflet)"
    )]
    Leaflet(String),
    #[error("the store {0} has no band with data: nothing to catalog")]
    Empty(String),
    #[error("{what}")]
    Store {
        what: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error(
        "{key} is not a map tile state ({why}): remove map/tile-state/ in the output to draw every tile again"
    )]
    State { key: String, why: String },
}

pub(super) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StacError + '_ {
    move |source| StacError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Where item assets point. Hrefs are absolute: readers such as xpystac open `asset.href` as
/// given, so a relative href would resolve against the reader's working folder.
#[derive(Debug, Clone)]
pub enum AssetHref {
    /// `{path}/{band}`: the store at this absolute local path.
    Local(PathBuf),
    /// `{base}/{band}`: the store published at a URL (`s3://...`, `https://...`).
    Base(String),
}

impl AssetHref {
    /// The href of a band's group.
    pub fn band(&self, band: &str) -> String {
        match self {
            AssetHref::Local(store) => store.join(band).to_string_lossy().into_owned(),
            AssetHref::Base(base) => format!("{}/{band}", base.trim_end_matches('/')),
        }
    }
}

/// What to write.
#[derive(Debug, Clone)]
pub struct StacOptions {
    /// Where: a local folder or a bucket prefix, opened as a store.
    pub out: Store,
    /// How asset hrefs are formed.
    pub href: AssetHref,
    /// The map, unless `None`.
    pub map: Option<MapOptions>,
}

/// What `write_stac` wrote.
#[derive(Debug, Default)]
pub struct StacSummary {
    /// Years with a collection.
    pub years: Vec<u16>,
    /// Items written.
    pub items: usize,
    /// Cells covered, over all items.
    pub cells: usize,
    /// The map's tiles and pixel files.
    pub tiles: MapSummary,
    /// The map page (its location), if written.
    pub map: Option<String>,
    /// Seconds spent computing footprints.
    pub footprint_seconds: f64,
}

/// The cells present in one band, per year.
#[derive(Debug, Clone)]
pub struct BandCoverage {
    /// Band name (group).
    pub name: String,
    /// The band's layout.
    pub layout: BandLayout,
    /// Cells with both shards present, per year.
    pub cells: BTreeMap<u16, BTreeSet<Cell>>,
}

/// Read which cells every band of a store holds.
pub fn read_coverage(store: &MosaicStore) -> Result<Vec<BandCoverage>, StacError> {
    let mut out = Vec::new();
    for name in store.bands()? {
        let arrays = store.band_arrays(&name)?;
        let cells = store.built_cells(&arrays)?;
        out.push(BandCoverage {
            name,
            layout: arrays.layout.clone(),
            cells,
        });
    }
    Ok(out)
}

/// Relative path (with `/`) from folder `from` to `to`; both absolute and normalised.
pub fn relative_href(from: &Path, to: &Path) -> String {
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_string(); a.len() - common];
    parts.extend(
        b[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

fn year_start(year: u16) -> String {
    format!("{year}-01-01T00:00:00Z")
}

fn year_end(year: u16) -> String {
    format!("{year}-12-31T23:59:59Z")
}

/// Id of the collection of a year.
pub fn collection_id(year: u16) -> String {
    format!("{CATALOG_ID}-{year}")
}

/// Id of the item of a band in a year (also its folder and file name).
pub fn item_id(year: u16, band: &str) -> String {
    format!("{year}-{band}")
}

/// The datacube extension's `cube:dimensions` of a band: the axes of its arrays.
pub fn cube_dimensions(layout: &BandLayout) -> Value {
    let g = &layout.grid;
    let years = layout.year_values();
    let (first, last) = (layout.first_year, layout.first_year + layout.years - 1);
    json!({
        "lon": {
            "type": "spatial",
            "axis": "x",
            "extent": [g.col_lon(0), g.col_lon(g.cols() - 1)],
            "step": g.lon_step(),
            "reference_system": 4326,
            "description": format!("Longitude of pixel centres, degrees east; {} columns per 0.1-degree cell.", g.cols_per_cell),
        },
        "lat": {
            "type": "spatial",
            "axis": "y",
            "extent": [g.row_lat(0), g.row_lat(g.rows() - 1)],
            "step": g.lat_step(),
            "reference_system": 4326,
            "description": format!("Latitude of pixel centres, degrees north, ascending; {} rows per 0.1-degree cell.", g.rows_per_cell),
        },
        "year": {
            "type": "temporal",
            "extent": [year_start(first), year_end(last)],
            "values": years.iter().map(|y| year_start(*y)).collect::<Vec<_>>(),
            "step": "P1Y",
            "description": "Year of the annual embedding; the coordinate holds the year as an integer.",
        },
        "channel": {
            "type": "bands",
            "values": (0..CHANNELS as u64).collect::<Vec<_>>(),
            "description": "Embedding channel.",
        },
    })
}

/// The datacube extension's `cube:variables` of a band.
pub fn cube_variables() -> Value {
    json!({
        "embeddings": {
            "type": "data",
            "dimensions": ["year", "lat", "lon", "channel"],
            "description": "TESSERA embeddings, int8 quantised; dequantise as embeddings * scales.",
        },
        "scales": {
            "type": "data",
            "dimensions": ["year", "lat", "lon"],
            "description": "float32 scale of each pixel's embedding; NaN marks every pixel without data.",
        },
        "spatial_ref": {
            "type": "auxiliary",
            "dimensions": [],
            "description": "CF grid mapping of EPSG:4326.",
        },
    })
}

/// Write a JSON document with sorted keys, pretty, newline-terminated.
pub(super) fn write_json(out: &Store, key: &str, value: &Value) -> Result<(), StacError> {
    let mut value = value.clone();
    value.sort_all_objects();
    let mut text = serde_json::to_vec_pretty(&value).expect("JSON serialises");
    text.push(b'\n');
    write_file(out, key, &text)
}

/// Write one object of the output (a whole-object write: a file appears complete or not at
/// all, in a folder as in a bucket).
pub(super) fn write_file(out: &Store, key: &str, bytes: &[u8]) -> Result<(), StacError> {
    out.put(key, bytes.to_vec())
        .map_err(|source| StacError::Store {
            what: format!("writing {}/{key}", out.location),
            source: Box::new(source),
        })
}

/// Write the catalog (and the map) for a store, or only a share's map tiles when
/// `options.map` has a share. Returns what was written.
pub fn write_stac(store: &MosaicStore, options: &StacOptions) -> Result<StacSummary, StacError> {
    let bands = read_coverage(store)?;
    let mut by_year: BTreeMap<u16, Vec<(&BandCoverage, &BTreeSet<Cell>)>> = BTreeMap::new();
    for band in &bands {
        for (year, cells) in &band.cells {
            if !cells.is_empty() {
                by_year.entry(*year).or_default().push((band, cells));
            }
        }
    }
    if by_year.is_empty() {
        return Err(StacError::Empty(store.location().to_string()));
    }
    let out = &options.out;
    // Temporaries of a killed run's writes (local folders), so a rerun leaves the folder a
    // clean run leaves.
    out.remove_stale_temporaries("")
        .map_err(|source| StacError::Store {
            what: format!("removing the temporaries left in {}", out.location),
            source: Box::new(source),
        })?;
    let mut summary = StacSummary {
        years: by_year.keys().copied().collect(),
        ..Default::default()
    };
    if let Some(map) = options.map.as_ref().filter(|m| m.share.is_some()) {
        // A share draws its tiles only: the final run writes the catalogue and the page.
        summary.tiles = write_tiles(store, out, &by_year, map)?;
        return Ok(summary);
    }

    let mut children = Vec::new();
    for (year, entries) in &by_year {
        let cid = collection_id(*year);
        let mut item_links = Vec::new();
        for (band, cells) in entries {
            let id = item_id(*year, &band.name);
            let started = std::time::Instant::now();
            let footprint = footprint_indices(cells);
            summary.footprint_seconds += started.elapsed().as_secs_f64();
            let href = options.href.band(&band.name);
            let g = &band.layout.grid;
            let mut assets = serde_json::Map::new();
            assets.insert(
                "zarr".into(),
                json!({
                    "href": href,
                    "type": ZARR_MEDIA_TYPE,
                    "roles": ["data"],
                    "title": format!("Zarr v3 group of band {}", band.name),
                    "description": format!(
                        "The Zarr group of band {} with all its years (consolidated metadata); this item's year is year={year}. Open with xarray.open_zarr(href) or xarray.open_dataset(asset, engine=\"stac\").",
                        band.name
                    ),
                    "zarr:zarr_format": 3,
                    "zarr:consolidated": true,
                    "proj:shape": [g.rows(), g.cols()],
                    "proj:transform": band_transform(g),
                }),
            );
            let item = json!({
                "type": "Feature",
                "stac_version": STAC_VERSION,
                "stac_extensions": [DATACUBE_EXTENSION, PROJECTION_EXTENSION],
                "id": id,
                "collection": cid,
                "geometry": footprint_geojson(&footprint),
                "bbox": BBox::around_cells(cells.iter()).expect("cells").to_array(),
                "properties": {
                    "title": format!("TESSERA embeddings {year}, latitude band {}", band.name),
                    "description": format!(
                        "The {} cells of band {} (latitudes {} to {}) with a tile in {year}.",
                        cells.len(), band.name, g.lat_min(), g.lat_max()
                    ),
                    "datetime": null,
                    "start_datetime": year_start(*year),
                    "end_datetime": year_end(*year),
                    "proj:code": "EPSG:4326",
                    "cube:dimensions": cube_dimensions(&band.layout),
                    "cube:variables": cube_variables(),
                    "tessera_mosaic:band": band.name,
                    "tessera_mosaic:year": year,
                    "tessera_mosaic:cells": cells.len(),
                },
                "links": [
                    {"rel": "root", "href": "../../catalog.json", "type": "application/json", "title": "TESSERA mosaic"},
                    {"rel": "parent", "href": "../collection.json", "type": "application/json"},
                    {"rel": "collection", "href": "../collection.json", "type": "application/json"},
                ],
                "assets": assets,
            });
            write_json(out, &format!("{year}/{id}/{id}.json"), &item)?;
            item_links.push(json!({
                "rel": "item",
                "href": format!("./{id}/{id}.json"),
                "type": "application/geo+json",
                "title": band.name,
            }));
            summary.items += 1;
            summary.cells += cells.len();
        }
        let all_cells: BTreeSet<Cell> = entries
            .iter()
            .flat_map(|(_, c)| c.iter())
            .copied()
            .collect();
        let mut links = vec![
            json!({"rel": "root", "href": "../catalog.json", "type": "application/json", "title": "TESSERA mosaic"}),
            json!({"rel": "parent", "href": "../catalog.json", "type": "application/json"}),
        ];
        links.extend(item_links);
        let collection = json!({
            "type": "Collection",
            "stac_version": STAC_VERSION,
            "id": cid,
            "title": format!("TESSERA embeddings {year}"),
            "description": format!(
                "TESSERA annual embeddings of {year} on regular EPSG:4326 grids, one item per latitude band (Zarr v3 group) with the cells present that year as its geometry."
            ),
            "license": "other",
            "keywords": ["TESSERA", "embeddings", "foundation model", "Zarr"],
            "extent": {
                "spatial": {"bbox": [BBox::around_cells(all_cells.iter()).expect("cells").to_array()]},
                "temporal": {"interval": [[year_start(*year), year_end(*year)]]},
            },
            "links": links,
        });
        write_json(out, &format!("{year}/collection.json"), &collection)?;
        children.push(json!({
            "rel": "child",
            "href": format!("./{year}/collection.json"),
            "type": "application/json",
            "title": format!("TESSERA embeddings {year}"),
        }));
    }
    let mut links = vec![
        json!({"rel": "root", "href": "./catalog.json", "type": "application/json", "title": "TESSERA mosaic"}),
    ];
    links.extend(children);
    if options.map.is_some() {
        links.push(json!({"rel": "alternate", "href": "./index.html", "type": "text/html", "title": "Map of the catalog"}));
    }
    let catalog = json!({
        "type": "Catalog",
        "stac_version": STAC_VERSION,
        "id": CATALOG_ID,
        "title": "TESSERA mosaic",
        "description": "Static STAC catalog of a tessera-mosaic Zarr store: one collection per year, one item per latitude band with data that year, each pointing at the band's Zarr group.",
        "links": links,
    });
    write_json(out, "catalog.json", &catalog)?;

    if let Some(map) = &options.map {
        summary.tiles = write_map(store, out, &bands, &by_year, map)?;
        summary.map = Some(format!("{}/index.html", out.location));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_hrefs() {
        assert_eq!(
            relative_href(
                Path::new("/a/stac/2023/x"),
                Path::new("/a/store.zarr/70-80")
            ),
            "../../../store.zarr/70-80"
        );
        assert_eq!(relative_href(Path::new("/a"), Path::new("/a/b")), "b");
    }

    #[test]
    fn asset_hrefs_are_absolute() {
        let local = AssetHref::Local(PathBuf::from("/data/store.zarr"));
        assert_eq!(local.band("70-80"), "/data/store.zarr/70-80");
        let s3 = AssetHref::Base("s3://bucket/store.zarr/".into());
        assert_eq!(s3.band("S70-S60"), "s3://bucket/store.zarr/S70-S60");
    }
}
