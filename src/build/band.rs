//! The band writer: every tile of a band, for every year, placed and pushed to the outputs.
//!
//! Parallel over cells (rayon): a cell's placement map is computed once and reused for all its
//! years; each (cell, year) is read once, gathered once into the output's row order, and pushed
//! to every [`ShardSink`] by one thread, so no output object is ever read, modified and written
//! back. A rerun skips the (cell, year)s every sink holds and redoes the rest, so a killed build
//! resumes and ends byte-identical to an uninterrupted one. Memory per thread is one source tile
//! plus one output shard, whatever the band's size.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use super::finalize::finalize_band;
use super::overview_sink::OverviewSink;
use super::report::{BuildReport, FailedTile, FailureRecord, NoDataTile, PhaseClock};
use super::resume::{CellWork, band_work, built_everywhere};
use super::sink::{BandArraysSink, GatheredTile, ShardSink};
use super::threads::{TileBuffers, thread_pool, with_tile_buffers};
use crate::error::chain;
use crate::grid::{BandGrid, Cell, CompressionConfig, projection, release_thread_projections};
use crate::input::{Catalogue, InputTile, TileProblem, TileSource, read_landmask_for, read_tile};
use crate::overview::forget_partials;
use crate::placement::{PlacementMap, gather_beside, gather_into, place_cell, scale_is_valid};
use crate::zarr::{COUNTS_FILL, FormatError, MosaicStore};

/// Options of one build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Worker threads (0 = all cores).
    pub threads: usize,
    /// This process builds share `.0` of `.1` (0-based) of the band's cells.
    pub worker: Option<(usize, usize)>,
    /// Compression of the inner chunks.
    pub compression: CompressionConfig,
    /// Fill value of `embeddings`.
    pub embeddings_fill: i8,
    /// Write the overview pyramid and colour statistics too.
    pub overviews: bool,
}

/// Errors that stop a build (not per-tile failures, which are reported and skipped).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("cannot start {threads} worker threads")]
    Threads {
        threads: usize,
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
    #[error("band {0} has no tiles in the input")]
    Empty(String),
}

/// Build (or resume) a band of `catalogue` (read through `source`) into `store`.
pub fn build_band(
    source: &dyn TileSource,
    catalogue: &Catalogue,
    store: &MosaicStore,
    grid: &BandGrid,
    options: &BuildOptions,
    progress: &indicatif::ProgressBar,
) -> Result<BuildReport, BuildError> {
    let band = grid.name.clone();
    if !catalogue.geometry.keys().any(|c| grid.contains(*c)) {
        return Err(BuildError::Empty(band));
    }
    // The outputs. The year axis covers every year of the input, so all bands of a store
    // share it.
    store.create_or_update_band(
        grid,
        &catalogue.year_list(),
        &options.compression,
        options.embeddings_fill,
        &format!("TESSERA embedding tiles from {}", source.describe()),
        options.overviews,
        source.has_counts(),
    )?;
    let stale = store
        .store
        .remove_stale_temporaries(&format!("{band}/"))
        .map_err(FormatError::from)?;
    if stale > 0 {
        tracing::info!(band = %band, stale, "removed temporary objects of an interrupted build");
    }
    let (threads, pool) = thread_pool(options.threads)?;
    let arrays = BandArraysSink::new(store, &band, threads, source.has_counts())?;
    let overviews = if store.has_overviews(&band)? {
        Some(OverviewSink::new(store, &band, threads)?)
    } else {
        None
    };
    let mut sinks: Vec<&dyn ShardSink> = vec![&arrays];
    if let Some(o) = &overviews {
        sinks.push(o);
    }
    pool.install(|| {
        let written = write_band(source, catalogue, store, grid, options, &sinks, progress);
        // Every thread drops its projections here, while none projects (see the function).
        rayon::broadcast(|_| release_thread_projections());
        let mut report = written?;
        // The steps that need the whole band: a worker leaves them to `mosaic finalize`.
        if overviews.is_some() && options.worker.is_none() {
            let t = Instant::now();
            progress.set_message("overview pyramid and colours");
            finalize_band(store, &band, &catalogue.year_list())?;
            report.finalize_seconds = t.elapsed().as_secs_f64();
            report.seconds += report.finalize_seconds;
        }
        // Kept in the store for `status` and the next run, even when nothing failed (a rerun
        // that fixed every tile clears the old record).
        FailureRecord::of(&report).write(store)?;
        Ok(report)
    })
}

