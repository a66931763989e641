//! `mosaic stac`: a static STAC catalog of a store, and a static HTML map beside it.
//!
//! Layout (docs/stac.md):
//!
//! ```text
//! OUT/catalog.json                               the root catalog
//! OUT/{year}/collection.json                     one collection per year with data
//! OUT/{year}/{year}-{band}/{year}-{band}.json    one item per band with data that year
//! OUT/index.html, OUT/map/, OUT/vendor/leaflet/  the map (unless disabled)
//! ```
//!
//! Each item's asset points at the band's Zarr group (all years); the item's geometry is the
//! exact union of the cells present that year, its bbox the smallest box around them (crossing
//! the antimeridian when that is smaller, RFC 7946 section 5.2). Every document is written with
//! sorted keys and holds nothing that varies between runs: the same store gives the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use geo::{BoundingRect, LineString, MultiPolygon, Polygon, coord};
use serde_json::{Value, json};

use crate::cell::{Cell, LAT_CELLS, LON_CELLS};
use crate::preview::{self, BBox, Image, PreviewError};
use crate::store::{BandLayout, Store, StoreError};
use crate::tiles::CHANNELS;

/// The STAC version written.
pub const STAC_VERSION: &str = "1.1.0";
/// Schema of the datacube extension used by the items.
pub const DATACUBE_EXTENSION: &str =
    "https://stac-extensions.github.io/datacube/v2.2.0/schema.json";
/// Schema of the projection extension used by the items.
pub const PROJECTION_EXTENSION: &str =
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json";
/// Media type of a Zarr asset (STAC best practices).
pub const ZARR_MEDIA_TYPE: &str = "application/vnd+zarr";
/// Id of the root catalog.
pub const CATALOG_ID: &str = "tessera-mosaic";
/// Width in degrees of the longitude blocks previews are rendered in.
pub const PREVIEW_BLOCK_DEG: u16 = 10;

/// The map page (its data comes from `map/layers.js`).
const MAP_HTML: &str = include_str!("stac_map.html");
/// Colour of covered cells in the coverage images (RGBA).
pub const COVERAGE_RGBA: [u8; 4] = [0, 170, 200, 255];

/// Errors of `mosaic stac`.
#[derive(Debug, thiserror::Error)]
pub enum StacError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("preview of {what}: {source}")]
    Preview { what: String, source: PreviewError },
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
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StacError + '_ {
    move |source| StacError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Where item assets point.
#[derive(Debug, Clone)]
pub enum AssetHref {
    /// Paths relative to each item file, to the store at this (absolute) local path.
    Relative(PathBuf),
    /// `{base}/{band}`: the store published at a URL.
    Base(String),
}

/// What to write.
#[derive(Debug, Clone)]
pub struct StacOptions {
    /// Output folder.
    pub out: PathBuf,
    /// How asset hrefs are formed.
    pub href: AssetHref,
    /// The map, unless `None`.
    pub map: Option<MapOptions>,
}

