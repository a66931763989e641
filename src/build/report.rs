//! What a build reports: counts, failed tiles with their reasons, where the thread time went,
//! and the failure record kept in the store for `status` and the next run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::input::TileProblem;
use crate::store::is_temporary_key;
use crate::zarr::{FormatError, MosaicStore, failures_key, failures_prefix};

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
    /// Tiles whose scales were all NaN in a source where that means no data (the zone store's
    /// sea): not written, not failed.
    #[serde(default)]
    pub no_data: Vec<NoDataTile>,
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

/// A tile skipped as no data (see [`BuildReport::no_data`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoDataTile {
    /// Year.
    pub year: u16,
    /// Tile (cell) name.
    pub tile: String,
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
}

/// What a build (one band, one worker share) could not write, kept in the store at
/// `_mosaic/failures/{band}/{all|worker-I-of-N}.json` for `status` and the next run:
/// deterministic (no timings), empty when all went well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    /// Band name.
    pub band: String,
    /// Worker share (`I/N`), if any.
    pub worker: Option<String>,
    /// Tiles that failed.
    pub failed: Vec<FailedTile>,
    /// Tiles skipped as no data, so that `status` does not count them missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_data: Vec<NoDataTile>,
    /// Problems found while scanning the input.
    pub input_problems: Vec<TileProblem>,
}

impl FailureRecord {
    /// The record of a build.
    pub fn of(report: &BuildReport) -> FailureRecord {
        FailureRecord {
            band: report.band.clone(),
            worker: report.worker.clone(),
            failed: report.failed.clone(),
            no_data: report.no_data.clone(),
            input_problems: report.input_problems.clone(),
        }
    }

    /// Its store key.
    pub fn key(&self) -> String {
        failures_key(&self.band, self.worker.as_deref())
    }

    /// Write it to the store (replacing this build's previous record).
    pub fn write(&self, store: &MosaicStore) -> Result<(), FormatError> {
        let value = serde_json::to_value(self).expect("a record serialises");
        Ok(store.store.put_json(&self.key(), &value)?)
    }

    /// Every record of a band (all workers), in key order. A record that cannot be read as
    /// one is an error naming its key: a malformed record never counts as "no failures".
    pub fn read_band(store: &MosaicStore, band: &str) -> Result<Vec<FailureRecord>, FormatError> {
        let mut records = Vec::new();
        for key in store.store.list_prefix(&failures_prefix(band))? {
            if is_temporary_key(&key) {
                continue; // a killed writer's, not a record
            }
            let Some(value) = store.store.get_json(&key)? else {
                continue;
            };
            let record = serde_json::from_value(value)
                .map_err(|source| FormatError::Record { key, source })?;
            records.push(record);
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (MosaicStore, std::path::PathBuf) {
        let root = std::env::temp_dir().join(format!("mosaic-records-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        (MosaicStore::open(root.to_str().unwrap()).unwrap(), root)
    }

    #[test]
    fn failure_records_round_trip_and_a_malformed_one_is_an_error() {
        let (store, root) = store();
        let report = BuildReport {
            band: "70-80".into(),
            worker: Some("2/3".into()),
            failed: vec![FailedTile {
                year: 2024,
                tile: "grid_10.05_70.05".into(),
                path: "tiles/2024/grid_10.05_70.05/grid_10.05_70.05.npy".into(),
                reason: "truncated".into(),
            }],
            input_problems: vec![TileProblem::new("tiles/x.npy".as_ref(), "not a tile")],
            ..Default::default()
        };
        let record = FailureRecord::of(&report);
        record.write(&store).unwrap();
        assert_eq!(
            record.key(),
            "_mosaic/failures/70-80/worker-2-of-3.json",
            "the key status lists"
        );
        assert_eq!(FailureRecord::read_band(&store, "70-80").unwrap(), [record]);
        // A record whose `failed` is not a list of tiles: an error naming the key, never
        // "no failures".
        let bad = serde_json::json!({"band": "70-80", "worker": null, "failed": "oops", "input_problems": []});
        store
            .store
            .put_json("_mosaic/failures/70-80/all.json", &bad)
            .unwrap();
        let e = FailureRecord::read_band(&store, "70-80").unwrap_err();
        assert!(
            e.to_string().contains("_mosaic/failures/70-80/all.json"),
            "{e}"
        );
        std::fs::remove_dir_all(root).unwrap();
    }
}
