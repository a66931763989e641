//! The map beside the catalog: a static Leaflet page (Leaflet travels inside the binary), one
//! coverage image per year, per year a pyramid of embedding tiles (tiles.rs), and a Zarr reader
//! with which the page reads the store itself on a click (zarr.js, fzstd built in too).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::catalog::{BandCoverage, StacError, io_err, item_id, write_file};
use super::footprint::edge_lat;
use super::tiles::{MapSummary, TILE_SIZE, TileWriter};
use crate::grid::BBox;
use crate::grid::{Cell, LON_CELLS};
use crate::preview::{Image, PreviewError, Pyramids, cell_image};
use crate::store::Store;
use crate::zarr::{MosaicStore, overview_levels};

/// The map page (its data comes from `map/layers.js`).
const MAP_HTML: &str = include_str!("map.html");
/// Colour of covered cells in the coverage images (RGBA).
pub const COVERAGE_RGBA: [u8; 4] = [0, 170, 200, 255];

/// Options of the HTML map.
#[derive(Debug, Clone, Default)]
pub struct MapOptions {
    /// Leaflet's `dist` folder to copy instead of the built-in Leaflet.
    pub leaflet_dist: Option<PathBuf>,
    /// Deepest zoom of the tiles written (default: the zoom of the finest overview pixels).
    pub max_zoom: Option<u32>,
    /// The store's URL as the page fetches it: relative to index.html or absolute (http(s)).
    /// `None`: no clicks on values (the page says so).
    pub store_url: Option<String>,
    /// Counts the tiles considered (drawn or kept).
    pub progress: Option<indicatif::ProgressBar>,
    /// Share `(i, n)` (0-based) of `--worker I/N`: draw only its blocks of tiles, and neither
    /// catalogue nor page, so N machines draw a year's tiles; a final run without it keeps them.
    pub share: Option<(usize, usize)>,
}

/// Draw (or keep) the tiles of every year (a share's blocks only, with `map.share`): see
/// [`TileWriter`].
pub(super) fn write_tiles(
    store: &MosaicStore,
    out: &Store,
    by_year: &BTreeMap<u16, Vec<(&BandCoverage, &BTreeSet<Cell>)>>,
    map: &MapOptions,
) -> Result<MapSummary, StacError> {
    let globe = BBox {
        lon0: -180.0,
        lat0: -90.0,
        lon1: 180.0,
        lat1: 90.0,
    };
    let mut writer = TileWriter::open(store, out, map.progress.clone(), map.share)?;
    for (year, entries) in by_year {
        let pyramids = match Pyramids::open(store, &globe, Some(*year)) {
            Ok(p) => p,
            Err(PreviewError::Empty(why)) => {
                writer.skip(format!("{year}: {why}"));
                continue;
            }
            Err(source) => {
                return Err(StacError::Draw {
                    what: format!("tiles of {year}"),
                    source,
                });
            }
        };
        if !writer.year(&pyramids, entries, map.max_zoom)? {
            writer.skip(format!(
                "{year}: no band with cells that year has overviews"
            ));
        }
    }
    writer.finish()
}

/// The coverage image of one year: one pixel per cell over latitude cells
/// `lat_start..lat_end` and all longitudes, covered cells in [`COVERAGE_RGBA`], the rest
/// transparent. Row 0 is the northern row.
pub fn coverage_image<'a>(
    cells: impl IntoIterator<Item = &'a Cell>,
    lat_start: u16,
    lat_end: u16,
) -> Image {
    cell_image(
        cells,
        lat_start..lat_end,
        0,
        LON_CELLS as usize,
        COVERAGE_RGBA,
        [0; 4],
    )
}

/// The Leaflet files the map needs, built into the binary so that `mosaic stac` works from any
/// folder and from `cargo install`: Leaflet 1.9.4 (BSD-2-Clause, see leaflet/LICENSE), a copy
/// of the `dist/` folder of the npm package that package.json pins (a test compares them).
pub const LEAFLET_FILES: [(&str, &[u8]); 7] = [
    ("leaflet.js", include_bytes!("leaflet/leaflet.js")),
    ("leaflet.css", include_bytes!("leaflet/leaflet.css")),
    (
        "images/layers-2x.png",
        include_bytes!("leaflet/images/layers-2x.png"),
    ),
    (
        "images/layers.png",
        include_bytes!("leaflet/images/layers.png"),
    ),
    (
        "images/marker-icon-2x.png",
        include_bytes!("leaflet/images/marker-icon-2x.png"),
    ),
    (
        "images/marker-icon.png",
        include_bytes!("leaflet/images/marker-icon.png"),
    ),
    (
        "images/marker-shadow.png",
        include_bytes!("leaflet/images/marker-shadow.png"),
    ),
];

