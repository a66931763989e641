//! The band grid: a regular EPSG:4326 lat/lon grid over one latitude band, in which every
//! 0.1-degree cell is exactly R rows x C columns.
//!
//! R (rows per cell) is common to all bands; C (columns per cell) is chosen per band as the
//! smallest width for which every 10 m source pixel of every tile in the band contains at
//! least one output pixel centre, rounded up so that inner chunks tile a cell exactly.
//!
//! Coverage criterion: near a point, the output lattice is spanned by the UTM images
//! u = J (dlon, 0) and v = J (0, dlat) of one column and one row step (J the Jacobian of the
//! projection). Any axis-aligned square that can hold a translate of the lattice's fundamental
//! parallelogram contains a lattice point, so `|u_x| + |v_x| <= 10 m` and `|u_y| + |v_y| <= 10 m`
//! guarantee no source pixel is skipped. Both are checked across the band and the full width of
//! a UTM zone (up to 3 degrees from the central meridian), where scale and grid rotation peak.

use geo::{Distance, Geodesic, Point};
use serde::{Deserialize, Serialize};

use super::bands::{BandSpec, BandsConfig, ChunkOrder};
use super::cell::{CELL_DEG, Cell, LON_CELLS, lat_of_index};
use super::utm::{GeometryError, PIXEL_M, UtmProjection, UtmZone};

/// Output pixel steps must fit in this many metres (10 m less a margin for the curvature of
/// the projection across one pixel).
/// Channels of every embedding: the last axis of the band arrays.
pub const CHANNELS: usize = 128;

const COVERAGE_LIMIT_M: f64 = PIXEL_M * (1.0 - 1e-3);

/// The grid of one band.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandGrid {
    /// Band (group) name.
    pub name: String,
    /// First cell latitude index (southern edge).
    pub lat_start_index: u16,
    /// One past the last cell latitude index (northern edge).
    pub lat_end_index: u16,
    /// Rows per cell (R).
    pub rows_per_cell: usize,
    /// Columns per cell (C).
    pub cols_per_cell: usize,
    /// Rows per inner chunk.
    pub chunk_rows: usize,
    /// Columns per inner chunk.
    pub chunk_cols: usize,
    /// Byte order of an `embeddings` inner chunk (pixel-major in stores that do not say).
    #[serde(default)]
    pub chunk_order: ChunkOrder,
}

/// Why a band grid cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    #[error(
        "band {band}: rows_per_cell = {rows} leaves no room for the UTM grid rotation at latitude {lat}; raise rows_per_cell"
    )]
    RowsTooFew { band: String, rows: usize, lat: f64 },
    #[error(transparent)]
    Geometry(#[from] GeometryError),
}

impl BandGrid {
    /// Choose the grid for a band under a configuration.
    pub fn for_band(band: &BandSpec, config: &BandsConfig) -> Result<BandGrid, GridError> {
        let min_cols = min_cols_per_cell(
            &band.name,
            band.lat_start_index(),
            band.lat_end_index(),
            config.rows_per_cell,
        )?;
        let chunks = min_cols.div_ceil(config.chunks.target_cols);
        let chunk_cols = min_cols.div_ceil(chunks);
        Ok(BandGrid {
            name: band.name.clone(),
            lat_start_index: band.lat_start_index(),
            lat_end_index: band.lat_end_index(),
            rows_per_cell: config.rows_per_cell,
            cols_per_cell: chunks * chunk_cols,
            chunk_rows: config.chunks.rows,
            chunk_cols,
            chunk_order: config.chunks.order,
        })
    }

    /// Southern edge in degrees.
    pub fn lat_min(&self) -> f64 {
        lat_of_index(self.lat_start_index)
    }

    /// Northern edge in degrees.
    pub fn lat_max(&self) -> f64 {
        lat_of_index(self.lat_end_index)
    }

    /// Cells from south to north.
    pub fn lat_cells(&self) -> usize {
        (self.lat_end_index - self.lat_start_index) as usize
    }

    /// Total rows (lat dimension).
    pub fn rows(&self) -> usize {
        self.lat_cells() * self.rows_per_cell
    }

    /// Total columns (lon dimension).
    pub fn cols(&self) -> usize {
        LON_CELLS as usize * self.cols_per_cell
    }

    /// Latitude step in degrees.
    pub fn lat_step(&self) -> f64 {
        CELL_DEG / self.rows_per_cell as f64
    }

    /// Longitude step in degrees.
    pub fn lon_step(&self) -> f64 {
        CELL_DEG / self.cols_per_cell as f64
    }

    /// True when the cell lies in this band.
    pub fn contains(&self, cell: Cell) -> bool {
        (self.lat_start_index..self.lat_end_index).contains(&cell.lat_index)
    }

