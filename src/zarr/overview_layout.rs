//! The overview pyramid and colour statistics of a band, as stored: which levels exist, their
//! grids and chunking, their key names and metadata documents. docs/format.md describes the
//! same layout for readers; the `overview` module computes what goes in it.
//!
//! Level L keeps `ceil(R / 2^L)` rows and `ceil(C / 2^L)` columns per cell, each pixel a
//! nearest-neighbour copy of a pixel of the level below (so of a source pixel): cells stay
//! whole at every level, which is what lets a worker write a cell's overviews alone. The
//! pyramid starts at level 2 (a quarter of the resolution): level 1 would add a quarter of
//! the band's bytes to compress and store, over the build's cost budget (docs/format.md).
//! Levels whose chunk would be one cell of at least [`MIN_CHUNK_ROWS`] rows are written by the
//! build, one object per cell and year; coarser levels group cells into chunks of about that
//! many rows and are made from the level below by `mosaic finalize`.

use serde_json::{Value, json};

use super::arrays::Coordinate;
use super::codecs::{compression_codecs, coordinate_codecs, transpose_codec};
use super::layout::{BandLayout, EMBEDDINGS, SCALES};
use super::metadata::{array_document, grid_geozarr_attributes, zarr_conventions};
use crate::grid::{BandGrid, CHANNELS, CompressionConfig, LON_CELLS};

/// The finest overview level: level L has about 1/2^L of the band's resolution per axis.
pub const FIRST_LEVEL: u32 = 2;
/// Chunks of coarse levels span enough cells to hold at least this many rows.
pub const MIN_CHUNK_ROWS: usize = 64;
/// The group under a band that holds the pyramid (with the `multiscales` convention).
pub const OVERVIEWS: &str = "overviews";
/// The group under a band that holds the colour statistics.
pub const COLOUR_STATISTICS: &str = "colour_statistics";
/// Per (cell, year): pixel count, sum (128) and upper triangle of the sum of outer products.
pub const SUMS: &str = "sums";
/// Per (cell, year): a deterministic sample of dequantised pixels, for percentiles.
pub const SAMPLE: &str = "sample";
/// Pixels in each cell's sample.
pub const SAMPLE_PIXELS: usize = 64;
/// The overview level whose pixels the colour statistics sum over: about one pixel in 64 of
/// the band's, on a regular grid. Summing level 2 (one in 16) cost 7% of a build's CPU time
/// (measured with perf on 30 synthetic tiles), level 3 a quarter of that; a principal
/// component basis from a million of a year's pixels per ~20 cells does not change visibly.
pub const STATISTICS_LEVEL: u32 = 3;
/// The zarr-conventions `multiscales` convention (github.com/zarr-conventions/multiscales).
pub const MULTISCALES_CONVENTION_UUID: &str = "d35379db-88df-4056-af3a-620245f8e347";

/// Length of a (cell, year)'s statistics vector: count, sums, upper triangle of outer products.
pub const SUMS_LEN: usize = 1 + CHANNELS + CHANNELS * (CHANNELS + 1) / 2;

/// One level of a band's overview pyramid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverviewLevel {
    /// Level number: about 1/2^level of the band's resolution.
    pub level: u32,
    /// Rows per cell.
    pub rows_per_cell: usize,
    /// Columns per cell.
    pub cols_per_cell: usize,
    /// Cells per chunk along each axis (1: one object per cell, written by the build).
    pub cells_per_chunk: usize,
}

impl OverviewLevel {
    /// True when the build writes this level (one chunk per cell); otherwise `finalize` makes
    /// it from the level below.
    pub fn per_cell(&self) -> bool {
        self.cells_per_chunk == 1
    }

    /// Rows of the level over the band.
    pub fn rows(&self, grid: &BandGrid) -> usize {
        grid.lat_cells() * self.rows_per_cell
    }

    /// Columns of the level around the globe.
    pub fn cols(&self) -> usize {
        LON_CELLS as usize * self.cols_per_cell
    }

    /// Latitude step in degrees.
    pub fn lat_step(&self) -> f64 {
        0.1 / self.rows_per_cell as f64
    }

