//! `mosaic verify`: check a built band against its input, independently of the writer.
//!
//! The writer places pixels through an interpolated transform and a per-cell placement map;
//! the verifier does neither. For every checked output pixel it takes the pixel centre from the
//! store's own `lat`/`lon` coordinate arrays, projects it with PROJ, looks up the source pixel,
//! applies the no-data rules, and compares bit for bit with what a Zarr read of the store
//! returns. It also checks that every input tile has its shards and that no shard exists
//! without an input tile. In a band with overviews it checks, for every checked tile, each
//! level the build writes per cell (every pixel the pixel of the level below under its centre,
//! the band itself below the finest level) and the colour statistics (the sums recomputed from
//! the statistics level's pixels, every sampled pixel one of them); the coarse levels that
//! `finalize` makes are not checked.

use std::collections::{BTreeSet, HashSet};

use rayon::prelude::*;
use serde::Serialize;
use zarrs::array::ArraySubset;

use crate::error::chain;
use crate::grid::BandGrid;
use crate::grid::{CHANNELS, Cell, TileGeometry, UtmProjection, UtmZone};
use crate::hash::splitmix64_next;
use crate::input::{Catalogue, InputTile, TileSource, read_landmask_for, read_tile};
use crate::placement::has_data;
use crate::store::is_temporary_key;
use crate::zarr::{
    BandArrays, COUNTS_FILL, EMBEDDINGS, FormatError, MosaicStore, OverviewLevel, S2_OBS_COUNT,
    SAMPLE, SAMPLE_PIXELS, SCALES, STATISTICS_LEVEL, SUMS, SUMS_LEN, StoreArray, array_path,
    level_array, overview_levels, parse_shard_key, shard_prefix, statistics_array,
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
    /// Input tiles with no shard where no pixel of the cell has data, in a source where NaN
    /// scales are no data (the zone store's sea): rightly not written.
    pub no_data_tiles: Vec<String>,
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
    let overviews = OverviewArrays::open(store, band, &grid)?;
    let mut summary = VerifySummary {
        band: band.to_string(),
        ..Default::default()
    };

    // Shards present, and the ones the input calls for.
    let mut present = HashSet::new();
    let counted = arrays.counts.is_some();
    let data_arrays: &[&str] = if counted {
        &[EMBEDDINGS, SCALES, S2_OBS_COUNT]
    } else {
        &[EMBEDDINGS, SCALES]
    };
    for &array in data_arrays {
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
    let mut unwritten = Vec::new();
    for tile in &tiles {
        let (ek, sk) = arrays
            .shard_keys(tile.cell, tile.year)
            .expect("year on the axis");
        // The counts shard, where the band has the array: required when the input has counts.
        let ck = arrays.counts.as_ref().map(|a| {
            let idx = arrays.shard_indices(tile.cell, tile.year).expect("year");
            a.chunk_key(&idx[..3]).as_str().to_string()
        });
        let counts_there = !source.has_counts() || ck.as_ref().is_none_or(|k| present.contains(k));
        if present.contains(&ek) && present.contains(&sk) && counts_there {
            to_check.push(*tile);
        } else if source.all_nan_is_no_data() && !present.contains(&ek) && !present.contains(&sk) {
            unwritten.push(*tile);
        } else {
            summary
                .missing_tiles
                .push(format!("{} {}", tile.year, tile.cell));
        }
        expected_keys.insert(ek);
        expected_keys.insert(sk);
        expected_keys.extend(ck);
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
            .or_else(|| parse_shard_key(key, band, S2_OBS_COUNT))
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

    // A tile the build skipped as no data: missing unless no pixel of its cell has data (every
    // output pixel projected, its source scale NaN or outside the window).
    let nan_only: Vec<Result<bool, String>> = unwritten
        .par_iter()
        .map(|tile| {
            let (_, raw) = source.read_scales(tile).map_err(|p| p.to_string())?;
            let scales: Vec<f32> = raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if scales.iter().all(|s| s.is_nan()) {
                return Ok(true);
            }
            let geometry = catalogue
                .geometry
                .get(&tile.cell)
                .ok_or("no geometry in the catalogue")?;
            let proj = UtmProjection::new(geometry.zone).map_err(|e| chain(&e))?;
            let (r0, c0) = grid.cell_origin(tile.cell);
            for &lat in &lats[r0..r0 + grid.rows_per_cell] {
                for &lon in &lons[c0..c0 + grid.cols_per_cell] {
                    let (e, n) = proj.forward(lon, lat).map_err(|e| chain(&e))?;
                    if let Some((sr, sc)) = geometry.pixel_at(e, n)
                        && has_data(
                            None,
                            sr * geometry.width + sc,
                            scales[sr * geometry.width + sc],
                        )
                    {
                        return Ok(false);
                    }
                }
            }
            Ok(true)
        })
        .collect();
    for (tile, r) in unwritten.iter().zip(nan_only) {
        let name = format!("{} {}", tile.year, tile.cell);
        match r {
            Ok(true) => summary.no_data_tiles.push(name),
            Ok(false) => summary.missing_tiles.push(name),
            Err(e) => summary.errors.push(format!("{name}: {e}")),
        }
    }

    progress.set_length(to_check.len() as u64);
    let results: Vec<Result<TileCheck, String>> = to_check
        .par_iter()
        .map(|tile| {
            let r = check_tile(
                source,
                catalogue,
                &arrays,
                overviews.as_ref(),
                &lats,
                &lons,
                tile,
                coverage,
            );
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

#[allow(clippy::too_many_arguments)]
fn check_tile(
    source: &dyn TileSource,
    catalogue: &Catalogue,
    arrays: &BandArrays,
    overviews: Option<&OverviewArrays>,
    lats: &[f64],
    lons: &[f64],
    tile: &InputTile,
    coverage: Coverage,
) -> Result<TileCheck, String> {
    let grid = &arrays.layout.grid;
    let cell = tile.cell;
    // The catalogue's geometry: the rule's for a tile, the group's window (in the group's CRS)
    // for a zone store.
    let (proj, geometry) = match catalogue.geometry.get(&cell) {
        Some(g) => (UtmProjection::new(g.zone).map_err(|e| chain(&e))?, *g),
        None => {
            let proj = UtmProjection::new(UtmZone::for_cell(cell)).map_err(|e| chain(&e))?;
            let g = TileGeometry::with_projection(cell, &proj).map_err(|e| chain(&e))?;
            (proj, g)
        }
    };
    // Through the input seam's checks (headers against the catalogue, the landmask's size and
    // georeference against the rule), as the build reads them: a malformed file is a named
    // problem, never an index out of bounds.
    let mut emb = Vec::new();
    let scales = read_tile(source, tile, &mut emb).map_err(|p| p.to_string())?;
    let scale_at = |s: usize| scales[s];
    // The counts where the band has them: the source's beside each copied pixel, else fill.
    let counts = match &arrays.counts {
        Some(_) => Some(source.read_counts(tile).map_err(|p| p.to_string())?),
        None => None,
    };
    if let Some(Some(c)) = &counts
        && c.len() != scales.len()
    {
        return Err(format!(
            "{} observation counts for {} pixels",
            c.len(),
            scales.len()
        ));
    }
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
    // Errors name the shard object (a damaged index or chunk is a fault of that object).
    let (emb_key, scales_key) = arrays
        .shard_keys(cell, tile.year)
        .expect("year on the axis");
    let out_emb: Vec<i8> = arrays
        .embeddings
        .retrieve_array_subset(&subset)
        .map_err(|e| format!("reading embeddings {emb_key}: {}", chain(&e)))?;
    let subset = ArraySubset::new_with_ranges(&[
        y..y + 1,
        r0 as u64..(r0 + rows) as u64,
        c0 as u64..(c0 + cols) as u64,
    ]);
    let out_scales: Vec<f32> = arrays
        .scales
        .retrieve_array_subset(&subset)
        .map_err(|e| format!("reading scales {scales_key}: {}", chain(&e)))?;
    let out_counts: Option<Vec<u16>> = match &arrays.counts {
        Some(a) => Some(
            a.retrieve_array_subset(&subset)
                .map_err(|e| format!("reading {S2_OBS_COUNT}: {}", chain(&e)))?,
        ),
        None => None,
    };

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
        if let (Some(source_counts), Some(got)) = (&counts, &out_counts) {
            let want = match (expected, source_counts) {
                (Some(s), Some(c)) => c[s],
                _ => COUNTS_FILL,
            };
            if got[p] != want {
                problem.get_or_insert(format!("expected {S2_OBS_COUNT} {want}, found {}", got[p]));
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
    // The overviews and statistics, from the cell's pixels as the store holds them (checked
    // against the input above).
    if let Some(ov) = overviews {
        let band = Block {
            rows,
            cols,
            emb: out_emb,
            scales: out_scales,
        };
        check_overviews(ov, arrays, tile, band, &mut check)?;
    }
    Ok(check)
}

/// A band's overview levels written by the build (one object per cell and year) and its
/// colour statistics, opened once for every tile.
struct OverviewArrays {
    levels: Vec<(OverviewLevel, StoreArray, StoreArray)>,
    sums: StoreArray,
    sample: StoreArray,
}

impl OverviewArrays {
    /// `None` for a band built with `--no-overviews`. The coarse levels that `finalize` makes
    /// from these are not checked.
    fn open(store: &MosaicStore, band: &str, grid: &BandGrid) -> Result<Option<Self>, FormatError> {
        if !store.has_overviews(band)? {
            return Ok(None);
        }
        let open = |name: String| store.open_array(&array_path(band, &name));
        let mut levels = Vec::new();
        for level in overview_levels(grid).into_iter().filter(|l| l.per_cell()) {
            levels.push((
                level,
                open(level_array(level.level, EMBEDDINGS))?,
                open(level_array(level.level, SCALES))?,
            ));
        }
        Ok(Some(OverviewArrays {
            levels,
            sums: open(statistics_array(SUMS))?,
            sample: open(statistics_array(SAMPLE))?,
        }))
    }
}

/// One cell's pixels at some resolution: `rows x cols`, rows south first.
struct Block {
    rows: usize,
    cols: usize,
    emb: Vec<i8>,
    scales: Vec<f32>,
}

impl Block {
    /// The block of `rows x cols` pixels each copying the pixel of `self` under its centre
    /// (docs/format.md: index `floor((2i + 1) n / (2 n_L))` per axis, the next pixel where the
    /// centre lies on an edge).
    fn nearest(&self, rows: usize, cols: usize) -> Block {
        let pick = |i: usize, n: usize, m: usize| ((2 * i + 1) * n) / (2 * m);
        let mut out = Block {
            rows,
            cols,
            emb: Vec::with_capacity(rows * cols * CHANNELS),
            scales: Vec::with_capacity(rows * cols),
        };
        for r in 0..rows {
            let sr = pick(r, self.rows, rows);
            for c in 0..cols {
                let p = sr * self.cols + pick(c, self.cols, cols);
                out.emb
                    .extend_from_slice(&self.emb[p * CHANNELS..(p + 1) * CHANNELS]);
                out.scales.push(self.scales[p]);
            }
        }
        out
    }
}

/// Check a cell's overview levels against its band pixels (`band`, as read from the store) and
/// its colour statistics against the statistics level: every pixel of every level a copy of
/// the pixel of the level below under its centre, the sums those of the level's valid
/// dequantised pixels, every sampled pixel one of them. Adds to `check`.
fn check_overviews(
    ov: &OverviewArrays,
    arrays: &BandArrays,
    tile: &InputTile,
    band: Block,
    check: &mut TileCheck,
) -> Result<(), String> {
    let grid = &arrays.layout.grid;
    let cell = tile.cell;
    let y = arrays
        .layout
        .year_index(tile.year)
        .expect("year on the axis");
    let (i, j) = (
        (cell.lat_index - grid.lat_start_index) as u64,
        cell.lon_index as u64,
    );
    let note = |check: &mut TileCheck, what: String| {
        check.mismatch_count += 1;
        if check.mismatches.len() < KEEP_MISMATCHES {
            check.mismatches.push(Mismatch {
                year: tile.year,
                tile: cell.name(),
                row: 0,
                col: 0,
                lat: cell.lat_min(),
                lon: cell.lon_min(),
                detail: what,
            });
        }
    };
    let mut below = band;
    let mut statistics_checked = false;
    for (level, emb_array, scales_array) in &ov.levels {
        let (rows, cols) = (level.rows_per_cell, level.cols_per_cell);
        let want = below.nearest(rows, cols);
        let (r0, c0) = (i * rows as u64, j * cols as u64);
        let subset = ArraySubset::new_with_ranges(&[
            y..y + 1,
            r0..r0 + rows as u64,
            c0..c0 + cols as u64,
            0..CHANNELS as u64,
        ]);
        let got_emb: Vec<i8> = emb_array
            .retrieve_array_subset(&subset)
            .map_err(|e| format!("reading overview level {} embeddings: {e}", level.level))?;
        let subset =
            ArraySubset::new_with_ranges(&[y..y + 1, r0..r0 + rows as u64, c0..c0 + cols as u64]);
        let got_scales: Vec<f32> = scales_array
            .retrieve_array_subset(&subset)
            .map_err(|e| format!("reading overview level {} scales: {e}", level.level))?;
        let bad: Vec<usize> = (0..rows * cols)
            .filter(|&p| {
                got_scales[p].to_bits() != want.scales[p].to_bits()
                    || got_emb[p * CHANNELS..(p + 1) * CHANNELS]
                        != want.emb[p * CHANNELS..(p + 1) * CHANNELS]
            })
            .collect();
        if let Some(&p) = bad.first() {
            note(
                check,
                format!(
                    "overview level {}: {} of {} pixels are not the pixel of the level below under their centre (first: row {} col {} of the cell, scale {} for {})",
                    level.level,
                    bad.len(),
                    rows * cols,
                    p / cols,
                    p % cols,
                    got_scales[p],
                    want.scales[p]
                ),
            );
        }
        below = want;
        if level.level == STATISTICS_LEVEL {
            statistics_checked = true;
            check_statistics(ov, y, i, j, &below).unwrap_or_else(|what| note(check, what));
        }
    }
    // A band too coarse for the statistics level sums its last per-cell level.
    if !statistics_checked {
        check_statistics(ov, y, i, j, &below).unwrap_or_else(|what| note(check, what));
    }
    Ok(())
}

/// The statistics of one (cell, year) against the pixels of the statistics level.
fn check_statistics(
    ov: &OverviewArrays,
    y: u64,
    i: u64,
    j: u64,
    level: &Block,
) -> Result<(), String> {
    let sums: Vec<f64> = ov
        .sums
        .retrieve_array_subset(&ArraySubset::new_with_ranges(&[
            y..y + 1,
            i..i + 1,
            j..j + 1,
            0..SUMS_LEN as u64,
        ]))
        .map_err(|e| format!("reading colour statistics sums: {e}"))?;
    let sample: Vec<f32> = ov
        .sample
        .retrieve_array_subset(&ArraySubset::new_with_ranges(&[
            y..y + 1,
            i..i + 1,
            j..j + 1,
            0..SAMPLE_PIXELS as u64,
            0..CHANNELS as u64,
        ]))
        .map_err(|e| format!("reading colour statistics sample: {e}"))?;
    // Recomputed here: count, sum and the upper triangle of the sum of outer products of the
    // valid dequantised pixels (f64).
    let mut want = vec![0f64; SUMS_LEN];
    let mut pixels = HashSet::new();
    for (p, &s) in level.scales.iter().enumerate() {
        if s.is_nan() {
            continue;
        }
        let x: Vec<f64> = level.emb[p * CHANNELS..(p + 1) * CHANNELS]
            .iter()
            .map(|&q| q as f64 * s as f64)
            .collect();
        want[0] += 1.0;
        let mut k = 1 + CHANNELS;
        for a in 0..CHANNELS {
            want[1 + a] += x[a];
            for b in a..CHANNELS {
                want[k] += x[a] * x[b];
                k += 1;
            }
        }
        let as_f32: Vec<u32> = level.emb[p * CHANNELS..(p + 1) * CHANNELS]
            .iter()
            .map(|&q| (q as f32 * s).to_bits())
            .collect();
        pixels.insert(as_f32);
    }
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) + 1e-9;
    if let Some(k) = (0..SUMS_LEN).find(|&k| !close(sums[k], want[k])) {
        return Err(format!(
            "colour statistics: sums[{k}] is {} where the statistics level's pixels give {}",
            sums[k], want[k]
        ));
    }
    let rows: Vec<&[f32]> = sample.chunks(CHANNELS).filter(|r| !r[0].is_nan()).collect();
    if rows.len() != (want[0] as usize).min(SAMPLE_PIXELS) {
        return Err(format!(
            "colour statistics: {} sampled pixels of {} valid",
            rows.len(),
            want[0]
        ));
    }
    if let Some(k) = rows
        .iter()
        .position(|r| !pixels.contains(&r.iter().map(|v| v.to_bits()).collect::<Vec<_>>()))
    {
        return Err(format!(
            "colour statistics: sampled pixel {k} is none of the statistics level's pixels"
        ));
    }
    Ok(())
}