/// Options of the HTML map.
#[derive(Debug, Clone)]
pub struct MapOptions {
    /// Folder holding `leaflet.js`, `leaflet.css` and `images/` (Leaflet's `dist`).
    pub leaflet_dist: PathBuf,
    /// Maximum width and height in pixels of each preview image.
    pub preview_size: usize,
    /// Band-years with more cells than this get no previews (previews read data per cell).
    pub max_preview_cells: usize,
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
    /// Preview images written.
    pub previews: usize,
    /// Band-years whose previews were skipped, with the reason.
    pub skipped_previews: Vec<String>,
    /// The map page, if written.
    pub map: Option<PathBuf>,
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
pub fn read_coverage(store: &Store) -> Result<Vec<BandCoverage>, StacError> {
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

/// A lattice ring without the points where it goes straight on.
fn drop_straight_points(ring: Vec<(i32, i32)>) -> Vec<(i32, i32)> {
    let n = ring.len();
    (0..n)
        .filter(|&i| {
            let (a, b, c) = (ring[(i + n - 1) % n], ring[i], ring[(i + 1) % n]);
            (b.0 - a.0) * (c.1 - b.1) != (b.1 - a.1) * (c.0 - b.0)
        })
        .map(|i| ring[i])
        .collect()
}

/// Polygons covering exactly the given cells, in cell-index units (x = lon index, y = lat
/// index, corners at integers), exterior rings counter-clockwise and holes clockwise.
///
/// Traced on the lattice itself, exactly: every cell side with no cell beyond it is a boundary
/// edge, the edges are linked into rings, and each hole goes to the exterior of its own
/// 4-connected piece of cells. Cells touching only at a corner belong to separate polygons.
/// (A general polygon union, tried first, returned invalid polygons for ~0.1% of a
/// continent-sized mask.)
pub fn footprint_indices(cells: &BTreeSet<Cell>) -> MultiPolygon<f64> {
    type Point = (i32, i32);
    let has = |x: i32, y: i32| {
        (0..LON_CELLS as i32).contains(&x)
            && (0..LAT_CELLS as i32).contains(&y)
            && cells.contains(&Cell {
                lon_index: x as u16,
                lat_index: y as u16,
            })
    };
    // Boundary edges of the union, each directed with the cells on its left: exteriors run
    // counter-clockwise, holes clockwise. Keyed by start point (a point starts at most two).
    let mut edges: BTreeMap<Point, Vec<Point>> = BTreeMap::new();
    for c in cells {
        let (x, y) = (c.lon_index as i32, c.lat_index as i32);
        let sides = [
            ((x, y), (x + 1, y), (x, y - 1)),
            ((x + 1, y), (x + 1, y + 1), (x + 1, y)),
            ((x + 1, y + 1), (x, y + 1), (x, y + 1)),
            ((x, y + 1), (x, y), (x - 1, y)),
        ];
        for (from, to, neighbour) in sides {
            if !has(neighbour.0, neighbour.1) {
                edges.entry(from).or_default().push(to);
            }
        }
    }
    // Trace rings. Where two cells touch only at a corner, turn left: the cells stay in
    // separate rings (polygons touching at a point), so every ring is simple.
    let mut rings: Vec<Vec<Point>> = Vec::new();
    while let Some((&start, _)) = edges.iter().next() {
        let mut ring = vec![start];
        let (mut prev, mut at) = (start, start);
        loop {
            let outs = edges
                .get_mut(&at)
                .expect("boundary edges form closed rings");
            let k = if outs.len() == 1 {
                0
            } else {
                let d_in = (at.0 - prev.0, at.1 - prev.1);
                let left = (-d_in.1, d_in.0);
                outs.iter()
                    .position(|p| (p.0 - at.0, p.1 - at.1) == left)
                    .unwrap_or(0)
            };
            let next = outs.swap_remove(k);
            if outs.is_empty() {
                edges.remove(&at);
            }
            (prev, at) = (at, next);
            if at == start {
                break;
            }
            ring.push(at);
        }
        // A ring that passes a corner twice (where cells of one piece touch diagonally) is
        // split there into simple rings: an exterior and a hole touching at that point.
        let mut simple: Vec<Vec<Point>> = Vec::new();
        let mut stack: Vec<Point> = Vec::new();
        let mut seen: BTreeMap<Point, usize> = BTreeMap::new();
        for p in ring.into_iter().chain([start]) {
            if let Some(&i) = seen.get(&p) {
                let lp: Vec<Point> = stack.drain(i..).collect();
                for q in &lp {
                    seen.remove(q);
                }
                simple.push(lp);
            }
            seen.insert(p, stack.len());
            stack.push(p);
        }
        rings.extend(simple.into_iter().map(drop_straight_points));
    }
    // Twice the signed area: positive for exteriors, negative for holes.
    let area2 = |r: &[Point]| -> i64 {
        (0..r.len())
            .map(|i| {
                let (a, b) = (r[i], r[(i + 1) % r.len()]);
                a.0 as i64 * b.1 as i64 - b.0 as i64 * a.1 as i64
            })
            .sum()
    };
    // The cell left of a ring's first edge names its 4-connected piece of cells; a hole
    // belongs to the exterior of the same piece.
    let mut piece_of: BTreeMap<Cell, usize> = BTreeMap::new();
    let mut pieces = 0;
    for &c in cells {
        if piece_of.contains_key(&c) {
            continue;
        }
        let mut stack = vec![c];
        piece_of.insert(c, pieces);
        while let Some(c) = stack.pop() {
            let (x, y) = (c.lon_index as i32, c.lat_index as i32);
            for (nx, ny) in [(x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)] {
                if has(nx, ny) {
                    let n = Cell {
                        lon_index: nx as u16,
                        lat_index: ny as u16,
                    };
                    if let std::collections::btree_map::Entry::Vacant(e) = piece_of.entry(n) {
                        e.insert(pieces);
                        stack.push(n);
                    }
                }
            }
        }
        pieces += 1;
    }
    let left_cell = |r: &[Point]| {
        let (a, b) = (r[0], r[1 % r.len()]);
        let (x, y) = match (b.0 - a.0).signum() + 2 * (b.1 - a.1).signum() {
            1 => (a.0, a.1),          // east: the cell above
            2 => (a.0 - 1, a.1),      // north: the cell to the west
            -1 => (a.0 - 1, a.1 - 1), // west: the cell below
            _ => (a.0, a.1 - 1),      // south: the cell to the east
        };
        piece_of[&Cell {
            lon_index: x as u16,
            lat_index: y as u16,
        }]
    };
    let to_line = |r: &[Point]| {
        let mut pts: Vec<geo::Coord<f64>> = r
            .iter()
            .map(|&(x, y)| coord! {x: x as f64, y: y as f64})
            .collect();
        pts.push(pts[0]);
        LineString(pts)
    };
    let mut exteriors: BTreeMap<usize, LineString<f64>> = BTreeMap::new();
    let mut holes: BTreeMap<usize, Vec<LineString<f64>>> = BTreeMap::new();
    for r in &rings {
        if area2(r) > 0 {
            exteriors.insert(left_cell(r), to_line(r));
        } else {
            holes.entry(left_cell(r)).or_default().push(to_line(r));
        }
    }
    let mut parts: Vec<Polygon<f64>> = exteriors
        .into_iter()
        .map(|(piece, ext)| Polygon::new(ext, holes.remove(&piece).unwrap_or_default()))
        .collect();
    let key = |p: &Polygon<f64>| {
        p.bounding_rect()
            .map(|r| (r.min().y as i64, r.min().x as i64))
            .unwrap_or_default()
    };
    parts.sort_by_key(key);
    MultiPolygon(parts)
}

/// Longitude in degrees of a cell-column edge index (exact decimal for integer indices).
fn lon_of_index(x: f64) -> f64 {
    (x.round() as i32 - (LON_CELLS / 2) as i32) as f64 / 10.0
}

/// Latitude in degrees of a cell-row edge index.
fn lat_of_index(y: f64) -> f64 {
    (y.round() as i32 - (LAT_CELLS / 2) as i32) as f64 / 10.0
}

/// A footprint (cell-index units) as a GeoJSON geometry in degrees: a `Polygon` when it has
/// one part, else a `MultiPolygon`. Parts on both sides of the antimeridian stay separate.
pub fn footprint_geojson(footprint: &MultiPolygon<f64>) -> Value {
    let polygon = |p: &Polygon<f64>| -> Value {
        std::iter::once(p.exterior())
            .chain(p.interiors())
            .map(|ring| {
                ring.coords()
                    .map(|c| json!([lon_of_index(c.x), lat_of_index(c.y)]))
                    .collect::<Value>()
            })
            .collect()
    };
    if footprint.0.len() == 1 {
        json!({"type": "Polygon", "coordinates": polygon(&footprint.0[0])})
    } else {
        json!({
            "type": "MultiPolygon",
            "coordinates": footprint.0.iter().map(polygon).collect::<Vec<_>>(),
        })
    }
}

/// `[west, south, east, north]` in degrees of the smallest box holding the cells. When that box
/// crosses the antimeridian, west > east (RFC 7946 section 5.2). `None` for no cells.
pub fn cells_bbox<'a>(cells: impl IntoIterator<Item = &'a Cell>) -> Option<[f64; 4]> {
    let mut columns = BTreeSet::new();
    let (mut south, mut north) = (u16::MAX, 0u16);
    for c in cells {
        columns.insert(c.lon_index);
        south = south.min(c.lat_index);
        north = north.max(c.lat_index + 1);
    }
    let columns: Vec<u16> = columns.into_iter().collect();
    let (first, last) = (*columns.first()?, *columns.last()?);
    // The empty stretch of columns across the antimeridian, then every other: the box leaves
    // out the longest one (ties keep the box that does not cross).
    let mut gap = first as i32 + LON_CELLS as i32 - last as i32 - 1;
    let (mut west, mut east) = (first, last + 1);
    for w in columns.windows(2) {
        let g = (w[1] - w[0]) as i32 - 1;
        if g > gap {
            gap = g;
            west = w[1];
            east = w[0] + 1;
        }
    }
    Some([
        lon_of_index(west as f64),
        lat_of_index(south as f64),
        lon_of_index(east as f64),
        lat_of_index(north as f64),
    ])
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
fn write_json(path: &Path, value: &Value) -> Result<(), StacError> {
    let mut value = value.clone();
    value.sort_all_objects();
    let mut text = serde_json::to_vec_pretty(&value).expect("JSON serialises");
    text.push(b'\n');
    write_file(path, &text)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), StacError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    std::fs::write(path, bytes).map_err(io_err(path))
}

/// One preview image on the map.
#[derive(Debug, Clone)]
struct PreviewTile {
    year: u16,
    band: String,
    file: String,
    bbox: BBox,
}

/// Write the catalog (and the map) for a store. Returns what was written.
pub fn write_stac(store: &Store, options: &StacOptions) -> Result<StacSummary, StacError> {
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
        return Err(StacError::Empty(store.location.clone()));
    }
    let out = &options.out;
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let out = std::fs::canonicalize(out).map_err(io_err(out))?;
    let mut summary = StacSummary {
        years: by_year.keys().copied().collect(),
        ..Default::default()
    };