    /// Longitude step in degrees.
    pub fn lon_step(&self) -> f64 {
        0.1 / self.cols_per_cell as f64
    }

    /// Chunk shape of `embeddings` (scales: the first three).
    pub fn chunk_shape(&self) -> [u64; 4] {
        [
            1,
            (self.rows_per_cell * self.cells_per_chunk) as u64,
            (self.cols_per_cell * self.cells_per_chunk) as u64,
            CHANNELS as u64,
        ]
    }

    /// The group path of the level under the band.
    pub fn group(&self) -> String {
        format!("{OVERVIEWS}/{}", self.level)
    }

    /// The affine transform (Affine order) of the level, as for the band (row 0 south).
    pub fn transform(&self, grid: &BandGrid) -> [f64; 6] {
        [
            self.lon_step(),
            0.0,
            -180.0,
            0.0,
            self.lat_step(),
            grid.lat_min(),
        ]
    }
}

/// The levels of a band's pyramid, finest first, down to two rows per cell or fewer.
pub fn overview_levels(grid: &BandGrid) -> Vec<OverviewLevel> {
    let mut levels = Vec::new();
    let mut level = FIRST_LEVEL;
    loop {
        let f = 1usize << level;
        let rows = grid.rows_per_cell.div_ceil(f);
        levels.push(OverviewLevel {
            level,
            rows_per_cell: rows,
            cols_per_cell: grid.cols_per_cell.div_ceil(f),
            // The finest level is always per cell: the build writes it.
            cells_per_chunk: if level == FIRST_LEVEL {
                1
            } else {
                MIN_CHUNK_ROWS.div_ceil(rows)
            },
        });
        if rows <= 2 {
            return levels;
        }
        level += 1;
    }
}

/// Index in a source axis of `n_src` pixels that pixel `i` of an axis of `n_dst` pixels
/// copies: the source pixel holding its centre (exact integer arithmetic, so every reader and
/// writer agrees).
pub fn nearest_index(i: usize, n_src: usize, n_dst: usize) -> usize {
    (2 * i + 1) * n_src / (2 * n_dst)
}

/// The path of a level's array under the band, e.g. `overviews/3/embeddings`.
pub fn level_array(level: u32, array: &str) -> String {
    format!("{OVERVIEWS}/{level}/{array}")
}

/// The path of a statistics array under the band.
pub fn statistics_array(array: &str) -> String {
    format!("{COLOUR_STATISTICS}/{array}")
}

/// The key of a year's colour basis (one per year for the whole store, over all bands).
pub fn colour_basis_key(year: u16) -> String {
    format!("_mosaic/colour/{year}.json")
}

/// Cells per side of a finalize block: the unit of `finalize --worker` shares and of the
/// colour statistics' partial sums, fixed so that the partials do not depend on the split.
pub const BLOCK_CELLS: u16 = 64;

/// The key of a block's finalize partial (its statistics' sums and sample, and what it read).
pub fn partial_key(band: &str, year: u16, block: (u16, u16)) -> String {
    format!("_mosaic/finalize/{year}/{band}/{}-{}.bin", block.0, block.1)
}

fn attributes_with_grid(grid: &BandGrid, level: &OverviewLevel, mut extra: Value) -> Value {
    if let Value::Object(e) = &mut extra {
        e.extend(grid_geozarr_attributes(
            grid,
            level.transform(grid),
            [level.rows(grid), level.cols()],
        ));
    }
    extra
}