    /// Shard indices (lat, lon) of a cell: one shard per cell.
    pub fn cell_shard(&self, cell: Cell) -> (usize, usize) {
        debug_assert!(self.contains(cell));
        (
            (cell.lat_index - self.lat_start_index) as usize,
            cell.lon_index as usize,
        )
    }

    /// First (row, col) of a cell's block.
    pub fn cell_origin(&self, cell: Cell) -> (usize, usize) {
        let (i, j) = self.cell_shard(cell);
        (i * self.rows_per_cell, j * self.cols_per_cell)
    }

    /// The cell holding a pixel.
    pub fn cell_of_pixel(&self, row: usize, col: usize) -> Cell {
        Cell {
            lat_index: self.lat_start_index + (row / self.rows_per_cell) as u16,
            lon_index: (col / self.cols_per_cell) as u16,
        }
    }

    /// Latitude of a row's pixel centres. The single definition used by the writer, the
    /// `lat` coordinate array and every reader.
    pub fn row_lat(&self, row: usize) -> f64 {
        let global = self.lat_start_index as usize * self.rows_per_cell + row;
        (global as f64 + 0.5) / (10.0 * self.rows_per_cell as f64) - 90.0
    }

    /// Longitude of a column's pixel centres (the `lon` coordinate).
    pub fn col_lon(&self, col: usize) -> f64 {
        (col as f64 + 0.5) / (10.0 * self.cols_per_cell as f64) - 180.0
    }

    /// The pixel whose area contains (lat, lon), or `None` outside the band.
    pub fn pixel_of(&self, lat: f64, lon: f64) -> Option<(usize, usize)> {
        let row = ((lat + 90.0) * 10.0 * self.rows_per_cell as f64).floor()
            - (self.lat_start_index as usize * self.rows_per_cell) as f64;
        let col = ((lon + 180.0) * 10.0 * self.cols_per_cell as f64).floor();
        (row >= 0.0 && col >= 0.0 && (row as usize) < self.rows() && (col as usize) < self.cols())
            .then_some((row as usize, col as usize))
    }

    /// Shape of the `embeddings` array for a number of years.
    pub fn embeddings_shape(&self, years: usize) -> [u64; 4] {
        [
            years as u64,
            self.rows() as u64,
            self.cols() as u64,
            CHANNELS as u64,
        ]
    }

    /// Shard shape of `embeddings`: one cell x one year.
    pub fn shard_shape(&self) -> [u64; 4] {
        [
            1,
            self.rows_per_cell as u64,
            self.cols_per_cell as u64,
            CHANNELS as u64,
        ]
    }

    /// Inner chunk shape of `embeddings`.
    pub fn chunk_shape(&self) -> [u64; 4] {
        [
            1,
            self.chunk_rows as u64,
            self.chunk_cols as u64,
            CHANNELS as u64,
        ]
    }

    /// Ground size (east-west, north-south) in metres of one output pixel at a latitude.
    pub fn pixel_size_m(&self, lat: f64) -> (f64, f64) {
        (
            parallel_width_m(lat) / self.cols_per_cell as f64,
            meridian_height_m(lat) / self.rows_per_cell as f64,
        )
    }

    /// How much wider the band stores its most poleward cells than their source:
    /// C divided by the 10 m source pixels across a cell in the band's most poleward row of
    /// cells (at that row's centre latitude, so a band ending at a pole stays finite).
    pub fn stretch(&self) -> f64 {
        let poleward_centre = if self.lat_min() >= 0.0 {
            self.lat_max() - CELL_DEG / 2.0
        } else {
            self.lat_min() + CELL_DEG / 2.0
        };
        self.cols_per_cell as f64 / (parallel_width_m(poleward_centre) / PIXEL_M)
    }
}

/// Geodesic east-west length in metres of 0.1 degree of longitude at a latitude.
pub fn parallel_width_m(lat: f64) -> f64 {
    let lat = lat.clamp(-89.999_999, 89.999_999);
    Geodesic.distance(Point::new(0.0, lat), Point::new(CELL_DEG, lat))
}

/// Geodesic north-south length in metres of the 0.1 degree of latitude centred on `lat`.
pub fn meridian_height_m(lat: f64) -> f64 {
    let (a, b) = ((lat - 0.05).max(-90.0), (lat + 0.05).min(90.0));
    Geodesic.distance(Point::new(0.0, a), Point::new(0.0, b)) * CELL_DEG / (b - a)
}

