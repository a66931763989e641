//! The band writer: every tile of a band, for every year, placed into the band's arrays.
//!
//! Parallel over cells (rayon): a cell's placement map is computed once and reused for all its
//! years; each (cell, year) becomes exactly two whole-shard writes (`embeddings`, then `scales`)
//! by one thread, so no shard is ever read, modified and written back. A (cell, year) is done
//! when both shards exist in the store; a rerun skips those and redoes the rest, so a killed
//! build resumes and ends byte-identical to an uninterrupted one. Memory per thread is one
//! source tile plus one output shard, whatever the band's size.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cell::Cell;
use crate::geometry::{TileGeometry, UtmProjection, UtmZone};
use crate::geotiff;
use crate::grid::BandGrid;
use crate::npy::{self, NpyDtype};
use crate::placement::{NO_SOURCE, PlacementMap, place_cell};
use crate::store::{BackgroundWrites, BandArrays, Store, StoreError};
use crate::tiles::{CHANNELS, Catalogue, InputTile, ScalesLayout, TileProblem};

/// Options of one build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Worker threads (0 = all cores).
    pub threads: usize,
    /// This process builds share `.0` of `.1` (0-based) of the band's cells.
    pub worker: Option<(usize, usize)>,
    /// Compression and fill settings.
    pub compression: crate::bands::CompressionConfig,
    /// Fill value of `embeddings`.
    pub embeddings_fill: i8,
}

/// What a build did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BuildReport {
    /// Band name.
    pub band: String,
    /// Worker share, if any (`I/N`, 1-based as on the command line).
    pub worker: Option<String>,
    /// Tiles (cell x year) in this build's share.
    pub tiles_total: usize,
    /// Tiles written now.
    pub tiles_written: usize,
    /// Tiles already in the store (skipped).
    pub tiles_skipped: usize,
    /// Tiles that failed (not written), with the reason.
    pub failed: Vec<FailedTile>,
    /// Problems found while scanning the input (never written).
    pub input_problems: Vec<TileProblem>,
    /// Input bytes read.
    pub bytes_read: u64,
    /// Seconds spent.
    pub seconds: f64,
    /// Output pixels placed by the exact PROJ fallback (near a source pixel edge).
    pub exact_fallbacks: u64,
    /// Output pixels placed in total.
    pub pixels_placed: u64,
    /// Thread-seconds spent reading tiles, placing (maps + gather), and encoding + writing shards.
    pub thread_seconds: PhaseSeconds,
}

/// A tile that could not be written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedTile {
    /// Year.
    pub year: u16,
    /// Tile (cell) name.
    pub tile: String,
    /// The file at fault.
    pub path: std::path::PathBuf,
    /// What went wrong.
    pub reason: String,
}

impl std::fmt::Display for FailedTile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// Where the build's thread time went.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PhaseSeconds {
    /// Reading input files.
    pub read: f64,
    /// Placement maps and gathering pixels.
    pub place: f64,
    /// Encoding (compressing) and writing shards.
    pub encode_write: f64,
}

/// Thread-nanoseconds per phase, summed across threads.
#[derive(Default)]
struct PhaseClock {
    read: AtomicU64,
    place: AtomicU64,
    encode_write: AtomicU64,
}

impl PhaseClock {
    fn add(counter: &AtomicU64, since: Instant) -> Instant {
        let now = Instant::now();
        counter.fetch_add((now - since).as_nanos() as u64, Ordering::Relaxed);
        now
    }

    fn seconds(&self) -> PhaseSeconds {
        let s = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e9;
        PhaseSeconds {
            read: s(&self.read),
            place: s(&self.place),
            encode_write: s(&self.encode_write),
        }
    }
}

impl BuildReport {
    /// True when every input tile of the band was written (no input problem, no failure).
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.input_problems.is_empty()
    }

    /// Store key of this build's failure record: `_mosaic/failures/{band}/{all|worker-I-of-N}.json`.
    pub fn failures_key(&self) -> String {
        let who = self.worker.as_deref().map_or("all".to_string(), |w| {
            format!("worker-{}", w.replace('/', "-of-"))
        });
        format!("_mosaic/failures/{}/{who}.json", self.band)
    }

    /// The failure record kept in the store: deterministic (no timings), empty when all went well.
    pub fn failures_record(&self) -> serde_json::Value {
        serde_json::json!({
            "band": self.band,
            "worker": self.worker,
            "failed": self.failed,
            "input_problems": self.input_problems,
        })
    }
}

