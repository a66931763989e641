//! `mosaic verify`: check a built band against its input, independently of the writer.
//!
//! The writer places pixels through an interpolated transform and a per-cell placement map;
//! the verifier does neither. For every checked output pixel it takes the pixel centre from the
//! store's own `lat`/`lon` coordinate arrays, projects it with PROJ, looks up the source pixel,
//! applies the no-data rules, and compares bit for bit with what a Zarr read of the store
//! returns. It also checks that every input tile has its shards and that no shard exists
//! without an input tile.

use std::collections::{BTreeSet, HashSet};

use rayon::prelude::*;
use serde::Serialize;
use zarrs::array::ArraySubset;

use crate::error::chain;
use crate::grid::{CHANNELS, Cell, TileGeometry, UtmProjection, UtmZone};
use crate::hash::splitmix64_next;
use crate::input::{Catalogue, InputTile, TileSource, read_landmask_for, read_tile};
use crate::placement::has_data;
use crate::store::is_temporary_key;
use crate::zarr::{
    BandArrays, EMBEDDINGS, FormatError, MosaicStore, SCALES, array_path, parse_shard_key,
    shard_prefix,
};

/// How many pixels to check.
#[derive(Debug, Clone, Copy)]
pub enum Coverage {
    /// Every output pixel of every tile's cell.
    Full,
    /// This many random output pixels per tile (seeded, deterministic).
    Sample(usize),
}

/// One output pixel that does not hold what the input says.
#[derive(Debug, Clone, Serialize)]
pub struct Mismatch {
    /// Year.
    pub year: u16,
    /// Tile (cell) name.
    pub tile: String,
    /// Row and column in the band arrays.
    pub row: usize,
    /// Column.
    pub col: usize,
    /// Pixel centre latitude.
    pub lat: f64,
    /// Pixel centre longitude.
    pub lon: f64,
    /// What was expected and found.
    pub detail: String,
}

/// The result of a verification.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifySummary {
    /// Band.
    pub band: String,
    /// Tiles compared.
    pub tiles_checked: usize,
    /// Output pixels compared.
    pub pixels_checked: u64,
    /// Of which expected to hold data.
    pub data_pixels: u64,
    /// Pixel mismatches (total).
    pub mismatch_count: u64,
    /// The first mismatches, with their locations.
    pub mismatches: Vec<Mismatch>,
    /// Input tiles with no (or an incomplete) pair of shards.
    pub missing_tiles: Vec<String>,
    /// Shards in the store with no input tile.
    pub unexpected_shards: Vec<String>,
    /// Tiles that could not be read or decoded, with the reason.
    pub errors: Vec<String>,
}

impl VerifySummary {
    /// True when the store matches the input exactly.
    pub fn ok(&self) -> bool {
        self.mismatch_count == 0
            && self.missing_tiles.is_empty()
            && self.unexpected_shards.is_empty()
            && self.errors.is_empty()
    }
}

const KEEP_MISMATCHES: usize = 50;

/// Read a 1-D float64 coordinate array from the store.
fn read_coordinate(store: &MosaicStore, band: &str, name: &str) -> Result<Vec<f64>, FormatError> {
    let path = array_path(band, name);
    let array = store.open_array(&path)?;
    array
        .retrieve_array_subset::<Vec<f64>>(&array.subset_all())
        .map_err(FormatError::array(path))
}