/// Every metadata document of a band's overviews and statistics, by path under the band
/// (e.g. `overviews/3/embeddings`), groups before their children.
pub fn overview_metadata(layout: &BandLayout) -> Vec<(String, Value)> {
    let grid = &layout.grid;
    let years = layout.years as u64;
    let levels = overview_levels(grid);
    let mut docs = Vec::new();
    let mut pyramid = Vec::new();
    let mut previous: Option<&OverviewLevel> = None;
    for level in &levels {
        let (from_rows, from_cols, from) = match previous {
            None => (grid.rows_per_cell, grid.cols_per_cell, None),
            Some(p) => (p.rows_per_cell, p.cols_per_cell, Some(p.level.to_string())),
        };
        let mut entry = json!({
            "asset": level.level.to_string(),
            "transform": {"scale": [
                from_rows as f64 / level.rows_per_cell as f64,
                from_cols as f64 / level.cols_per_cell as f64,
            ]},
            "spatial:transform": level.transform(grid),
            "spatial:shape": [level.rows(grid), level.cols()],
        });
        if let Some(from) = from {
            entry["derived_from"] = json!(from);
        }
        pyramid.push(entry);
        previous = Some(level);
    }
    let mut conventions = zarr_conventions();
    if let Value::Array(list) = &mut conventions {
        list.push(json!({
            "uuid": MULTISCALES_CONVENTION_UUID,
            "schema_url": "https://raw.githubusercontent.com/zarr-conventions/multiscales/refs/tags/v1/schema.json",
            "spec_url": "https://github.com/zarr-conventions/multiscales/blob/v1/README.md",
            "name": "multiscales",
            "description": "Multiscale layout of zarr datasets",
        }));
    }
    docs.push((
        OVERVIEWS.to_string(),
        json!({
            "zarr_format": 3,
            "node_type": "group",
            "attributes": {
                "zarr_conventions": conventions,
                "multiscales": {"layout": pyramid, "resampling_method": "nearest"},
                "proj:code": "EPSG:4326",
                "spatial:dimensions": ["lat", "lon"],
                "summary": format!(
                    "Overviews of band {}: level L keeps ceil(R/2^L) x ceil(C/2^L) pixels per cell, each a copy (nearest neighbour) of a pixel of the level below; not averaged.",
                    grid.name
                ),
            },
        }),
    ));
    // zstd at level 1 at most: the overviews are a tenth of the band's bytes but, compressed
    // at the band's level 3, took a third of the build's extra time.
    let overview_compression = match layout.compression {
        CompressionConfig::Zstd { level } => CompressionConfig::Zstd {
            level: level.min(1),
        },
        ref other => other.clone(),
    };
    let compression = |size| compression_codecs(&overview_compression, size);
    for level in &levels {
        let rows = level.rows(grid) as u64;
        let cols = level.cols() as u64;
        let chunk = level.chunk_shape();
        docs.push((
            level.group(),
            json!({
                "zarr_format": 3,
                "node_type": "group",
                "attributes": attributes_with_grid(grid, level, json!({
                    "title": format!("TESSERA embeddings, band {}, overview level {}", grid.name, level.level),
                })),
            }),
        ));
        let mut embeddings_attrs = attributes_with_grid(
            grid,
            level,
            json!({
                "long_name": "TESSERA embedding, int8 quantised",
                "comment": "Dequantise as embeddings * scales.",
            }),
        );
        embeddings_attrs["nodata"] = json!(layout.embeddings_fill);
        let mut embeddings = array_document(
            vec![years, rows, cols, CHANNELS as u64],
            chunk.to_vec(),
            "int8",
            json!(layout.embeddings_fill),
            compression(1),
            vec!["year", "lat", "lon", "channel"],
            embeddings_attrs,
        );
        // The band's chunk order (channel planes through `transpose`) holds for its levels too.
        if let Some(transpose) = transpose_codec(grid.chunk_order, 4) {
            embeddings["codecs"]
                .as_array_mut()
                .expect("codec list")
                .insert(0, transpose);
        }
        docs.push((level_array(level.level, EMBEDDINGS), embeddings));
        docs.push((
            level_array(level.level, SCALES),
            array_document(
                vec![years, rows, cols],
                chunk[..3].to_vec(),
                "float32",
                json!("NaN"),
                compression(4),
                vec!["year", "lat", "lon"],
                attributes_with_grid(grid, level, json!({"long_name": "TESSERA embedding scale"})),
            ),
        ));
        for (name, n, step, origin, axis) in [
            ("lat", rows, level.lat_step(), grid.lat_min(), "Y"),
            ("lon", cols, level.lon_step(), -180.0, "X"),
        ] {
            docs.push((
                level_array(level.level, name),
                array_document(
                    vec![n],
                    vec![n],
                    "float64",
                    json!("NaN"),
                    coordinate_codecs(),
                    vec![name],
                    json!({
                        "standard_name": if name == "lat" { "latitude" } else { "longitude" },
                        "units": if name == "lat" { "degrees_north" } else { "degrees_east" },
                        "axis": axis,
                        "tessera_mosaic_step": step,
                        "tessera_mosaic_origin": origin,
                    }),
                ),
            ));
        }
        docs.push((
            level_array(level.level, "year"),
            array_document(
                vec![years],
                vec![years],
                "int32",
                json!(0),
                vec![],
                vec!["year"],
                json!({"long_name": "year of the annual embedding"}),
            ),
        ));
    }
    let cells = grid.lat_cells() as u64;
    docs.push((
        COLOUR_STATISTICS.to_string(),
        json!({
            "zarr_format": 3,
            "node_type": "group",
            "attributes": {
                "summary": format!(
                    "Per cell and year, exact f64 sums over the dequantised valid pixels of overview level {STATISTICS_LEVEL} (count, sum, upper triangle of the sum of outer products, row by row) and a sample of {SAMPLE_PIXELS} of those pixels: what one colour basis per year is computed from."
                ),
            },
        }),
    ));
    docs.push((
        statistics_array(SUMS),
        array_document(
            vec![years, cells, LON_CELLS as u64, SUMS_LEN as u64],
            vec![1, 1, 1, SUMS_LEN as u64],
            "float64",
            json!("NaN"),
            compression(8),
            vec!["year", "cell_row", "cell_col", "statistic"],
            json!({}),
        ),
    ));
    docs.push((
        statistics_array(SAMPLE),
        array_document(
            vec![
                years,
                cells,
                LON_CELLS as u64,
                SAMPLE_PIXELS as u64,
                CHANNELS as u64,
            ],
            vec![1, 1, 1, SAMPLE_PIXELS as u64, CHANNELS as u64],
            "float32",
            json!("NaN"),
            compression(4),
            vec!["year", "cell_row", "cell_col", "pixel", "channel"],
            json!({}),
        ),
    ));
    docs
}