/// Errors that stop a build (not per-tile failures, which are reported and skipped).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start {0} worker threads: {1}")]
    Threads(usize, String),
    #[error("band {0} has no tiles in the input")]
    Empty(String),
}

/// True for a usable scale: finite, positive and below the sentinel range.
pub fn scale_is_valid(s: f32) -> bool {
    s.is_finite() && s > 0.0 && s < 1e6
}

/// The cells of a band that a worker builds: a fixed function of the cell, so every worker
/// agrees on the split with no coordination.
pub fn in_worker_share(cell: Cell, worker: Option<(usize, usize)>) -> bool {
    match worker {
        None => true,
        Some((i, n)) => {
            let id = cell.lat_index as u64 * 3600 + cell.lon_index as u64;
            // Mix so that neighbouring cells spread over workers evenly.
            (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % n as u64 == i as u64
        }
    }
}

/// Remove temporary objects left in a band by killed builds: keys `*.tmp.{pid}.{n}` whose
/// process no longer runs on this machine. Only local stores write temporaries.
pub fn remove_stale_temporaries(store: &Store, band: &str) -> Result<usize, StoreError> {
    let mut removed = 0;
    for key in store.list_prefix(&format!("{band}/"))? {
        let Some(pid) = key.rsplit('/').next().and_then(temporary_key_pid) else {
            continue;
        };
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        if !alive && Path::new("/proc/self").exists() {
            store.erase(&key)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The process id in a temporary object name `name.tmp.{pid}.{n}`.
fn temporary_key_pid(name: &str) -> Option<u32> {
    let (_, rest) = name.rsplit_once(".tmp.")?;
    rest.split('.').next()?.parse().ok()
}

/// Work of one cell: its geometry and the tiles still to write.
struct CellWork<'a> {
    cell: Cell,
    geometry: TileGeometry,
    tiles: Vec<&'a InputTile>,
    landmask: Option<&'a Path>,
}

/// Build (or resume) a band from a catalogue into a store.
pub fn build_band(
    catalogue: &Catalogue,
    store: &Store,
    grid: &BandGrid,
    options: &BuildOptions,
    progress: &indicatif::ProgressBar,
) -> Result<BuildReport, BuildError> {
    let start = Instant::now();
    let band = grid.name.clone();
    // The year axis covers every year of the input, so all bands of a store share it.
    let years = catalogue.year_list();
    if !catalogue.geometry.keys().any(|c| grid.contains(*c)) {
        return Err(BuildError::Empty(band));
    }
    let source = format!("TESSERA embedding tiles from {}", catalogue.root.display());
    let arrays = store.create_or_update_band(
        grid,
        &years,
        &options.compression,
        options.embeddings_fill,
        &source,
    )?;
    let stale = if store.is_local() {
        remove_stale_temporaries(store, &band)?
    } else {
        0
    };
    if stale > 0 {
        tracing::info!(band = %band, stale, "removed temporary objects of an interrupted build");
    }
    let built = store.built_cells(&arrays)?;
    // Shard writes go to background threads so compression overlaps the disk's fsyncs.
    let threads = if options.threads == 0 {
        rayon::current_num_threads()
    } else {
        options.threads
    };
    let (writing_store, background) = BackgroundWrites::wrap(store, 2, threads);
    let arrays = writing_store.band_arrays(&band)?;

    let mut report = BuildReport {
        band: band.clone(),
        worker: options.worker.map(|(i, n)| format!("{}/{n}", i + 1)),
        input_problems: catalogue.problems.clone(),
        ..Default::default()
    };
    let mut work = Vec::new();
    for (&cell, geometry) in &catalogue.geometry {
        if !grid.contains(cell) || !in_worker_share(cell, options.worker) {
            continue;
        }
        let mut tiles = Vec::new();
        for tile in catalogue.tiles_of_cell(cell) {
            report.tiles_total += 1;
            if built
                .get(&tile.year)
                .is_some_and(|cells| cells.contains(&cell))
            {
                report.tiles_skipped += 1;
            } else {
                tiles.push(tile);
            }
        }
        if !tiles.is_empty() {
            work.push(CellWork {
                cell,
                geometry: *geometry,
                tiles,
                landmask: catalogue.landmasks.get(&cell).map(|p| p.as_path()),
            });
        }
    }
    let to_write: usize = work.iter().map(|w| w.tiles.len()).sum();
    progress.set_length(to_write as u64);
    tracing::info!(band = %band, total = report.tiles_total, skipped = report.tiles_skipped, to_write, cells = work.len(), "building");

    let failed = Mutex::new(Vec::new());
    let written = AtomicUsize::new(0);
    let bytes_read = AtomicU64::new(0);
    let fallbacks = AtomicU64::new(0);
    let placed = AtomicU64::new(0);
    let clock = PhaseClock::default();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| BuildError::Threads(threads, e.to_string()))?;
    pool.install(|| {
        work.par_iter().for_each(|w| {
            let fail = |tile: &InputTile, path: &Path, reason: String| {
                failed.lock().expect("no poisoning").push((
                    tile.year,
                    w.cell,
                    TileProblem {
                        path: path.to_path_buf(),
                        reason,
                    },
                ));
                progress.inc(1);
            };
            let t = Instant::now();
            let prepared = prepare_cell(grid, w);
            PhaseClock::add(&clock.place, t);
            let (map, mask) = match prepared {
                Ok(p) => p,
                Err((path, reason)) => {
                    for tile in &w.tiles {
                        let path = path.as_deref().unwrap_or(&tile.embeddings);
                        fail(tile, path, reason.clone());
                    }
                    return;
                }
            };
            fallbacks.fetch_add(
                map.exact_fallbacks as u64 * w.tiles.len() as u64,
                Ordering::Relaxed,
            );
            for tile in &w.tiles {
                match write_tile(
                    &arrays,
                    tile,
                    &w.geometry,
                    &map,
                    mask.as_deref(),
                    options.embeddings_fill,
                    &clock,
                ) {
                    Ok(bytes) => {
                        bytes_read.fetch_add(bytes, Ordering::Relaxed);
                        placed.fetch_add(map.source.len() as u64, Ordering::Relaxed);
                        written.fetch_add(1, Ordering::Relaxed);
                        progress.inc(1);
                        let secs = start.elapsed().as_secs_f64().max(1e-9);
                        progress.set_message(format!(
                            "{:.0} MB/s in",
                            bytes_read.load(Ordering::Relaxed) as f64 / 1e6 / secs
                        ));
                    }
                    Err((path, reason)) => {
                        fail(tile, path.as_deref().unwrap_or(&tile.embeddings), reason)
                    }
                }
            }
        });
    });
    let mut failed = failed.into_inner().expect("no poisoning");
    let mut written = written.into_inner();
    // Writes that failed in the background fail their tile.
    let write_errors: std::collections::HashMap<String, String> =
        background.finish().into_iter().collect();
    if !write_errors.is_empty() {
        for w in &work {
            for tile in &w.tiles {
                let (ek, sk) = arrays
                    .shard_keys(w.cell, tile.year)
                    .expect("year on the axis");
                if let Some(e) = write_errors.get(&ek).or_else(|| write_errors.get(&sk)) {
                    written -= 1;
                    failed.push((
                        tile.year,
                        w.cell,
                        TileProblem {
                            path: tile.embeddings.clone(),
                            reason: format!("writing the shard failed: {e}"),
                        },
                    ));
                }
            }
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
    report.tiles_written = written;
    report.bytes_read = bytes_read.into_inner();
    report.exact_fallbacks = fallbacks.into_inner();
    report.pixels_placed = placed.into_inner();
    report.thread_seconds = clock.seconds();
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

type Failure = (Option<std::path::PathBuf>, String);

/// The placement map and the landmask (if any) of a cell.
fn prepare_cell(grid: &BandGrid, w: &CellWork) -> Result<(PlacementMap, Option<Vec<u8>>), Failure> {
    let proj = UtmProjection::new(UtmZone::for_cell(w.cell)).map_err(|e| (None, e.to_string()))?;
    let map = place_cell(grid, &w.geometry, &proj).map_err(|e| (None, e.to_string()))?;
    let mask = match w.landmask {
        None => None,
        Some(path) => {
            let fail = |m: String| (Some(path.to_path_buf()), m);
            let (mw, mh, data) =
                geotiff::read_u8(path).map_err(|e| fail(format!("unreadable landmask: {e}")))?;
            if (mh, mw) != (w.geometry.height, w.geometry.width) {
                return Err(fail(format!(
                    "landmask is {mh} x {mw} but the tile is {} x {}",
                    w.geometry.height, w.geometry.width
                )));
            }
            Some(data)
        }
    };
    Ok((map, mask))
}

/// Read one tile's data (header re-checked against the catalogue) and its scales as f32.
fn read_tile_data(tile: &InputTile) -> Result<(Vec<u8>, Vec<f32>), Failure> {
    let (h, w) = (tile.height, tile.width);
    let (eh, emb) = npy::read_npy(&tile.embeddings)
        .map_err(|e| (Some(tile.embeddings.clone()), e.to_string()))?;
    if eh.dtype != NpyDtype::Int8 || eh.shape != [h, w, CHANNELS] {
        return Err((
            Some(tile.embeddings.clone()),
            format!("changed since the scan: now {:?} {:?}", eh.dtype, eh.shape),
        ));
    }
    let (sh, raw) =
        npy::read_npy(&tile.scales).map_err(|e| (Some(tile.scales.clone()), e.to_string()))?;
    let per_channel = match tile.scales_layout {
        ScalesLayout::PerPixel => 1,
        ScalesLayout::PerChannel => CHANNELS,
    };
    if sh.dtype != NpyDtype::Float32 || sh.len() != h * w * per_channel {
        return Err((
            Some(tile.scales.clone()),
            format!("changed since the scan: now {:?} {:?}", sh.dtype, sh.shape),
        ));
    }
    let scales = raw
        .chunks_exact(4 * per_channel)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok((emb, scales))
}

/// Gather one tile into its two output shards and write them. Returns input bytes read.
fn write_tile(
    arrays: &BandArrays,
    tile: &InputTile,
    geometry: &TileGeometry,
    map: &PlacementMap,
    landmask: Option<&[u8]>,
    fill: i8,
    clock: &PhaseClock,
) -> Result<u64, Failure> {
    debug_assert_eq!((tile.height, tile.width), (geometry.height, geometry.width));
    let t = Instant::now();
    let (emb, scales) = read_tile_data(tile)?;
    let t = PhaseClock::add(&clock.read, t);
    if !scales.iter().any(|s| scale_is_valid(*s)) {
        let nan = scales.iter().filter(|s| s.is_nan()).count();
        let non_positive = scales.iter().filter(|s| **s <= 0.0).count();
        return Err((
            Some(tile.scales.clone()),
            format!(
                "no valid scale in {} pixels ({nan} NaN, {non_positive} <= 0, {} infinite or >= 1e6): the tile holds no data",
                scales.len(),
                scales.len() - nan - non_positive
            ),
        ));
    }
    let (out_emb, out_scales) = gather(map, &emb, &scales, landmask, fill);
    drop((emb, scales));
    let t = PhaseClock::add(&clock.place, t);
    let idx = arrays
        .shard_indices(tile.cell, tile.year)
        .expect("year on the axis");
    let options = zarrs::array::CodecOptions::default()
        .with_store_empty_chunks(true)
        .with_concurrent_target(1);
    let write_err = |e: zarrs::array::ArrayError| {
        (
            Some(tile.embeddings.clone()),
            format!("writing the shard failed: {e}"),
        )
    };
    arrays
        .embeddings
        .store_chunk_opt(&idx, crate::store::raw_bytes(&out_emb), &options)
        .map_err(write_err)?;
    arrays
        .scales
        .store_chunk_opt(&idx[..3], out_scales.as_slice(), &options)
        .map_err(write_err)?;
    PhaseClock::add(&clock.encode_write, t);
    Ok(tile.bytes)
}

/// Copy source pixels into a cell's output buffers (embeddings as bytes, scales as f32).
/// Every output byte is written once: a source vector or the fill.
pub fn gather(
    map: &PlacementMap,
    embeddings: &[u8],
    scales: &[f32],
    landmask: Option<&[u8]>,
    fill: i8,
) -> (Vec<u8>, Vec<f32>) {
    let n = map.source.len();
    let fill_vector = [fill as u8; CHANNELS];
    let mut out_emb = Vec::with_capacity(n * CHANNELS);
    let mut out_scales = Vec::with_capacity(n);
    for &s in &map.source {
        let s = s as usize;
        let source = (s != NO_SOURCE as usize && landmask.is_none_or(|m| m[s] != 0))
            .then(|| scales[s])
            .filter(|scale| scale_is_valid(*scale));
        match source {
            Some(scale) => {
                out_emb.extend_from_slice(&embeddings[s * CHANNELS..(s + 1) * CHANNELS]);
                out_scales.push(scale);
            }
            None => {
                out_emb.extend_from_slice(&fill_vector);
                out_scales.push(f32::NAN);
            }
        }
    }
    (out_emb, out_scales)
}

/// The result of [`ceiling`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ceiling {
    /// Input bytes of the tiles.
    pub input_bytes: u64,
    /// Output (shard) bytes compressed.
    pub output_bytes: u64,
    /// Compressed bytes.
    pub stored_bytes: u64,
    /// Thread-seconds reading input files.
    pub read_seconds: f64,
    /// Thread-seconds compressing the output.
    pub compress_seconds: f64,
    /// Threads used.
    pub threads: usize,
}

impl Ceiling {
    /// Input MB/s the threads could reach doing only the reads and the compression.
    pub fn input_mb_per_s(&self) -> f64 {
        let wall = (self.read_seconds + self.compress_seconds) / self.threads as f64;
        self.input_bytes as f64 / 1e6 / wall.max(1e-9)
    }
}

/// What the hardware allows for a band's tiles: the time to read every input file plus the
/// time to compress the very output bytes a build compresses (the gathered shards, computed
/// outside the timed parts) with the band's codec, into memory. Reprojection, gathering and
/// writing are what a build adds on top.
pub fn ceiling(
    catalogue: &Catalogue,
    grid: &BandGrid,
    options: &BuildOptions,
    progress: &indicatif::ProgressBar,
) -> Result<Ceiling, BuildError> {
    let layout = crate::store::BandLayout {
        format_version: crate::store::FORMAT_VERSION,
        grid: grid.clone(),
        first_year: 0,
        years: 1,
        compression: options.compression.clone(),
        embeddings_fill: options.embeddings_fill,
    };
    let metadata = crate::store::band_array_metadata(&layout);
    let meta = |name: &str| {
        metadata
            .iter()
            .find(|(n, _)| *n == name)
            .expect("array")
            .1
            .clone()
    };
    let cells: Vec<(Cell, TileGeometry, Vec<&InputTile>)> = catalogue
        .geometry
        .iter()
        .filter(|(c, _)| grid.contains(**c))
        .map(|(c, g)| (*c, *g, catalogue.tiles_of_cell(*c).collect()))
        .collect();
    progress.set_length(cells.iter().map(|c| c.2.len() as u64).sum());
    let threads = if options.threads == 0 {
        rayon::current_num_threads()
    } else {
        options.threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| BuildError::Threads(threads, e.to_string()))?;
    let clock = PhaseClock::default();
    let (input, output, stored) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    pool.install(|| {
        cells.par_iter().for_each(|(cell, geometry, tiles)| {
            let w = CellWork {
                cell: *cell,
                geometry: *geometry,
                tiles: tiles.clone(),
                landmask: None,
            };
            let Ok((map, _)) = prepare_cell(grid, &w) else {
                return;
            };
            for tile in tiles {
                let t = Instant::now();
                let Ok((emb, scales)) = read_tile_data(tile) else {
                    continue;
                };
                PhaseClock::add(&clock.read, t);
                let (out, out_scales) = gather(&map, &emb, &scales, None, options.embeddings_fill);
                drop((emb, scales));
                let counter = std::sync::Arc::new(DiscardWrites::default());
                let store: crate::store::Storage = counter.clone();
                let emb_array = crate::store::array_from_metadata(
                    store.clone(),
                    "/b/embeddings",
                    &meta("embeddings"),
                )
                .expect("valid metadata");
                let scales_array =
                    crate::store::array_from_metadata(store.clone(), "/b/scales", &meta("scales"))
                        .expect("valid metadata");
                let (i, j) = grid.cell_shard(*cell);
                let codec = zarrs::array::CodecOptions::default()
                    .with_store_empty_chunks(true)
                    .with_concurrent_target(1);
                let t = Instant::now();
                let _ = emb_array.store_chunk_opt(
                    &[0, i as u64, j as u64, 0],
                    crate::store::raw_bytes(&out),
                    &codec,
                );
                let _ = scales_array.store_chunk_opt(
                    &[0, i as u64, j as u64],
                    out_scales.as_slice(),
                    &codec,
                );
                PhaseClock::add(&clock.encode_write, t);
                input.fetch_add(tile.bytes, Ordering::Relaxed);
                output.fetch_add((out.len() + out_scales.len() * 4) as u64, Ordering::Relaxed);
                stored.fetch_add(counter.bytes.load(Ordering::Relaxed), Ordering::Relaxed);
                progress.inc(1);
            }
        });
    });
    let t = clock.seconds();
    Ok(Ceiling {
        input_bytes: input.into_inner(),
        output_bytes: output.into_inner(),
        stored_bytes: stored.into_inner(),
        read_seconds: t.read,
        compress_seconds: t.encode_write,
        threads,
    })
}

/// A store that keeps nothing and counts the bytes written to it (for [`ceiling`]).
#[derive(Default)]
struct DiscardWrites {
    bytes: AtomicU64,
}

mod discard {
    use std::sync::atomic::Ordering;

    use zarrs::storage::{
        Bytes, ListableStorageTraits, MaybeBytesIterator, OffsetBytesIterator,
        ReadableStorageTraits, StorageError, StoreKey, StoreKeys, StoreKeysPrefixes, StorePrefix,
        WritableStorageTraits, byte_range::ByteRangeIterator,
    };

    use super::DiscardWrites;

    impl ReadableStorageTraits for DiscardWrites {
        fn get_partial_many<'a>(
            &'a self,
            _: &StoreKey,
            _: ByteRangeIterator<'a>,
        ) -> Result<MaybeBytesIterator<'a>, StorageError> {
            Ok(None)
        }
        fn size_key(&self, _: &StoreKey) -> Result<Option<u64>, StorageError> {
            Ok(None)
        }
        fn supports_get_partial(&self) -> bool {
            false
        }
    }

    impl WritableStorageTraits for DiscardWrites {
        fn set(&self, _: &StoreKey, value: Bytes) -> Result<(), StorageError> {
            self.bytes.fetch_add(value.len() as u64, Ordering::Relaxed);
            Ok(())
        }
        fn set_partial_many(
            &self,
            _: &StoreKey,
            values: OffsetBytesIterator,
        ) -> Result<(), StorageError> {
            for (_, v) in values {
                self.bytes.fetch_add(v.len() as u64, Ordering::Relaxed);
            }
            Ok(())
        }
        fn erase(&self, _: &StoreKey) -> Result<(), StorageError> {
            Ok(())
        }
        fn erase_prefix(&self, _: &StorePrefix) -> Result<(), StorageError> {
            Ok(())
        }
        fn supports_set_partial(&self) -> bool {
            false
        }
    }

    impl ListableStorageTraits for DiscardWrites {
        fn list(&self) -> Result<StoreKeys, StorageError> {
            Ok(vec![])
        }
        fn list_prefix(&self, _: &StorePrefix) -> Result<StoreKeys, StorageError> {
            Ok(vec![])
        }
        fn list_dir(&self, _: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
            Ok(StoreKeysPrefixes::new(vec![], vec![]))
        }
        fn size_prefix(&self, _: &StorePrefix) -> Result<u64, StorageError> {
            Ok(0)
        }
    }
}