/// Verify a band of a store against a catalogue of its input.
pub fn verify_band(
    source: &dyn TileSource,
    catalogue: &Catalogue,
    store: &MosaicStore,
    band: &str,
    coverage: Coverage,
    progress: &indicatif::ProgressBar,
) -> Result<VerifySummary, FormatError> {
    let arrays = store.band_arrays(band)?;
    let grid = arrays.layout.grid.clone();
    let lats = read_coordinate(store, band, "lat")?;
    let lons = read_coordinate(store, band, "lon")?;
    let mut summary = VerifySummary {
        band: band.to_string(),
        ..Default::default()
    };

    // Shards present, and the ones the input calls for.
    let mut present = HashSet::new();
    for array in [EMBEDDINGS, SCALES] {
        for key in store.store.list_prefix(&shard_prefix(band, array))? {
            if !is_temporary_key(&key) {
                present.insert(key);
            }
        }
    }
    let tiles: Vec<&InputTile> = catalogue
        .years
        .values()
        .flat_map(|t| t.values())
        .filter(|t| grid.contains(t.cell) && arrays.layout.year_index(t.year).is_some())
        .collect();
    let mut expected_keys = BTreeSet::new();
    let mut to_check = Vec::new();
    for tile in &tiles {
        let (ek, sk) = arrays
            .shard_keys(tile.cell, tile.year)
            .expect("year on the axis");
        if present.contains(&ek) && present.contains(&sk) {
            to_check.push(*tile);
        } else {
            summary
                .missing_tiles
                .push(format!("{} {}", tile.year, tile.cell));
        }
        expected_keys.insert(ek);
        expected_keys.insert(sk);
    }
    // Shards of the checked years with no input tile.
    let checked_years: BTreeSet<u64> = catalogue
        .years
        .keys()
        .filter_map(|y| arrays.layout.year_index(*y))
        .collect();
    let year_of = |key: &str| -> Option<u64> {
        parse_shard_key(key, band, EMBEDDINGS)
            .or_else(|| parse_shard_key(key, band, SCALES))
            .and_then(|idx| idx.first().copied())
    };
    let mut unexpected: Vec<String> = present
        .iter()
        .filter(|k| {
            !expected_keys.contains(*k) && year_of(k).is_some_and(|y| checked_years.contains(&y))
        })
        .cloned()
        .collect();
    unexpected.sort();
    summary.unexpected_shards = unexpected;

    progress.set_length(to_check.len() as u64);
    let results: Vec<Result<TileCheck, String>> = to_check
        .par_iter()
        .map(|tile| {
            let r = check_tile(source, catalogue, &arrays, &lats, &lons, tile, coverage);
            progress.inc(1);
            r
        })
        .collect();
    for (tile, r) in to_check.iter().zip(results) {
        match r {
            Ok(c) => {
                summary.tiles_checked += 1;
                summary.pixels_checked += c.pixels;
                summary.data_pixels += c.data;
                summary.mismatch_count += c.mismatch_count;
                for m in c.mismatches {
                    if summary.mismatches.len() < KEEP_MISMATCHES {
                        summary.mismatches.push(m);
                    }
                }
            }
            Err(e) => summary
                .errors
                .push(format!("{} {}: {e}", tile.year, tile.cell)),
        }
    }
    Ok(summary)
}

struct TileCheck {
    pixels: u64,
    data: u64,
    mismatch_count: u64,
    mismatches: Vec<Mismatch>,
}