    // Previews first, so that items can list them as assets.
    let mut previews: Vec<PreviewTile> = Vec::new();
    if let Some(map) = &options.map {
        for (year, entries) in &by_year {
            for (band, cells) in entries {
                if cells.len() > map.max_preview_cells {
                    summary.skipped_previews.push(format!(
                        "{} {year}: {} cells (more than --max-preview-cells {})",
                        band.name,
                        cells.len(),
                        map.max_preview_cells
                    ));
                    continue;
                }
                previews.extend(render_previews(store, &out, *year, band, cells, map)?);
            }
        }
        summary.previews = previews.len();
    }

    let mut children = Vec::new();
    for (year, entries) in &by_year {
        let cid = collection_id(*year);
        let mut item_links = Vec::new();
        for (band, cells) in entries {
            let id = item_id(*year, &band.name);
            let item_dir = out.join(year.to_string()).join(&id);
            let started = std::time::Instant::now();
            let footprint = footprint_indices(cells);
            summary.footprint_seconds += started.elapsed().as_secs_f64();
            let href = match &options.href {
                AssetHref::Relative(store_path) => {
                    relative_href(&item_dir, &store_path.join(&band.name))
                }
                AssetHref::Base(base) => format!("{}/{}", base.trim_end_matches('/'), band.name),
            };
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
                        "All years of band {} (one group, consolidated metadata); this item's year is year={year}. Open with xarray.open_zarr(href).",
                        band.name
                    ),
                    "proj:shape": [g.rows(), g.cols()],
                    "proj:transform": [g.lon_step(), 0.0, -180.0, 0.0, g.lat_step(), g.lat_min()],
                }),
            );
            for (k, p) in previews
                .iter()
                .filter(|p| p.year == *year && p.band == band.name)
                .enumerate()
            {
                assets.insert(
                    format!("preview-{k}"),
                    json!({
                        "href": relative_href(&item_dir, &out.join(&p.file)),
                        "type": "image/png",
                        "roles": ["overview"],
                        "title": format!(
                            "PCA preview, lon {}..{}, lat {}..{}",
                            p.bbox.lon0, p.bbox.lon1, p.bbox.lat0, p.bbox.lat1
                        ),
                    }),
                );
            }
            let item = json!({
                "type": "Feature",
                "stac_version": STAC_VERSION,
                "stac_extensions": [DATACUBE_EXTENSION, PROJECTION_EXTENSION],
                "id": id,
                "collection": cid,
                "geometry": footprint_geojson(&footprint),
                "bbox": cells_bbox(cells.iter()).expect("cells"),
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
            write_json(&item_dir.join(format!("{id}.json")), &item)?;
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
                "spatial": {"bbox": [cells_bbox(all_cells.iter()).expect("cells")]},
                "temporal": {"interval": [[year_start(*year), year_end(*year)]]},
            },
            "links": links,
        });
        write_json(
            &out.join(year.to_string()).join("collection.json"),
            &collection,
        )?;
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
    write_json(&out.join("catalog.json"), &catalog)?;

    if let Some(map) = &options.map {
        write_map(&out, &bands, &by_year, &previews, map)?;
        summary.map = Some(out.join("index.html"));
    }
    Ok(summary)
}