/// Check that `dir` (or `dir/dist`) is a Leaflet `dist` folder, to use instead of the built-in
/// copy.
pub fn leaflet_dist(dir: &Path) -> Result<PathBuf, StacError> {
    for candidate in [dir.to_path_buf(), dir.join("dist")] {
        if candidate.join("leaflet.js").is_file() && candidate.join("leaflet.css").is_file() {
            return Ok(candidate);
        }
    }
    Err(StacError::Leaflet(dir.display().to_string()))
}

/// The basemap, built into the binary so the map needs no network: coastlines and borders of
/// Natural Earth's 1:50m countries (npm's world-atlas 2.0.2, TopoJSON) and topojson-client 3.1.0
/// to turn them into lines in the browser (both ISC; `basemap/LICENSE`). package.json pins
/// them; a test compares the copies.
pub const BASEMAP_FILES: [(&str, &[u8]); 2] = [
    (
        "topojson-client.min.js",
        include_bytes!("basemap/topojson-client.min.js"),
    ),
    ("LICENSE", include_bytes!("basemap/LICENSE")),
];

/// The zstd decoder of the page's Zarr reader: fzstd 0.1.1 (MIT, `fzstd/LICENSE`), its UMD
/// build from the npm package that package.json pins (a test compares them). Pure JavaScript,
/// 8 kB: works from any static host, no wasm to serve.
pub const FZSTD_FILES: [(&str, &[u8]); 2] = [
    ("fzstd.js", include_bytes!("fzstd/fzstd.js")),
    ("LICENSE", include_bytes!("fzstd/LICENSE")),
];

/// The page's Zarr v3 reader (sharding, zstd, transpose, crc32c index), our own.
const ZARR_JS: &str = include_str!("zarr.js");

