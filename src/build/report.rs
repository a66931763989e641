//! What a build reports: counts, failed tiles with their reasons, where the thread time went,
//! and the failure record kept in the store for `status` and the next run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::input::TileProblem;
use crate::zarr::failures_key;

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
    /// Seconds spent after the tiles on the steps that need the whole band (the coarse overview
    /// levels and the colour bases); included in `seconds`.
    #[serde(default)]
    pub finalize_seconds: f64,
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
pub(crate) struct PhaseClock {
    pub(crate) read: AtomicU64,
    pub(crate) transform: AtomicU64,
    pub(crate) gather: AtomicU64,
    pub(crate) encode_write: AtomicU64,
}

impl PhaseClock {
    pub(crate) fn add(counter: &AtomicU64, since: Instant) -> Instant {
        let now = Instant::now();
        counter.fetch_add((now - since).as_nanos() as u64, Ordering::Relaxed);
        now
    }

    pub(crate) fn seconds(&self) -> PhaseSeconds {
        let s = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e9;
        PhaseSeconds {
            read: s(&self.read),
            transform: s(&self.transform),
            gather: s(&self.gather),
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
        failures_key(&self.band, self.worker.as_deref())
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
