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
    /// Placement maps: the coordinate transform (PROJ) of each cell.
    pub transform: f64,
    /// Copying source pixels into the output shards (and checking scales).
    pub gather: f64,
    /// Encoding (compressing) and writing shards.
    pub encode_write: f64,
}

/// Thread-nanoseconds per phase, summed across threads.
#[derive(Default)]
struct PhaseClock {
    read: AtomicU64,
    transform: AtomicU64,
    gather: AtomicU64,
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
            transform: s(&self.transform),
            gather: s(&self.gather),
            encode_write: s(&self.encode_write),
        }
    }
}

/// Store prefix of a band's failure records (one per build or worker).
pub fn failures_prefix(band: &str) -> String {
    format!("_mosaic/failures/{band}/")
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
        format!("{}{who}.json", failures_prefix(&self.band))
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

/// Remove temporary objects left in a band by killed builds: keys `*.tmp.{pid}.{n}.{host}`
/// written on this machine by a process that no longer runs. Temporaries of other machines
/// sharing the folder are left alone. Only local stores write temporaries.
pub fn remove_stale_temporaries(store: &Store, band: &str) -> Result<usize, StoreError> {
    let mut removed = 0;
    let this_host = crate::store::host_tag();
    for key in store.list_prefix(&format!("{band}/"))? {
        let Some((pid, host)) = key.rsplit('/').next().and_then(temporary_key_owner) else {
            continue;
        };
        if host.is_some_and(|h| h != this_host) {
            continue;
        }
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        if !alive && Path::new("/proc/self").exists() {
            store.erase(&key)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The process id and host tag in a temporary object name `name.tmp.{pid}.{n}[.{host}]`.
fn temporary_key_owner(name: &str) -> Option<(u32, Option<String>)> {
    let (_, rest) = name.rsplit_once(".tmp.")?;
    let mut parts = rest.split('.');
    let pid = parts.next()?.parse().ok()?;
    let host = parts.nth(1).map(str::to_string);
    Some((pid, host))
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
    let (threads, pool) = thread_pool(options.threads)?;
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
            PhaseClock::add(&clock.transform, t);
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

thread_local! {
    /// The projections this thread has created, by zone: creating one (a PROJ context and
    /// its database) costs more than placing a whole cell with it.
    static PROJECTIONS: std::cell::RefCell<std::collections::HashMap<UtmZone, std::rc::Rc<UtmProjection>>> =
        std::cell::RefCell::default();
}

/// This thread's projection for a zone, created on first use.
fn projection(zone: UtmZone) -> Result<std::rc::Rc<UtmProjection>, crate::geometry::GeometryError> {
    if let Some(p) = PROJECTIONS.with_borrow(|m| m.get(&zone).cloned()) {
        return Ok(p);
    }
    let p = std::rc::Rc::new(UtmProjection::new(zone)?);
    PROJECTIONS.with_borrow_mut(|m| m.insert(zone, p.clone()));
    Ok(p)
}

/// The placement map and the landmask (if any) of a cell.
fn prepare_cell(grid: &BandGrid, w: &CellWork) -> Result<(PlacementMap, Option<Vec<u8>>), Failure> {
    let proj = projection(UtmZone::for_cell(w.cell)).map_err(|e| (None, e.to_string()))?;
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

/// Buffers of tile size that a thread reuses from tile to tile: fresh 50-160 MB allocations
/// per tile cost a page fault per 4 KiB page (about a tenth of the build time).
#[derive(Default)]
struct TileBuffers {
    /// The tile's embeddings as read.
    input: Vec<u8>,
    /// The gathered embeddings shard.
    output: Vec<u8>,
}

thread_local! {
    static TILE_BUFFERS: std::cell::Cell<TileBuffers> = std::cell::Cell::default();
}

/// Run `f` with this thread's tile buffers. They are taken out while `f` runs, so a task that
/// rayon nests on the same thread gets fresh buffers instead of a conflict.
fn with_tile_buffers<T>(f: impl FnOnce(&mut TileBuffers) -> T) -> T {
    let mut buffers = TILE_BUFFERS.take();
    let result = f(&mut buffers);
    TILE_BUFFERS.set(buffers);
    result
}

/// Read one tile's embeddings into `emb` (header re-checked against the catalogue) and return
/// its scales as f32.
fn read_tile_data(tile: &InputTile, emb: &mut Vec<u8>) -> Result<Vec<f32>, Failure> {
    let (h, w) = (tile.height, tile.width);
    let eh = npy::read_npy_into(&tile.embeddings, emb)
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
    Ok(scales)
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
    with_tile_buffers(|buffers| write_tile_with(arrays, tile, map, landmask, fill, clock, buffers))
}

fn write_tile_with(
    arrays: &BandArrays,
    tile: &InputTile,
    map: &PlacementMap,
    landmask: Option<&[u8]>,
    fill: i8,
    clock: &PhaseClock,
    buffers: &mut TileBuffers,
) -> Result<u64, Failure> {
    let t = Instant::now();
    let emb = &mut buffers.input;
    let scales = read_tile_data(tile, emb)?;
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
    let out_emb = &mut buffers.output;
    let out_scales = gather_into(map, emb, &scales, landmask, fill, out_emb);
    drop(scales);
    let t = PhaseClock::add(&clock.gather, t);
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
        .store_chunk_opt(&idx, crate::store::raw_bytes(out_emb), &options)
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
    let mut out_emb = Vec::new();
    let out_scales = gather_into(map, embeddings, scales, landmask, fill, &mut out_emb);
    (out_emb, out_scales)
}

/// [`gather`] into a reused embeddings buffer (cleared first); returns the scales.
pub fn gather_into(
    map: &PlacementMap,
    embeddings: &[u8],
    scales: &[f32],
    landmask: Option<&[u8]>,
    fill: i8,
    out_emb: &mut Vec<u8>,
) -> Vec<f32> {
    let n = map.source.len();
    let fill_vector = [fill as u8; CHANNELS];
    out_emb.clear();
    out_emb.reserve_exact(n * CHANNELS);
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
    out_scales
}

/// The number of worker threads (`0`: all cores) and a rayon pool of that size.
fn thread_pool(threads: usize) -> Result<(usize, rayon::ThreadPool), BuildError> {
    let threads = if threads == 0 {
        rayon::current_num_threads()
    } else {
        threads
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| BuildError::Threads(threads, e.to_string()))?;
    Ok((threads, pool))
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
    /// Thread-seconds decompressing the embeddings shards again (what a reader pays).
    pub decompress_seconds: f64,
    /// Threads used.
    pub threads: usize,
}

impl Ceiling {
    /// Output MB/s of embeddings one thread decompresses.
    pub fn decode_mb_per_s(&self) -> f64 {
        self.output_bytes as f64 / 1e6 / self.decompress_seconds.max(1e-9)
    }

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
    // The band's two arrays over a store that is never written: only their codec chains run.
    let metadata = crate::store::band_array_metadata(&layout);
    let arrays = ["embeddings", "scales"].map(|name| {
        let store: crate::store::Storage =
            std::sync::Arc::new(zarrs::storage::store::MemoryStore::new());
        let meta = &metadata.iter().find(|(n, _)| *n == name).expect("array").1;
        crate::store::array_from_metadata(store, &format!("/b/{name}"), meta)
            .expect("valid metadata")
    });
    let codec = zarrs::array::CodecOptions::default()
        .with_store_empty_chunks(true)
        .with_concurrent_target(1);
    // The shard codec chain itself, as `store_chunk` runs it, with no store.
    use zarrs::array::ArrayToBytesCodecTraits;
    let encode = |array: &zarrs::array::Array<_>, shard: &[u64], bytes: &[u8]| {
        let shape = array.chunk_shape(shard).expect("shard in grid");
        array
            .codecs()
            .encode(
                crate::store::raw_bytes(bytes),
                &shape,
                array.data_type(),
                array.fill_value(),
                &codec,
            )
            .map(|encoded| (encoded.into_owned(), shape))
    };
    let cells: Vec<(Cell, TileGeometry, Vec<&InputTile>)> = catalogue
        .geometry
        .iter()
        .filter(|(c, _)| grid.contains(**c))
        .map(|(c, g)| (*c, *g, catalogue.tiles_of_cell(*c).collect()))
        .collect();
    progress.set_length(cells.iter().map(|c| c.2.len() as u64).sum());
    let (threads, pool) = thread_pool(options.threads)?;
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
            let (i, j) = grid.cell_shard(*cell);
            let emb_shard = [0, i as u64, j as u64, 0];
            for tile in tiles {
                with_tile_buffers(|buffers| {
                    let t = Instant::now();
                    let Ok(scales) = read_tile_data(tile, &mut buffers.input) else {
                        return;
                    };
                    PhaseClock::add(&clock.read, t);
                    let out_scales = gather_into(
                        &map,
                        &buffers.input,
                        &scales,
                        None,
                        options.embeddings_fill,
                        &mut buffers.output,
                    );
                    let out = &buffers.output;
                    let scales_bytes: Vec<u8> =
                        out_scales.iter().flat_map(|v| v.to_le_bytes()).collect();
                    let t = Instant::now();
                    let Ok((encoded, shape)) = encode(&arrays[0], &emb_shard, out) else {
                        return;
                    };
                    let scales_len = encode(&arrays[1], &emb_shard[..3], &scales_bytes)
                        .map_or(0, |(e, _)| e.len());
                    PhaseClock::add(&clock.encode_write, t);
                    stored.fetch_add((encoded.len() + scales_len) as u64, Ordering::Relaxed);
                    // Decoding the embeddings again, as a reader does (kept in the gather slot).
                    let t = Instant::now();
                    let decoded = arrays[0].codecs().decode(
                        encoded.into(),
                        &shape,
                        arrays[0].data_type(),
                        arrays[0].fill_value(),
                        &codec,
                    );
                    PhaseClock::add(&clock.gather, t);
                    debug_assert!(decoded.is_ok());
                    input.fetch_add(tile.bytes, Ordering::Relaxed);
                    output.fetch_add((out.len() + out_scales.len() * 4) as u64, Ordering::Relaxed);
                    progress.inc(1);
                });
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
        decompress_seconds: t.gather,
        threads,
    })
}