/// The URL of `target` relative to the folder `from` (both absolute, canonical paths), with
/// `/` separators and each segment percent-encoded where a URL needs it: how the page finds a
/// store on the same disk when both are served from a common parent folder.
pub fn relative_url(from: &Path, target: &Path) -> String {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = target.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".into(); from.len() - common];
    for c in &to[common..] {
        let seg = c.as_os_str().to_string_lossy();
        parts.push(
            seg.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect(),
        );
    }
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// The countries' TopoJSON, written as a script (`window.mosaicBasemap = ...;`) so that the
/// page loads it from `file://` too, where a fetch of JSON is refused.
const BASEMAP_TOPOLOGY: &str = include_str!("basemap/countries-50m.json");

/// Write the basemap into `out/vendor/basemap`.
fn write_basemap(out: &Store) -> Result<(), StacError> {
    for (name, bytes) in BASEMAP_FILES {
        write_file(out, &format!("vendor/basemap/{name}"), bytes)?;
    }
    let script = format!("window.mosaicBasemap = {};\n", BASEMAP_TOPOLOGY.trim_end());
    write_file(out, "vendor/basemap/countries-50m.js", script.as_bytes())
}

/// Write the Zarr reader (map/zarr.js) and its zstd decoder (vendor/fzstd).
fn write_reader(out: &Store) -> Result<(), StacError> {
    for (name, bytes) in FZSTD_FILES {
        write_file(out, &format!("vendor/fzstd/{name}"), bytes)?;
    }
    write_file(out, "map/zarr.js", ZARR_JS.as_bytes())
}

/// Write Leaflet into `out/vendor/leaflet`: the built-in copy, or the files of `dist`.
fn write_leaflet(dist: Option<&Path>, out: &Store) -> Result<(), StacError> {
    for (name, bytes) in LEAFLET_FILES {
        let key = format!("vendor/leaflet/{name}");
        match dist {
            None => write_file(out, &key, bytes)?,
            Some(dist) => {
                let from = dist.join(name);
                let bytes = std::fs::read(&from).map_err(io_err(&from))?;
                write_file(out, &key, &bytes)?;
            }
        }
    }
    Ok(())
}

/// Write index.html, map/layers.js, the coverage images, the tiles, the store reader, and
/// Leaflet.
pub(super) fn write_map(
    store: &MosaicStore,
    out: &Store,
    bands: &[BandCoverage],
    by_year: &BTreeMap<u16, Vec<(&BandCoverage, &BTreeSet<Cell>)>>,
    map: &MapOptions,
) -> Result<MapSummary, StacError> {
    write_leaflet(map.leaflet_dist.as_deref(), out)?;
    write_basemap(out)?;
    write_reader(out)?;
    let summary = write_tiles(store, out, by_year, map)?;
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
        let png = image.png_bytes(&file).map_err(|source| StacError::Draw {
            what: format!("coverage {year}"),
            source,
        })?;
        write_file(out, &file, &png)?;
        coverage.push(json!({
            "year": year,
            "href": file,
            "cells": entries.iter().map(|(_, c)| c.len()).sum::<usize>(),
            "bounds": [[edge_lat(lat_start as f64), -180.0], [edge_lat(lat_end as f64), 180.0]],
            "lat_start": lat_start,
            "lat_end": lat_end,
        }));
    }
    let band_list: Vec<Value> = bands
        .iter()
        .map(|b| {
            let g = &b.layout.grid;
            let finest = overview_levels(g)[0];
            json!({
                "name": b.name,
                "south": g.lat_min(),
                "north": g.lat_max(),
                "lat_start": g.lat_start_index,
                "cols_per_cell": g.cols_per_cell,
                "rows_per_cell": g.rows_per_cell,
                "pixels": {
                    "level": finest.level,
                    "rows_per_cell": finest.rows_per_cell,
                    "cols_per_cell": finest.cols_per_cell,
                },
                "years": b.cells.iter().filter(|(_, c)| !c.is_empty()).map(|(y, c)| json!({
                    "year": y,
                    "cells": c.len(),
                    "item": format!("{y}/{id}/{id}.json", id = item_id(*y, &b.name)),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let tile_list: Vec<Value> = summary
        .years
        .iter()
        .map(|t| {
            json!({
                "year": t.year,
                "href": format!("map/tiles/{}", t.year),
                "bands": t.bands,
                "max_zoom": t.max_zoom,
                "native_max_zoom": t.native_max_zoom,
                "per_zoom": t.per_zoom,
                "bytes": t.bytes,
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
        "tiles": tile_list,
        "tile_size": TILE_SIZE,
        "coverage_rgba": COVERAGE_RGBA,
        "store": map.store_url,
        "data_bounds": [[south, west], [north, east]],
    });
    data.sort_all_objects();
    let script = format!(
        "// Generated by `mosaic stac`: the layers of index.html.\nwindow.MOSAIC = {};\n",
        serde_json::to_string_pretty(&data).expect("JSON serialises")
    );
    write_file(out, "map/layers.js", script.as_bytes())?;
    write_file(out, "index.html", MAP_HTML.as_bytes())?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::stac::cell_at_corner as cell;

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

    #[test]
    fn the_built_in_basemap_is_the_npm_packages_pinned_in_package_json() {
        let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("node_modules");
        let npm = |path: &str| {
            std::fs::read(modules.join(path))
                .unwrap_or_else(|e| panic!("{path}: {e}: run scripts/setup.sh --tests (npm ci)"))
        };
        assert!(npm("topojson-client/dist/topojson-client.min.js") == BASEMAP_FILES[0].1);
        assert!(npm("world-atlas/countries-50m.json") == BASEMAP_TOPOLOGY.as_bytes());
    }

    #[test]
    fn the_built_in_zstd_decoder_is_the_npm_package_pinned_in_package_json() {
        let fzstd = Path::new(env!("CARGO_MANIFEST_DIR")).join("node_modules/fzstd");
        let npm = |p: &str| {
            std::fs::read(fzstd.join(p))
                .unwrap_or_else(|e| panic!("fzstd/{p}: {e}: run scripts/setup.sh --tests (npm ci)"))
        };
        assert!(npm("umd/index.js") == FZSTD_FILES[0].1);
        assert!(npm("LICENSE") == FZSTD_FILES[1].1);
    }

    #[test]
    fn relative_urls_climb_to_the_common_folder() {
        let u = |a: &str, b: &str| relative_url(Path::new(a), Path::new(b));
        assert_eq!(u("/data/out/stac", "/data/store.zarr"), "../../store.zarr");
        assert_eq!(u("/data", "/data/s 1/a.zarr"), "s%201/a.zarr");
        assert_eq!(u("/data/x", "/data/x"), ".");
    }

    #[test]
    fn the_built_in_leaflet_is_the_npm_package_pinned_in_package_json() {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("node_modules/leaflet/dist");
        assert!(
            dist.is_dir(),
            "{} missing: run scripts/setup.sh --tests (npm ci)",
            dist.display()
        );
        for (name, bytes) in LEAFLET_FILES {
            let npm = std::fs::read(dist.join(name)).unwrap();
            assert!(npm == bytes, "{name} differs from {}", dist.display());
        }
        let pngs = std::fs::read_dir(dist.join("images")).unwrap().count();
        assert_eq!(
            pngs + 2,
            LEAFLET_FILES.len(),
            "every Leaflet image is built in"
        );
    }
}
