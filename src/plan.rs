//! The planner: which tiles fall in which band, the arrays each band needs, and what they cost.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::chain;
use crate::grid::{
    BandGrid, BandSpec, BandsConfig, CHANNELS, CompressionConfig, GridError, LAT_CELLS, LON_CELLS,
    band_name, lat_of_index, min_cols_per_cell,
};
use crate::input::{Catalogue, TileProblem, TileSource};
use crate::zarr::encoded_size;

/// The plan of one band.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BandPlan {
    /// The band's grid.
    pub grid: BandGrid,
    /// Tiles in the band per year.
    pub tiles_per_year: BTreeMap<u16, usize>,
    /// Cells with a tile in at least one year.
    pub cells_present: usize,
    /// Cells in the band (3600 x its rows of cells).
    pub cells_total: usize,
    /// `embeddings` shape: (years, lat, lon, channel).
    pub array_shape: [u64; 4],
    /// Shard shape (one cell x one year).
    pub shard_shape: [u64; 4],
    /// Inner chunk shape.
    pub chunk_shape: [u64; 4],
    /// Bytes of the input tiles.
    pub input_bytes: u64,
    /// Uncompressed bytes of the shards to write (embeddings + scales).
    pub raw_bytes: u64,
    /// Estimated stored bytes (raw bytes x the compression ratio measured on sample tiles).
    pub estimated_stored_bytes: u64,
    /// Output pixel (width, height) in metres at the equatorward edge.
    pub pixel_m_equatorward: (f64, f64),
    /// Output pixel (width, height) in metres at the poleward edge.
    pub pixel_m_poleward: (f64, f64),
    /// How much wider the poleward cells are stored than their source.
    pub stretch: f64,
}

impl BandPlan {
    /// Total tiles over all years.
    pub fn tiles(&self) -> usize {
        self.tiles_per_year.values().sum()
    }
}

/// A plan for every band that has tiles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// The scanned input root.
    pub input: PathBuf,
    /// Years found.
    pub years: Vec<u16>,
    /// Bands with at least one tile, south to north.
    pub bands: Vec<BandPlan>,
    /// Tiles outside every configured band.
    pub tiles_outside_bands: usize,
    /// Input problems found by the scan.
    pub problems: Vec<TileProblem>,
    /// Compressed / raw size measured on sample tiles with the configured codec.
    pub compression_ratio: f64,
}

/// Plan every configured band against a catalogue.
pub fn plan(
    catalogue: &Catalogue,
    config: &BandsConfig,
    compression_ratio: f64,
) -> Result<Plan, GridError> {
    let years = catalogue.year_list();
    let mut bands = Vec::new();
    let mut sorted: Vec<&BandSpec> = config.bands.iter().collect();
    sorted.sort_by(|a, b| a.lat_min.total_cmp(&b.lat_min));
    let mut inside = 0;
    for spec in sorted {
        let (lo, hi) = (spec.lat_start_index(), spec.lat_end_index());
        let mut tiles_per_year = BTreeMap::new();
        let mut input_bytes = 0;
        for (&year, tiles) in &catalogue.years {
            let in_band: Vec<_> = tiles
                .values()
                .filter(|t| (lo..hi).contains(&t.cell.lat_index))
                .collect();
            input_bytes += in_band.iter().map(|t| t.bytes).sum::<u64>();
            if !in_band.is_empty() {
                tiles_per_year.insert(year, in_band.len());
            }
        }
        if tiles_per_year.is_empty() {
            continue;
        }
        let grid = BandGrid::for_band(spec, config)?;
        let tiles: usize = tiles_per_year.values().sum();
        inside += tiles;
        let cells_present = catalogue
            .geometry
            .keys()
            .filter(|c| grid.contains(**c))
            .count();
        let shard_pixels = (grid.rows_per_cell * grid.cols_per_cell) as u64;
        let raw_bytes = tiles as u64 * shard_pixels * (CHANNELS as u64 + 4);
        let (eq, pole) = if grid.lat_min() >= 0.0 {
            (grid.lat_min(), grid.lat_max())
        } else {
            (grid.lat_max(), grid.lat_min())
        };
        bands.push(BandPlan {
            tiles_per_year,
            cells_present,
            cells_total: grid.lat_cells() * LON_CELLS as usize,
            array_shape: grid.embeddings_shape(year_span(&years)),
            shard_shape: grid.shard_shape(),
            chunk_shape: grid.chunk_shape(),
            input_bytes,
            raw_bytes,
            estimated_stored_bytes: (raw_bytes as f64 * compression_ratio) as u64,
            pixel_m_equatorward: grid.pixel_size_m(eq),
            pixel_m_poleward: grid.pixel_size_m(pole),
            stretch: grid.stretch(),
            grid,
        });
    }
    Ok(Plan {
        input: catalogue.root.clone(),
        years,
        bands,
        tiles_outside_bands: catalogue.tile_count() - inside,
        problems: catalogue.problems.clone(),
        compression_ratio,
    })
}