/// Render the previews of one band-year: one per 10-degree block of longitude with cells,
/// over the box of the cells in that block.
fn render_previews(
    store: &Store,
    out: &Path,
    year: u16,
    band: &BandCoverage,
    cells: &BTreeSet<Cell>,
    map: &MapOptions,
) -> Result<Vec<PreviewTile>, StacError> {
    let block_cells = PREVIEW_BLOCK_DEG * 10;
    let mut blocks: BTreeMap<u16, Vec<Cell>> = BTreeMap::new();
    for c in cells {
        blocks
            .entry(c.lon_index / block_cells)
            .or_default()
            .push(*c);
    }
    let mut tiles = Vec::new();
    for (block, cells) in blocks {
        let [lon0, lat0, lon1, lat1] = cells_bbox(cells.iter()).expect("cells");
        let bbox = BBox {
            lon0,
            lat0,
            lon1,
            lat1,
        };
        let what = format!("{} {year} block {block}", band.name);
        // render_embeddings bounds the width; bound the height too.
        let g = &band.layout.grid;
        let (cols, rows) = ((lon1 - lon0) / g.lon_step(), (lat1 - lat0) / g.lat_step());
        let width = if rows > cols {
            (map.preview_size as f64 * cols / rows).round() as usize
        } else {
            map.preview_size
        };
        let image = match preview::render_embeddings(
            store,
            &band.name,
            Some(year),
            Some(bbox),
            width.max(1),
        ) {
            Ok((image, _, _)) => image,
            // Cells whose tiles hold no valid pixel at all: nothing to show.
            Err(PreviewError::Empty(_)) => continue,
            Err(source) => return Err(StacError::Preview { what, source }),
        };
        let file = format!("map/preview-{year}-{}-{block:02}.png", band.name);
        let path = out.join(&file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        image
            .write_png(&path)
            .map_err(|source| StacError::Preview { what, source })?;
        tiles.push(PreviewTile {
            year,
            band: band.name.clone(),
            file,
            bbox,
        });
    }
    Ok(tiles)
}

/// The coverage image of one year: one pixel per cell over latitude cells
/// `lat_start..lat_end` and all longitudes, covered cells in [`COVERAGE_RGBA`], the rest
/// transparent. Row 0 is the northern row.
pub fn coverage_image<'a>(
    cells: impl IntoIterator<Item = &'a Cell>,
    lat_start: u16,
    lat_end: u16,
) -> Image {
    let width = LON_CELLS as usize;
    let height = (lat_end - lat_start) as usize;
    let mut rgba = vec![0u8; width * height * 4];
    for c in cells {
        if c.lat_index < lat_start || c.lat_index >= lat_end {
            continue;
        }
        let row = (lat_end - 1 - c.lat_index) as usize;
        let p = (row * width + c.lon_index as usize) * 4;
        rgba[p..p + 4].copy_from_slice(&COVERAGE_RGBA);
    }
    Image {
        width,
        height,
        rgba,
    }
}