/// The smallest C for which the output lattice covers every source pixel across the band.
pub fn min_cols_per_cell(
    band: &str,
    lat_start_index: u16,
    lat_end_index: u16,
    rows_per_cell: usize,
) -> Result<usize, GridError> {
    let zone = UtmZone {
        zone: 31,
        south: lat_start_index < 900,
    };
    let proj = UtmProjection::new(zone)?;
    let cm = zone.central_meridian();
    let dlat = CELL_DEG / rows_per_cell as f64;
    let mut need: f64 = 1.0;
    // Sample every cell edge of the band and a spread of offsets from the central meridian.
    for lat_index in lat_start_index..=lat_end_index {
        let lat = lat_of_index(lat_index).clamp(-89.95, 89.95);
        for offset in [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0] {
            let (jx_lon, jy_lon, jx_lat, jy_lat) = jacobian(&proj, cm + offset, lat)?;
            // One row step, one cell-width step (C = 1).
            let (vx, vy) = ((jx_lat * dlat).abs(), (jy_lat * dlat).abs());
            let (ux1, uy1) = ((jx_lon * CELL_DEG).abs(), (jy_lon * CELL_DEG).abs());
            if vx >= COVERAGE_LIMIT_M || vy >= COVERAGE_LIMIT_M {
                return Err(GridError::RowsTooFew {
                    band: band.to_string(),
                    rows: rows_per_cell,
                    lat,
                });
            }
            need = need
                .max(ux1 / (COVERAGE_LIMIT_M - vx))
                .max(uy1 / (COVERAGE_LIMIT_M - vy));
        }
    }
    Ok(need.ceil() as usize)
}

/// d(E, N)/d(lon, lat) in metres per degree, by central differences through PROJ.
fn jacobian(
    proj: &UtmProjection,
    lon: f64,
    lat: f64,
) -> Result<(f64, f64, f64, f64), GeometryError> {
    let h = 1e-5;
    let (e1, n1) = proj.forward(lon - h, lat)?;
    let (e2, n2) = proj.forward(lon + h, lat)?;
    let (e3, n3) = proj.forward(lon, lat - h)?;
    let (e4, n4) = proj.forward(lon, lat + h)?;
    Ok((
        (e2 - e1) / (2.0 * h),
        (n2 - n1) / (2.0 * h),
        (e4 - e3) / (2.0 * h),
        (n4 - n3) / (2.0 * h),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(name: &str) -> BandGrid {
        let c = BandsConfig::default();
        BandGrid::for_band(c.band(name).unwrap(), &c).unwrap()
    }

    #[test]
    fn columns_follow_latitude_and_chunks_tile_a_cell() {
        let eq = grid("0-10");
        let polar = grid("70-80");
        assert!(eq.cols_per_cell > 1113 && eq.cols_per_cell < 1200, "{eq:?}");
        assert!(
            polar.cols_per_cell > 382 && polar.cols_per_cell < 450,
            "{polar:?}"
        );
        for g in [&eq, &polar, &grid("S60-S50")] {
            assert_eq!(g.cols_per_cell % g.chunk_cols, 0);
            assert_eq!(g.rows_per_cell % g.chunk_rows, 0);
            // The output pixel is never wider than 10 m anywhere in the band.
            assert!(g.pixel_size_m(g.lat_min()).0 < 10.0 && g.pixel_size_m(g.lat_max()).0 < 10.0);
        }
        // Southern bands mirror northern ones.
        assert_eq!(grid("S10-0").cols_per_cell, eq.cols_per_cell);
        assert_eq!(grid("S80-S70").cols_per_cell, polar.cols_per_cell);
        assert!(
            polar.stretch() > 1.9 && polar.stretch() < 2.3,
            "{}",
            polar.stretch()
        );
    }

    #[test]
    fn pixel_centres_and_lookup_agree() {
        let g = grid("70-80");
        assert_eq!(g.rows(), 100 * 1170);
        assert!((g.row_lat(0) - (70.0 + g.lat_step() / 2.0)).abs() < 1e-12);
        assert!((g.col_lon(g.cols() - 1) - (180.0 - g.lon_step() / 2.0)).abs() < 1e-12);
        for (row, col) in [(0, 0), (12345, 987654), (g.rows() - 1, g.cols() - 1)] {
            assert_eq!(g.pixel_of(g.row_lat(row), g.col_lon(col)), Some((row, col)));
        }
        let cell = Cell::parse_name("grid_-99.95_75.05").unwrap();
        let (r0, c0) = g.cell_origin(cell);
        assert_eq!(g.cell_of_pixel(r0, c0), cell);
        assert_eq!(g.cell_of_pixel(r0 + 1169, c0 + g.cols_per_cell - 1), cell);
        assert!((g.row_lat(r0) - 75.0).abs() < g.lat_step());
        assert_eq!(g.pixel_of(69.99, 0.0), None);
    }
}
