//! The map's embedding tiles, written by `mosaic stac` (docs/stac.md).
//!
//! Tiles follow Leaflet's `L.CRS.EPSG4326`: at zoom z a 256-pixel tile spans 180/2^z degrees
//! both ways, x counts tiles east of -180 and y tiles south of +90 (so zoom 0 has two tiles,
//! the lower half of each below -90 and empty). A tile is written, as
//! `map/tiles/{year}/{z}/{x}/{y}.png`, exactly when it touches a cell present that year in a
//! band with overviews; the page decides the same from the year's coverage image with the same
//! integer arithmetic, so it never asks for a tile that does not exist. Each tile is drawn by
//! [`Pyramids::render_size`] in the year's colours: every pixel shows the stored overview pixel
//! under its centre, from the coarsest level that is fine enough.

use std::collections::BTreeSet;
use std::path::Path;

use rayon::prelude::*;

use super::catalog::{BandCoverage, StacError, io_err};
use crate::grid::{BBox, Cell, LAT_CELLS};
use crate::preview::{PreviewError, Pyramids};

/// Width and height of a tile in pixels.
pub const TILE_SIZE: usize = 256;
/// The native maximum zoom is the first whose tile pixel is at most this many times the
/// finest stored pixel ("about" the finest pixel: at 1.1, 1.0-1.1 times).
pub const MAX_ZOOM_SLACK: f64 = 1.1;

/// Degrees spanned by a tile at zoom `z` (both ways).
pub fn tile_span(z: u32) -> f64 {
    180.0 / (1u64 << z) as f64
}

/// The lon/lat box of tile (z, x, y).
pub fn tile_bbox(z: u32, x: u64, y: u64) -> BBox {
    let s = tile_span(z);
    BBox {
        lon0: -180.0 + x as f64 * s,
        lon1: -180.0 + (x + 1) as f64 * s,
        lat0: 90.0 - (y + 1) as f64 * s,
        lat1: 90.0 - y as f64 * s,
    }
}

/// The tiles at zoom `z` a cell touches: inclusive ranges of x and y. Exact integer arithmetic
/// in units of 1/2^z cell (a tile spans 1800 of them, a cell 2^z), as the page computes it.
pub fn cell_tiles(cell: Cell, z: u32) -> ([u64; 2], [u64; 2]) {
    let (n, side) = (1u64 << z, LAT_CELLS as u64);
    let i = cell.lon_index as u64;
    let r = (LAT_CELLS - 1 - cell.lat_index) as u64; // cell rows counted from the north pole
    (
        [i * n / side, ((i + 1) * n - 1) / side],
        [r * n / side, ((r + 1) * n - 1) / side],
    )
}

/// The zoom whose tile pixel is about the finest stored pixel `finest_deg` (degrees).
pub fn native_max_zoom(finest_deg: f64) -> u32 {
    (0..40)
        .find(|&z| tile_span(z) / TILE_SIZE as f64 <= finest_deg * MAX_ZOOM_SLACK)
        .unwrap_or(40)
}

/// The tiles of each zoom `0..=max_zoom` touching any of `cells`.
pub fn tiles_of_cells<'a>(
    cells: impl IntoIterator<Item = &'a Cell>,
    max_zoom: u32,
) -> Vec<BTreeSet<(u64, u64)>> {
    let mut zooms = vec![BTreeSet::new(); max_zoom as usize + 1];
    for cell in cells {
        for (z, tiles) in zooms.iter_mut().enumerate() {
            let ([x0, x1], [y0, y1]) = cell_tiles(*cell, z as u32);
            for x in x0..=x1 {
                for y in y0..=y1 {
                    tiles.insert((x, y));
                }
            }
        }
    }
    zooms
}

/// The tiles of one year.
#[derive(Debug, Clone)]
pub struct YearTiles {
    /// The year.
    pub year: u16,
    /// Bands drawn (those with overviews that hold cells this year).
    pub bands: Vec<String>,
    /// The zoom where a tile pixel is about the finest stored pixel.
    pub native_max_zoom: u32,
    /// The deepest zoom written (`native_max_zoom`, or less with `--map-max-zoom`).
    pub max_zoom: u32,
    /// Tiles written per zoom, from 0.
    pub per_zoom: Vec<usize>,
    /// Bytes of the tiles.
    pub bytes: u64,
}

impl YearTiles {
    /// Tiles written over all zooms.
    pub fn tiles(&self) -> usize {
        self.per_zoom.iter().sum()
    }
}

fn preview_err(what: String) -> impl Fn(PreviewError) -> StacError {
    move |source| StacError::Draw {
        what: what.clone(),
        source,
    }
}