/// The coordinate values of a level's `lat`, `lon` or `year` array.
pub fn level_coordinate(layout: &BandLayout, level: &OverviewLevel, name: &str) -> Coordinate {
    let grid = &layout.grid;
    match name {
        "lat" => Coordinate::F64(
            (0..level.rows(grid))
                .map(|r| grid.lat_min() + (r as f64 + 0.5) * level.lat_step())
                .collect(),
        ),
        "lon" => Coordinate::F64(
            (0..level.cols())
                .map(|c| -180.0 + (c as f64 + 0.5) * level.lon_step())
                .collect(),
        ),
        _ => Coordinate::I32(layout.year_values().iter().map(|&y| y as i32).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(rows: usize, cols: usize) -> BandGrid {
        BandGrid {
            name: "70-80".into(),
            lat_start_index: 1600,
            lat_end_index: 1700,
            rows_per_cell: rows,
            cols_per_cell: cols,
            chunk_rows: 117,
            chunk_cols: 100,
            chunk_order: Default::default(),
        }
    }

    #[test]
    fn levels_halve_down_to_about_a_pixel_per_cell() {
        let levels = overview_levels(&grid(1170, 400));
        let rows: Vec<usize> = levels.iter().map(|l| l.rows_per_cell).collect();
        assert_eq!(rows, [293, 147, 74, 37, 19, 10, 5, 3, 2]);
        assert_eq!(levels[0].level, 2);
        let per_cell: Vec<bool> = levels.iter().map(|l| l.per_cell()).collect();
        assert_eq!(
            per_cell,
            [true, true, true, false, false, false, false, false, false]
        );
        for l in &levels {
            assert!(l.rows_per_cell * l.cells_per_chunk >= MIN_CHUNK_ROWS);
        }
    }

    #[test]
    fn nearest_index_picks_the_pixel_under_the_centre() {
        assert_eq!(nearest_index(0, 1170, 293), 1);
        assert_eq!(nearest_index(292, 1170, 293), 1168);
        for n_dst in [1, 2, 3, 7, 293] {
            for i in 0..n_dst {
                let centre = (i as f64 + 0.5) / n_dst as f64 * 1170.0;
                assert_eq!(nearest_index(i, 1170, n_dst), centre.floor() as usize);
            }
        }
    }
}