/// Find Leaflet's `dist` folder: `dir` itself, or `dir/dist`.
pub fn leaflet_dist(dir: &Path) -> Result<PathBuf, StacError> {
    for candidate in [dir.to_path_buf(), dir.join("dist")] {
        if candidate.join("leaflet.js").is_file() && candidate.join("leaflet.css").is_file() {
            return Ok(candidate);
        }
    }
    Err(StacError::Leaflet(dir.display().to_string()))
}

/// Look for `node_modules/leaflet` in `start` and its ancestors.
pub fn find_leaflet(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|d| d.join("node_modules").join("leaflet"))
        .find(|d| leaflet_dist(d).is_ok())
}

/// Copy leaflet.js, leaflet.css and images/ into `out/vendor/leaflet`.
fn copy_leaflet(dist: &Path, out: &Path) -> Result<(), StacError> {
    let target = out.join("vendor").join("leaflet");
    std::fs::create_dir_all(target.join("images")).map_err(io_err(&target))?;
    for name in ["leaflet.js", "leaflet.css"] {
        std::fs::copy(dist.join(name), target.join(name)).map_err(io_err(&dist.join(name)))?;
    }
    let images = dist.join("images");
    if images.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(&images)
            .map_err(io_err(&images))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io_err(&images))?
            .into_iter()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
            .collect();
        names.sort();
        for p in names {
            let to = target
                .join("images")
                .join(p.file_name().expect("file name"));
            std::fs::copy(&p, &to).map_err(io_err(&p))?;
        }
    }
    Ok(())
}