/// Write the tiles of one year: `None` when no band with cells that year has overviews or
/// colours (reported by the caller).
pub(super) fn write_year_tiles(
    out: &Path,
    pyramids: &Pyramids,
    entries: &[(&BandCoverage, &BTreeSet<Cell>)],
    max_zoom_cap: Option<u32>,
) -> Result<Option<YearTiles>, StacError> {
    let year = pyramids.year();
    let drawn: Vec<&(&BandCoverage, &BTreeSet<Cell>)> = entries
        .iter()
        .filter(|(b, _)| pyramids.bands().iter().any(|(name, _)| *name == b.name))
        .collect();
    if drawn.is_empty() {
        return Ok(None);
    }
    let finest = pyramids
        .bands()
        .iter()
        .filter(|(name, _)| drawn.iter().any(|(b, _)| b.name == *name))
        .map(|(_, l)| {
            let level = crate::zarr::overview_levels(&l.grid)[0];
            level.lat_step().min(level.lon_step())
        })
        .fold(f64::INFINITY, f64::min);
    let native = native_max_zoom(finest);
    let max_zoom = max_zoom_cap.map_or(native, |cap| cap.min(native));
    let zooms = tiles_of_cells(drawn.iter().flat_map(|(_, c)| c.iter()), max_zoom);
    let all: Vec<(u32, u64, u64)> = zooms
        .iter()
        .enumerate()
        .flat_map(|(z, tiles)| tiles.iter().map(move |&(x, y)| (z as u32, x, y)))
        .collect();
    let folder = out.join("map").join("tiles").join(year.to_string());
    let bytes: Vec<u64> = all
        .par_iter()
        .map(|&(z, x, y)| -> Result<u64, StacError> {
            let what = format!("tile {year}/{z}/{x}/{y}");
            let picture = pyramids
                .render_size(tile_bbox(z, x, y), TILE_SIZE, TILE_SIZE)
                .map_err(preview_err(what.clone()))?;
            let dir = folder.join(z.to_string()).join(x.to_string());
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            let path = dir.join(format!("{y}.png"));
            picture.image.write_png(&path).map_err(preview_err(what))?;
            Ok(std::fs::metadata(&path).map_err(io_err(&path))?.len())
        })
        .collect::<Result<_, _>>()?;
    Ok(Some(YearTiles {
        year,
        bands: drawn.iter().map(|(b, _)| b.name.clone()).collect(),
        native_max_zoom: native,
        max_zoom,
        per_zoom: zooms.iter().map(BTreeSet::len).collect(),
        bytes: bytes.iter().sum(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::stac::cell_at_corner as cell;

    #[test]
    fn tiles_follow_leaflet_epsg4326() {
        // Zoom 0: two tiles, west and east of 0; y = 0 spans 90 .. -90 (and the empty half).
        assert_eq!(cell_tiles(cell(-180.0, 89.9), 0), ([0, 0], [0, 0]));
        assert_eq!(cell_tiles(cell(179.9, -90.0), 0), ([1, 1], [0, 0]));
        // Zoom 1: 90-degree tiles.
        assert_eq!(cell_tiles(cell(5.9, 70.0), 1), ([2, 2], [0, 0]));
        assert_eq!(cell_tiles(cell(-0.1, -0.1), 1), ([1, 1], [1, 1]));
        // Zoom 4: tiles of 11.25 degrees = 112.5 cells: the cell 11.2..11.3 touches two.
        assert_eq!(
            cell_tiles(cell(-180.0 + 11.2, 90.0 - 11.3), 4),
            ([0, 1], [0, 1])
        );
        let b = tile_bbox(4, 1, 1);
        assert_eq!((b.lon0, b.lat1, b.lon1 - b.lon0), (-168.75, 78.75, 11.25));
        // The box of every touched tile overlaps the cell, and its neighbours' do not.
        for z in 0..14 {
            let c = cell(5.9, 70.0);
            let ([x0, x1], [y0, y1]) = cell_tiles(c, z);
            for x in x0..=x1 {
                for y in y0..=y1 {
                    let t = tile_bbox(z, x, y);
                    assert!(t.lon0 < 6.0 && t.lon1 > 5.9 && t.lat0 < 70.1 && t.lat1 > 70.0);
                }
            }
            let (e, s) = (tile_bbox(z, x1 + 1, y0), tile_bbox(z, x0, y1 + 1));
            assert!(e.lon0 >= 6.0 - 1e-9 && s.lat1 <= 70.0 + 1e-9, "zoom {z}");
        }
    }

    #[test]
    fn native_max_zoom_is_about_the_finest_pixel() {
        // Level 2 of 1170 rows per cell: 293 rows, 0.1/293 degrees.
        let finest = 0.1 / 293.0;
        let z = native_max_zoom(finest);
        assert_eq!(z, 11);
        let px = tile_span(z) / 256.0;
        assert!(px <= finest * MAX_ZOOM_SLACK && tile_span(z - 1) / 256.0 > finest * 1.1);
    }

    #[test]
    fn tiles_of_cells_counts_each_tile_once() {
        let cells = [cell(5.9, 70.0), cell(6.0, 70.0)];
        let zooms = tiles_of_cells(cells.iter(), 11);
        assert_eq!(zooms[0].len(), 1);
        assert_eq!(zooms[1].len(), 1);
        // At zoom 11 a tile spans 0.0879 degrees: 0.2 degrees of cells touch 3 x 2 tiles.
        assert_eq!(zooms[11].len(), 6);
    }
}
