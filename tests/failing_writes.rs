//! A write that fails (disk full) is reported, leaves no shard that counts as done, and a rerun
//! completes the band to the same bytes as an undisturbed build. Two builds of one band running
//! at the same time share the work safely.

mod common;

use common::{
    Scratch, assert_same_files, build, build_concurrently, ok, s, scratch_dir, stdout, synth,
    verify,
};

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tessera_mosaic::build::{BuildOptions, build_band};
use tessera_mosaic::grid::{BandGrid, BandsConfig};
use tessera_mosaic::input::{LocalTree, ScanOptions, TileSource};
use tessera_mosaic::store::{AtomicFilesystemStore, Intercept, Store};
use tessera_mosaic::zarr::{MosaicStore, is_data_shard_key};
use zarrs::storage::{StorageError, WritableStorageTraits};

/// A filesystem store whose disk "fills up": after `ok_shards` shard writes, each shard write
/// leaves half its bytes in a temporary file and fails with ENOSPC.
fn disk_full(root: &Path, ok_shards: usize) -> Store {
    let local = Store {
        storage: Arc::new(AtomicFilesystemStore::new(root).unwrap()),
        location: s(root).to_string(),
    };
    let shards = AtomicUsize::new(0);
    let location = local.location.clone();
    let root = root.to_path_buf();
    Intercept::new(&local)
        .on_write(move |key, value, inner| {
            if is_data_shard_key(key.as_str()) {
                let n = shards.fetch_add(1, Ordering::SeqCst);
                if n >= ok_shards {
                    // As a writer killed mid-write would leave it (a pid that cannot be alive).
                    let tmp = root.join(format!("{}.tmp.4194305.1", key.as_str()));
                    std::fs::create_dir_all(tmp.parent().unwrap()).unwrap();
                    std::fs::write(&tmp, &value[..value.len() / 2]).unwrap();
                    return Err(StorageError::IOError(
                        std::io::Error::from_raw_os_error(28).into(),
                    ));
                }
            }
            inner.set(key, value)
        })
        .into_store(&location)
}

fn setup(tag: &str) -> Scratch {
    let d = scratch_dir(tag);
    let tiles = "grid_-99.95_80.05,grid_-99.85_80.05,grid_-99.75_80.05";
    synth(d.join("in"), tiles, "2023,2024").ok();
    build(d.join("in"), d.join("ref.zarr"), "80-90").ok();
    d
}

#[test]
fn a_full_disk_is_reported_and_a_rerun_completes_the_band() {
    let d = setup("diskfull");
    let config = BandsConfig::default();
    let grid = BandGrid::for_band(config.band("80-90").unwrap(), &config).unwrap();
    let source = LocalTree::new(&d.join("in"));
    let catalogue = source.catalogue(&ScanOptions::default()).unwrap();
    let path = d.join("store.zarr");
    let store = MosaicStore {
        store: disk_full(&path, 5),
    };
    let options = BuildOptions {
        threads: 1,
        worker: None,
        compression: config.compression.clone(),
        embeddings_fill: 0,
        overviews: true,
    };
    let report = build_band(
        &source,
        &catalogue,
        &store,
        &grid,
        &options,
        &indicatif::ProgressBar::hidden(),
    )
    .unwrap();
    // 6 tiles = 12 shard writes; the first 5 succeed (in the background writers' order):
    // at most 2 tiles complete, every other tile is reported failed.
    let written = report.tiles_written;
    assert!((1..=2).contains(&written), "{report:?}");
    assert_eq!(report.failed.len() + written, 6);
    assert!(
        report
            .failed
            .iter()
            .all(|f| f.reason.contains("writing the shard failed")
                && f.reason.contains("No space left")),
        "{:?}",
        report.failed
    );

    // Half-written files are only temporaries; verify sees the rest missing, none corrupt.
    let out = verify(d.join("in"), &path, "80-90")
        .args(["--sample", "100"])
        .run();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text.contains(&format!("{written} tiles,"))
            && text.contains("0 mismatches")
            && text.contains(&format!("{} tiles missing", 6 - written))
            && text.contains("0 unreadable"),
        "{text}"
    );

    // A temporary of another machine sharing the folder (a pid that is dead here) is not this
    // machine's to judge: the rerun leaves it, and removes this machine's stale ones.
    let foreign = path.join("80-90/embeddings/c/0.tmp.4194305.9.00000000");
    std::fs::write(&foreign, b"in flight on another machine").unwrap();

    // With space again, a rerun completes the band: identical to the undisturbed build.
    let out = build(d.join("in"), &path, "80-90").ok();
    let summary = format!("{} tiles written, {written} already present", 6 - written);
    assert!(out.contains(&summary));
    assert!(foreign.exists());
    std::fs::remove_file(&foreign).unwrap();
    assert_same_files(&path, &d.join("ref.zarr"));
}

#[test]
fn two_processes_building_one_band_share_it_safely() {
    let d = setup("concurrent");
    let store = d.join("shared.zarr");
    let one = build(d.join("in"), &store, "80-90").args(["--threads", "1"]);
    let outs = build_concurrently(&[one.clone(), one]);
    for out in &outs {
        ok(out);
    }
    assert_same_files(&store, &d.join("ref.zarr"));
}
