//! The map beside the catalog: a static Leaflet page (Leaflet travels inside the binary), one
//! coverage image per year, and PCA previews per band, year and block of longitude.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::catalog::{BandCoverage, StacError, io_err, item_id, write_file};
use super::footprint::{cells_bbox, edge_lat};
use crate::grid::{Cell, LON_CELLS};
use crate::tools::preview::{self, BBox, Image, PreviewError};
use crate::zarr::MosaicStore;

/// Width in degrees of the longitude blocks previews are rendered in.
pub const PREVIEW_BLOCK_DEG: u16 = 10;

/// The map page (its data comes from `map/layers.js`).
const MAP_HTML: &str = include_str!("map.html");
/// Colour of covered cells in the coverage images (RGBA).
pub const COVERAGE_RGBA: [u8; 4] = [0, 170, 200, 255];

/// Options of the HTML map.
#[derive(Debug, Clone)]
pub struct MapOptions {
    /// Leaflet's `dist` folder to copy instead of the built-in Leaflet.
    pub leaflet_dist: Option<PathBuf>,
    /// Maximum width and height in pixels of each preview image.
    pub preview_size: usize,
    /// Band-years with more cells than this get no previews (previews read data per cell).
    pub max_preview_cells: usize,
}

/// One preview image on the map.
#[derive(Debug, Clone)]
pub(super) struct PreviewTile {
    pub(super) year: u16,
    pub(super) band: String,
    pub(super) file: String,
    pub(super) bbox: BBox,
}

/// Render the previews of one band-year: one per 10-degree block of longitude with cells,
/// over the box of the cells in that block.
pub(super) fn render_previews(
    store: &MosaicStore,
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

/// Write Leaflet into `out/vendor/leaflet`: the built-in copy, or the files of `dist`.
fn write_leaflet(dist: Option<&Path>, out: &Path) -> Result<(), StacError> {
    let target = out.join("vendor").join("leaflet");
    for (name, bytes) in LEAFLET_FILES {
        match dist {
            None => write_file(&target.join(name), bytes)?,
            Some(dist) => {
                let from = dist.join(name);
                let bytes = std::fs::read(&from).map_err(io_err(&from))?;
                write_file(&target.join(name), &bytes)?;
            }
        }
    }
    Ok(())
}

/// Write index.html, map/layers.js, the coverage images and Leaflet.
pub(super) fn write_map(
    out: &Path,
    bands: &[BandCoverage],
    by_year: &BTreeMap<u16, Vec<(&BandCoverage, &BTreeSet<Cell>)>>,
    previews: &[PreviewTile],
    map: &MapOptions,
) -> Result<(), StacError> {
    write_leaflet(map.leaflet_dist.as_deref(), out)?;
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
            "bounds": [[edge_lat(lat_start as f64), -180.0], [edge_lat(lat_end as f64), 180.0]],
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