/// The writer's loop: place, read, gather and push every tile still to write to every sink.
fn write_band(
    source: &dyn TileSource,
    catalogue: &Catalogue,
    store: &MosaicStore,
    grid: &BandGrid,
    options: &BuildOptions,
    sinks: &[&dyn ShardSink],
    progress: &indicatif::ProgressBar,
) -> Result<BuildReport, BuildError> {
    let start = Instant::now();
    let built = built_everywhere(
        sinks
            .iter()
            .map(|s| s.built())
            .collect::<Result<Vec<_>, _>>()?,
    );
    let work = band_work(catalogue, grid, options.worker, &built);
    let mut report = BuildReport {
        band: grid.name.clone(),
        worker: options.worker.map(|(i, n)| format!("{}/{n}", i + 1)),
        input_problems: catalogue.problems.clone(),
        tiles_total: work.tiles_total,
        tiles_skipped: work.tiles_skipped,
        ..Default::default()
    };
    // What finalize made from these cells' earlier content (a band removed and built again).
    let cells: Vec<(u16, Cell)> = work
        .cells
        .iter()
        .flat_map(|w| w.tiles.iter().map(move |t| (t.year, w.cell)))
        .collect();
    let forgotten = forget_partials(store, &grid.name, &cells)?;
    if forgotten > 0 {
        tracing::info!(band = %grid.name, forgotten, "removed the finalize partials of cells built again");
    }
    let to_write = work.tiles_to_write();
    progress.set_length(to_write as u64);
    tracing::info!(band = %grid.name, total = report.tiles_total, skipped = report.tiles_skipped, to_write, cells = work.cells.len(), "building");

    let failed = Mutex::new(Vec::new());
    let no_data = Mutex::new(Vec::new());
    let written = AtomicUsize::new(0);
    let bytes_read = AtomicU64::new(0);
    let fallbacks = AtomicU64::new(0);
    let placed = AtomicU64::new(0);
    let clock = PhaseClock::default();
    // Cells are taken in order (par_bridge), so a remote source can fetch ahead in that order.
    let order: Vec<&InputTile> = work
        .cells
        .iter()
        .flat_map(|w| w.tiles.iter().copied())
        .collect();
    source.prefetch(&order, 2 * (rayon::current_num_threads() + 1));
    work.cells.iter().par_bridge().for_each(|w| {
        let fail = |tile: &InputTile, problem: TileProblem| {
            failed
                .lock()
                .expect("no poisoning")
                .push((tile.year, w.cell, problem));
            progress.inc(1);
        };
        let t = Instant::now();
        let prepared = prepare_cell(source, grid, w);
        PhaseClock::add(&clock.transform, t);
        let (map, mask) = match prepared {
            Ok(p) => p,
            Err((path, reason)) => {
                for tile in &w.tiles {
                    let path = path.as_deref().unwrap_or(&tile.embeddings);
                    fail(tile, TileProblem::new(path, reason.clone()));
                }
                return;
            }
        };
        for tile in &w.tiles {
            let result = with_tile_buffers(|buffers| {
                write_tile(
                    source,
                    sinks,
                    tile,
                    &map,
                    mask.as_deref(),
                    options.embeddings_fill,
                    &clock,
                    buffers,
                )
            });
            match result {
                Ok(None) => {
                    bytes_read.fetch_add(tile.bytes, Ordering::Relaxed);
                    no_data
                        .lock()
                        .expect("no poisoning")
                        .push((tile.year, w.cell));
                    progress.inc(1);
                }
                Ok(Some(bytes)) => {
                    bytes_read.fetch_add(bytes, Ordering::Relaxed);
                    placed.fetch_add(map.source.len() as u64, Ordering::Relaxed);
                    // Over placed pixels only: a tile that failed placed none.
                    fallbacks.fetch_add(map.exact_fallbacks as u64, Ordering::Relaxed);
                    written.fetch_add(1, Ordering::Relaxed);
                    progress.inc(1);
                    let secs = start.elapsed().as_secs_f64().max(1e-9);
                    progress.set_message(format!(
                        "{:.0} MB/s in",
                        bytes_read.load(Ordering::Relaxed) as f64 / 1e6 / secs
                    ));
                }
                Err(problem) => fail(tile, problem),
            }
        }
    });
    let mut failed = failed.into_inner().expect("no poisoning");
    let mut written = written.into_inner();
    // Writes that failed after the push (in the background) fail their tile.
    for sink in sinks {
        for f in sink.finish() {
            let Some(tile) = catalogue.years.get(&f.year).and_then(|t| t.get(&f.cell)) else {
                continue;
            };
            if failed.iter().any(|(y, c, _)| (*y, *c) == (f.year, f.cell)) {
                continue;
            }
            written -= 1;
            failed.push((f.year, f.cell, TileProblem::new(&tile.embeddings, f.reason)));
        }
    }
    failed.sort_by_key(|f| (f.0, f.1));
    report.failed = failed
        .into_iter()
        .map(|(year, cell, p)| FailedTile {
            year,
            tile: cell.name(),
            path: p.path,
            reason: p.reason,
        })
        .collect();
    let mut no_data = no_data.into_inner().expect("no poisoning");
    no_data.sort();
    report.no_data = no_data
        .into_iter()
        .map(|(year, cell)| NoDataTile {
            year,
            tile: cell.name(),
        })
        .collect();
    report.tiles_written = written;
    report.bytes_read = bytes_read.into_inner();
    report.exact_fallbacks = fallbacks.into_inner();
    report.pixels_placed = placed.into_inner();
    report.thread_seconds = clock.seconds();
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// A cell that cannot be prepared: the file at fault (if not the tile), and why.
pub(crate) type CellFailure = (Option<PathBuf>, String);

/// The placement map and the landmask (if any) of a cell.
pub(crate) fn prepare_cell(
    source: &dyn TileSource,
    grid: &BandGrid,
    w: &CellWork,
) -> Result<(PlacementMap, Option<Vec<u8>>), CellFailure> {
    // The catalogue's geometry's CRS: the rule's zone for a tile, the group's for a zone store.
    let proj = projection(w.geometry.zone).map_err(|e| (None, chain(&e)))?;
    let map = place_cell(grid, &w.geometry, &proj).map_err(|e| (None, chain(&e)))?;
    let mask = match w.landmask {
        None => None,
        Some(path) => Some(
            read_landmask_for(source, path, &w.geometry).map_err(|p| (Some(p.path), p.reason))?,
        ),
    };
    Ok((map, mask))
}

/// Read one tile, gather it into its output shard and push it to every sink. Returns the input
/// bytes read, or `None` for a tile of no data (no data lands in the cell, where the source says
/// NaN scales are no data), which is not written: its shard keeps the fill, as for a tile not in the input.
#[allow(clippy::too_many_arguments)]
fn write_tile(
    source: &dyn TileSource,
    sinks: &[&dyn ShardSink],
    tile: &InputTile,
    map: &PlacementMap,
    landmask: Option<&[u8]>,
    fill: i8,
    clock: &PhaseClock,
    buffers: &mut TileBuffers,
) -> Result<Option<u64>, TileProblem> {
    let t = Instant::now();
    let scales = read_tile(source, tile, &mut buffers.input)?;
    let t = PhaseClock::add(&clock.read, t);
    if source.all_nan_is_no_data() && scales.iter().all(|s| s.is_nan()) {
        return Ok(None);
    }
    if !scales.iter().any(|s| scale_is_valid(*s)) {
        let nan = scales.iter().filter(|s| s.is_nan()).count();
        let non_positive = scales.iter().filter(|s| **s <= 0.0).count();
        return Err(TileProblem::new(
            &tile.scales,
            format!(
                "no valid scale in {} pixels ({nan} NaN, {non_positive} <= 0, {} infinite or >= 1e6): the tile holds no data",
                scales.len(),
                scales.len() - nan - non_positive
            ),
        ));
    }
    let counts = if source.has_counts() {
        match source.read_counts(tile)? {
            Some(c) if c.len() != scales.len() => {
                return Err(TileProblem::new(
                    &tile.embeddings,
                    format!("{} observation counts for {} pixels", c.len(), scales.len()),
                ));
            }
            c => c.map(|c| gather_beside(map, &scales, landmask, &c, COUNTS_FILL)),
        }
    } else {
        None
    };
    let out_scales = gather_into(
        map,
        &buffers.input,
        &scales,
        landmask,
        fill,
        &mut buffers.output,
    );
    drop(scales);
    let t = PhaseClock::add(&clock.gather, t);
    // Data only around the cell (a window's margin, a neighbour's ground inside the projected
    // footprint's box): nothing lands in the cell, so it is no data too.
    if source.all_nan_is_no_data() && out_scales.iter().all(|s| s.is_nan()) {
        return Ok(None);
    }
    let gathered = GatheredTile {
        cell: tile.cell,
        year: tile.year,
        embeddings: &buffers.output,
        scales: &out_scales,
        counts: counts.as_deref(),
    };
    for sink in sinks {
        sink.put(&gathered)
            .map_err(|e| TileProblem::new(&tile.embeddings, chain(&e)))?;
    }
    PhaseClock::add(&clock.encode_write, t);
    Ok(Some(tile.bytes))
}