/// Write index.html, map/layers.js, the coverage images and Leaflet.
fn write_map(
    out: &Path,
    bands: &[BandCoverage],
    by_year: &BTreeMap<u16, Vec<(&BandCoverage, &BTreeSet<Cell>)>>,
    previews: &[PreviewTile],
    map: &MapOptions,
) -> Result<(), StacError> {
    copy_leaflet(&map.leaflet_dist, out)?;
    // Coverage images span the latitudes of the store's bands.
    let lat_start = bands
        .iter()
        .map(|b| b.layout.grid.lat_start_index)
        .min()
        .expect("bands");
    let lat_end = bands
        .iter()
        .map(|b| b.layout.grid.lat_end_index)
        .max()
        .expect("bands");
    let mut coverage = Vec::new();
    for (year, entries) in by_year {
        let image = coverage_image(
            entries.iter().flat_map(|(_, c)| c.iter()),
            lat_start,
            lat_end,
        );
        let file = format!("map/coverage-{year}.png");
        let path = out.join(&file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        image
            .write_png(&path)
            .map_err(|source| StacError::Preview {
                what: format!("coverage {year}"),
                source,
            })?;
        coverage.push(json!({
            "year": year,
            "href": file,
            "cells": entries.iter().map(|(_, c)| c.len()).sum::<usize>(),
            "bounds": [[lat_of_index(lat_start as f64), -180.0], [lat_of_index(lat_end as f64), 180.0]],
        }));
    }
    let band_list: Vec<Value> = bands
        .iter()
        .map(|b| {
            let g = &b.layout.grid;
            json!({
                "name": b.name,
                "south": g.lat_min(),
                "north": g.lat_max(),
                "cols_per_cell": g.cols_per_cell,
                "rows_per_cell": g.rows_per_cell,
                "years": b.cells.iter().filter(|(_, c)| !c.is_empty()).map(|(y, c)| json!({
                    "year": y,
                    "cells": c.len(),
                    "item": format!("{y}/{id}/{id}.json", id = item_id(*y, &b.name)),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let preview_list: Vec<Value> = previews
        .iter()
        .map(|p| {
            json!({
                "year": p.year,
                "band": p.band,
                "href": p.file,
                "bounds": [[p.bbox.lat0, p.bbox.lon0], [p.bbox.lat1, p.bbox.lon1]],
            })
        })
        .collect();
    let all_cells = by_year.values().flatten().flat_map(|(_, c)| c.iter());
    let (mut south, mut north, mut west, mut east) = (90.0f64, -90.0f64, 180.0f64, -180.0f64);
    for c in all_cells {
        south = south.min(c.lat_min());
        north = north.max(c.lat_min() + 0.1);
        west = west.min(c.lon_min());
        east = east.max(c.lon_min() + 0.1);
    }
    let mut data = json!({
        "catalog": "catalog.json",
        "bands": band_list,
        "coverage": coverage,
        "previews": preview_list,
        "data_bounds": [[south, west], [north, east]],
    });
    data.sort_all_objects();
    let script = format!(
        "// Generated by `mosaic stac`: the layers of index.html.\nwindow.MOSAIC = {};\n",
        serde_json::to_string_pretty(&data).expect("JSON serialises")
    );
    write_file(&out.join("map").join("layers.js"), script.as_bytes())?;
    write_file(&out.join("index.html"), MAP_HTML.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(lon: f64, lat: f64) -> Cell {
        Cell::containing(lon + 0.05, lat + 0.05).unwrap()
    }

    #[test]
    fn bbox_crosses_the_antimeridian_only_when_smaller() {
        let cells = [
            cell(5.9, 70.0),
            cell(6.0, 70.0),
            cell(179.9, 70.0),
            cell(-180.0, 70.1),
        ];
        assert_eq!(cells_bbox(cells.iter()), Some([5.9, 70.0, -179.9, 70.2]));
        let cells = [cell(5.9, 70.0), cell(6.0, 70.1)];
        assert_eq!(cells_bbox(cells.iter()), Some([5.9, 70.0, 6.1, 70.2]));
        let cells = [cell(179.9, -65.0), cell(-180.0, -64.9)];
        assert_eq!(
            cells_bbox(cells.iter()),
            Some([179.9, -65.0, -179.9, -64.8])
        );
        assert_eq!(cells_bbox([].iter()), None);
    }

    #[test]
    fn footprint_merges_cells_and_keeps_holes() {
        // A 3x3 ring of cells around an empty centre, plus a separate cell.
        let mut cells = BTreeSet::new();
        for i in 0..3 {
            for j in 0..3 {
                if (i, j) != (1, 1) {
                    cells.insert(Cell::new(100 + i, 200 + j).unwrap());
                }
            }
        }
        cells.insert(Cell::new(110, 200).unwrap());
        let fp = footprint_indices(&cells);
        assert_eq!(fp.0.len(), 2);
        let ring = &fp.0[0];
        assert_eq!(ring.interiors().len(), 1);
        use geo::Area;
        assert_eq!(fp.unsigned_area(), cells.len() as f64);
        assert!(ring.exterior().is_closed());
        // Exterior counter-clockwise, hole clockwise (RFC 7946).
        assert!(ring.signed_area() > 0.0);
        let geo = footprint_geojson(&fp);
        assert_eq!(geo["type"], "MultiPolygon");
        assert_eq!(geo["coordinates"][1][0][0].as_array().unwrap().len(), 2);
    }

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
    fn coverage_image_puts_north_on_top() {
        let cells = [cell(-180.0, 70.0), cell(179.9, 70.1)];
        let img = coverage_image(cells.iter(), 1600, 1602);
        assert_eq!((img.width, img.height), (3600, 2));
        let px = |r: usize, c: usize| &img.rgba[(r * 3600 + c) * 4..(r * 3600 + c) * 4 + 4];
        assert_eq!(px(1, 0), COVERAGE_RGBA);
        assert_eq!(px(0, 3599), COVERAGE_RGBA);
        assert_eq!(px(0, 0), [0, 0, 0, 0]);
        assert_eq!(img.rgba.chunks(4).filter(|p| p[3] != 0).count(), 2);
    }
}

#[cfg(test)]
mod scale {
    use super::*;

    /// A land-like mask over a whole year: footprints and the coverage image are exact for ~2
    /// million cells (areas and pixel counts equal the cell counts); `--nocapture` prints
    /// their times.
    #[test]
    fn a_whole_year_of_cells() {
        use geo::Area;
        let mut cells_by_band: Vec<BTreeSet<Cell>> = vec![BTreeSet::new(); 18];
        let mut n = 0;
        for lat in 0..LAT_CELLS {
            for lon in 0..LON_CELLS {
                let (x, y) = (lon as f64 / 60.0, lat as f64 / 40.0);
                let v = (x.sin() * y.cos()
                    + (2.3 * x + 0.7).sin() * (1.7 * y).sin() * 0.6
                    + (((lon as u32).wrapping_mul(2654435761) ^ (lat as u32 * 40503)) % 1000)
                        as f64
                        / 4000.0)
                    .abs();
                if v > 0.55 && lat > 300 {
                    cells_by_band[lat as usize / 100].insert(Cell::new(lon, lat).unwrap());
                    n += 1;
                }
            }
        }
        let start = std::time::Instant::now();
        let mut parts = 0;
        let mut vertices = 0;
        for cells in &cells_by_band {
            let fp = footprint_indices(cells);
            // In cell-index units every cell has area 1: the union covers exactly the cells.
            assert_eq!(fp.unsigned_area().round() as usize, cells.len());
            assert!(fp.0.iter().all(geo::Validation::is_valid));
            parts += fp.0.len();
            vertices += fp.0.iter().map(|p| p.exterior().0.len()).sum::<usize>();
            let _ = cells_bbox(cells.iter());
        }
        let footprints = start.elapsed().as_secs_f64();
        let start = std::time::Instant::now();
        let image = coverage_image(cells_by_band.iter().flatten(), 0, LAT_CELLS);
        assert_eq!(image.rgba.chunks(4).filter(|p| p[3] != 0).count(), n);
        let path = std::env::temp_dir().join("mosaic-coverage-scale.png");
        image.write_png(&path).unwrap();
        println!(
            "{n} cells in 18 bands: footprints {footprints:.2} s ({parts} polygons, {vertices} exterior vertices); coverage PNG {:.2} s, {} bytes",
            start.elapsed().as_secs_f64(),
            std::fs::metadata(&path).unwrap().len()
        );
    }
}