/// Length of the year axis: every year from the first to the last present.
pub fn year_span(years: &[u16]) -> usize {
    match (years.first(), years.last()) {
        (Some(a), Some(b)) => (b - a + 1) as usize,
        _ => 0,
    }
}

/// Human-readable byte count.
pub fn human_bytes(b: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

impl Plan {
    /// The plan as a text table, one row per band.
    pub fn table(&self) -> String {
        let mut rows = vec![
            [
                "band",
                "tiles/year",
                "shape (year, lat, lon, ch)",
                "shard",
                "chunk",
                "raw",
                "stored (est.)",
                "px m eq-edge",
                "px m pole-edge",
                "stretch",
                "cells present",
            ]
            .map(String::from),
        ];
        let shape = |s: &[u64; 4]| format!("{} x {} x {} x {}", s[0], s[1], s[2], s[3]);
        for b in &self.bands {
            let per_year = b
                .tiles_per_year
                .iter()
                .map(|(y, n)| format!("{y}:{n}"))
                .collect::<Vec<_>>()
                .join(" ");
            rows.push([
                b.grid.name.clone(),
                per_year,
                shape(&b.array_shape),
                shape(&b.shard_shape),
                shape(&b.chunk_shape),
                human_bytes(b.raw_bytes),
                human_bytes(b.estimated_stored_bytes),
                format!(
                    "{:.2} x {:.2}",
                    b.pixel_m_equatorward.0, b.pixel_m_equatorward.1
                ),
                format!("{:.2} x {:.2}", b.pixel_m_poleward.0, b.pixel_m_poleward.1),
                format!("{:.3}", b.stretch),
                format!(
                    "{} / {} ({:.4}%)",
                    b.cells_present,
                    b.cells_total,
                    100.0 * b.cells_present as f64 / b.cells_total as f64
                ),
            ]);
        }
        let widths: Vec<usize> = (0..rows[0].len())
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for (n, r) in rows.iter().enumerate() {
            let line: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
            if n == 0 {
                out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
                out.push('\n');
            }
        }
        out
    }
}

/// Stretch of a prospective band given as cell latitude indices.
fn stretch_of(lo: u16, hi: u16, config: &BandsConfig) -> Result<f64, GridError> {
    let spec = BandSpec {
        name: band_name(lat_of_index(lo), lat_of_index(hi)),
        lat_min: lat_of_index(lo),
        lat_max: lat_of_index(hi),
    };
    // Cheap pre-check of feasibility (errors on too few rows).
    min_cols_per_cell(&spec.name, lo, hi, config.rows_per_cell)?;
    Ok(BandGrid::for_band(&spec, config)?.stretch())
}

/// Propose band edges covering the latitude range of the catalogue's cells (rounded out to whole
/// degrees) so that every band's stretch stays at or under `max_stretch`. Bands grow from the
/// equator toward each pole; a single 0.1-degree band that exceeds the limit is kept (nothing
/// narrower exists) and reported in the second return value.
pub fn propose_bands(
    catalogue: &Catalogue,
    config: &BandsConfig,
    max_stretch: f64,
) -> Result<(Vec<BandSpec>, Vec<String>), GridError> {
    let lat_indices = catalogue.geometry.keys().map(|c| c.lat_index);
    let (Some(min), Some(max)) = (lat_indices.clone().min(), lat_indices.max()) else {
        return Ok((vec![], vec![]));
    };
    let lo = (min / 10) * 10;
    let hi = ((max + 1).div_ceil(10) * 10).min(LAT_CELLS);
    let mut bands = Vec::new();
    let mut over = Vec::new();
    // Northern part: grow poleward from its southern edge.
    let mut cur = lo.max(900);
    while cur < hi {
        let end = grow(cur, hi, |e| stretch_of(cur, e, config), max_stretch)?;
        bands.push((cur, end));
        cur = end;
    }
    // Southern part: grow poleward (southward) from its northern edge.
    let mut cur = hi.min(900);
    while cur > lo {
        let start = grow_down(lo, cur, |s| stretch_of(s, cur, config), max_stretch)?;
        bands.push((start, cur));
        cur = start;
    }
    bands.sort();
    let mut specs = Vec::new();
    for (a, b) in bands {
        let (lat_min, lat_max) = (lat_of_index(a), lat_of_index(b));
        let s = stretch_of(a, b, config)?;
        if s > max_stretch {
            over.push(format!(
                "band {} has stretch {s:.3} > {max_stretch} even at one cell",
                band_name(lat_min, lat_max)
            ));
        }
        specs.push(BandSpec {
            name: band_name(lat_min, lat_max),
            lat_min,
            lat_max,
        });
    }
    Ok((specs, over))
}

/// Largest `end` in (start, limit] with `f(end) <= max` (at least start + 1), by bisection on
/// the monotone stretch.
fn grow(
    start: u16,
    limit: u16,
    f: impl Fn(u16) -> Result<f64, GridError>,
    max: f64,
) -> Result<u16, GridError> {
    let (mut ok, mut bad) = (start + 1, limit + 1);
    if f(limit)? <= max {
        return Ok(limit);
    }
    bad = bad.min(limit);
    while bad - ok > 1 {
        let mid = (ok + bad) / 2;
        if f(mid)? <= max { ok = mid } else { bad = mid }
    }
    Ok(ok)
}

/// Smallest `start` in [limit, end) with `f(start) <= max` (at most end - 1).
fn grow_down(
    limit: u16,
    end: u16,
    f: impl Fn(u16) -> Result<f64, GridError>,
    max: f64,
) -> Result<u16, GridError> {
    if f(limit)? <= max {
        return Ok(limit);
    }
    let (mut ok, mut bad) = (end - 1, limit);
    while ok - bad > 1 {
        let mid = (ok + bad) / 2;
        if f(mid)? <= max { ok = mid } else { bad = mid }
    }
    Ok(ok)
}

/// Stored / raw size of embeddings plus scales, measured by compressing the start of up to
/// three tiles of the catalogue (1.0 when there are none).
pub fn sample_compression_ratio(
    source: &dyn TileSource,
    catalogue: &Catalogue,
    compression: &CompressionConfig,
) -> Result<f64, TileProblem> {
    const EMB_SAMPLE: usize = 4 << 20;
    let tiles: Vec<_> = catalogue.years.values().flat_map(|t| t.values()).collect();
    if tiles.is_empty() {
        return Ok(1.0);
    }
    let picks: Vec<_> = (0..3.min(tiles.len()))
        .map(|i| tiles[i * tiles.len() / 3.min(tiles.len())])
        .collect();
    let (mut raw, mut stored) = (0usize, 0usize);
    for tile in picks {
        for (path, dtype, sample) in [
            (&tile.embeddings, "int8", EMB_SAMPLE),
            (&tile.scales, "float32", EMB_SAMPLE / 32),
        ] {
            let bytes = source.read_data_prefix(path, sample)?;
            let bytes = &bytes[..bytes.len() / 4 * 4];
            if bytes.is_empty() {
                continue;
            }
            raw += bytes.len();
            stored += encoded_size(bytes, dtype, compression)
                .map_err(|e| TileProblem::new(path, chain(&e)))?;
        }
    }
    Ok(if raw == 0 {
        1.0
    } else {
        stored as f64 / raw as f64
    })
}