fn check_tile(
    source: &dyn TileSource,
    catalogue: &Catalogue,
    arrays: &BandArrays,
    lats: &[f64],
    lons: &[f64],
    tile: &InputTile,
    coverage: Coverage,
) -> Result<TileCheck, String> {
    let grid = &arrays.layout.grid;
    let cell = tile.cell;
    let proj = UtmProjection::new(UtmZone::for_cell(cell)).map_err(|e| chain(&e))?;
    let geometry = TileGeometry::with_projection(cell, &proj).map_err(|e| chain(&e))?;
    // Through the input seam's checks (headers against the catalogue, the landmask's size and
    // georeference against the rule), as the build reads them: a malformed file is a named
    // problem, never an index out of bounds.
    let mut emb = Vec::new();
    let scales = read_tile(source, tile, &mut emb).map_err(|p| p.to_string())?;
    let scale_at = |s: usize| scales[s];
    let mask = match catalogue.landmasks.get(&cell) {
        Some(p) => Some(read_landmask_for(source, p, &geometry).map_err(|p| p.to_string())?),
        None => None,
    };

    // The cell's block, read back through Zarr.
    let (r0, c0) = grid.cell_origin(cell);
    let (rows, cols) = (grid.rows_per_cell, grid.cols_per_cell);
    let y = arrays
        .layout
        .year_index(tile.year)
        .expect("year on the axis");
    let subset = ArraySubset::new_with_ranges(&[
        y..y + 1,
        r0 as u64..(r0 + rows) as u64,
        c0 as u64..(c0 + cols) as u64,
        0..CHANNELS as u64,
    ]);
    let out_emb: Vec<i8> = arrays
        .embeddings
        .retrieve_array_subset(&subset)
        .map_err(|e| format!("reading embeddings: {e}"))?;
    let subset = ArraySubset::new_with_ranges(&[
        y..y + 1,
        r0 as u64..(r0 + rows) as u64,
        c0 as u64..(c0 + cols) as u64,
    ]);
    let out_scales: Vec<f32> = arrays
        .scales
        .retrieve_array_subset(&subset)
        .map_err(|e| format!("reading scales: {e}"))?;

    let positions: Vec<(usize, usize)> = match coverage {
        Coverage::Full => (0..rows)
            .flat_map(|r| (0..cols).map(move |c| (r, c)))
            .collect(),
        Coverage::Sample(n) => {
            let mut state = ((cell.lat_index as u64) << 32)
                ^ ((cell.lon_index as u64) << 16)
                ^ tile.year as u64;
            (0..n)
                .map(|_| {
                    (
                        (splitmix64_next(&mut state) % rows as u64) as usize,
                        (splitmix64_next(&mut state) % cols as u64) as usize,
                    )
                })
                .collect()
        }
    };
    let fill = arrays.layout.embeddings_fill;
    let mut check = TileCheck {
        pixels: 0,
        data: 0,
        mismatch_count: 0,
        mismatches: Vec::new(),
    };
    for (r, c) in positions {
        let (lat, lon) = (lats[r0 + r], lons[c0 + c]);
        check.pixels += 1;
        let mut problem = None;
        if Cell::containing(lon, lat) != Some(cell) {
            problem = Some(format!(
                "pixel centre ({lat}, {lon}) lies outside cell {cell}"
            ));
        }
        let (e, n) = proj.forward(lon, lat).map_err(|e| chain(&e))?;
        let source_pixel = geometry
            .pixel_at(e, n)
            .map(|(sr, sc)| sr * geometry.width + sc);
        let expected = source_pixel.filter(|&s| has_data(mask.as_deref(), s, scale_at(s)));
        let p = r * cols + c;
        let got_emb = &out_emb[p * CHANNELS..(p + 1) * CHANNELS];
        let got_scale = out_scales[p];
        match expected {
            Some(s) => {
                check.data += 1;
                let want = &emb[s * CHANNELS..(s + 1) * CHANNELS];
                let same_emb = got_emb.iter().zip(want).all(|(a, b)| *a as u8 == *b);
                if !same_emb || got_scale.to_bits() != scale_at(s).to_bits() {
                    let (sr, sc) = (s / geometry.width, s % geometry.width);
                    problem.get_or_insert(format!(
                        "expected source pixel ({sr}, {sc}) scale {} embedding[..4] {:?}, found scale {got_scale} embedding[..4] {:?}",
                        scale_at(s),
                        want[..4].iter().map(|b| *b as i8).collect::<Vec<_>>(),
                        &got_emb[..4]
                    ));
                }
            }
            None => {
                if !got_scale.is_nan() || got_emb.iter().any(|v| *v != fill) {
                    problem.get_or_insert(format!(
                        "expected no data (fill), found scale {got_scale} embedding[..4] {:?}",
                        &got_emb[..4]
                    ));
                }
            }
        }
        if let Some(detail) = problem {
            check.mismatch_count += 1;
            if check.mismatches.len() < KEEP_MISMATCHES {
                check.mismatches.push(Mismatch {
                    year: tile.year,
                    tile: cell.name(),
                    row: r0 + r,
                    col: c0 + c,
                    lat,
                    lon,
                    detail,
                });
            }
        }
    }
    Ok(check)
}
