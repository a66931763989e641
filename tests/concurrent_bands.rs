//! Builds of different bands into one store at the same moment: each band is whole, and the
//! root's consolidated metadata converges to list every band, whoever writes it last.

mod common;

use common::{
    Mosaic, assert_same_files, build, build_concurrently, copy_dir, ok, read_json, s, scratch_dir,
    synth,
};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tessera_mosaic::grid::{BandGrid, BandsConfig};
use tessera_mosaic::store::{AtomicFilesystemStore, Intercept, Store};
use tessera_mosaic::zarr::MosaicStore;
use zarrs::storage::WritableStorageTraits;

/// One tile at 79.95N (band 70-80) and one at 80.05N (band 80-90), two years.
fn input(d: &Path) -> PathBuf {
    let root = d.join("in");
    synth(&root, "grid_-99.95_79.95,grid_-99.95_80.05", "2023,2024").ok();
    root
}

fn root_bands(store: &Path) -> Vec<String> {
    let root = read_json(store.join("zarr.json"));
    serde_json::from_value(root["attributes"]["tessera_mosaic_bands"].clone()).unwrap()
}

#[test]
fn two_processes_building_different_bands_leave_both_in_the_root() {
    let d = scratch_dir("concurrent-bands");
    let root = input(&d);
    let reference = d.join("reference.zarr");
    for band in ["70-80", "80-90"] {
        build(&root, &reference, band).ok();
    }
    let store = d.join("store.zarr");
    let builds = ["70-80", "80-90"].map(|band| build(&root, &store, band));
    for out in build_concurrently(&builds) {
        ok(&out);
    }
    assert_eq!(root_bands(&store), ["70-80", "80-90"]);
    // Each band, and the root, are what sequential builds give.
    assert_same_files(&reference, &store);
}

#[test]
fn the_root_converges_when_another_band_appears_during_its_write() {
    let d = scratch_dir("root-converges");
    let root = input(&d);
    let other = d.join("other.zarr");
    build(&root, &other, "80-90").ok();

    let path = d.join("store.zarr");
    // Another band's group appears (copied from `other`) at the moment this process writes
    // the root: the other build finished between this one's listing and its write.
    let local = Store {
        storage: Arc::new(AtomicFilesystemStore::new(&path).unwrap()),
        location: s(&path).to_string(),
    };
    let done = AtomicBool::new(false);
    let (from, to) = (other.join("80-90"), path.join("80-90"));
    let store = MosaicStore {
        store: Intercept::new(&local)
            .on_write(move |key, value, inner| {
                if key.as_str() == "zarr.json" && !done.swap(true, Ordering::SeqCst) {
                    copy_dir(&from, &to);
                }
                inner.set(key, value)
            })
            .into_store(s(&path)),
    };
    let config = BandsConfig::default();
    let grid = BandGrid::for_band(config.band("70-80").unwrap(), &config).unwrap();
    store
        .create_or_update_band(
            &grid,
            &[2023, 2024],
            &config.compression,
            0,
            "test",
            false,
            false,
        )
        .unwrap();
    assert_eq!(root_bands(&path), ["70-80", "80-90"]);
    let root = read_json(path.join("zarr.json"));
    let consolidated = &root["consolidated_metadata"]["metadata"];
    assert!(consolidated.get("80-90/embeddings").is_some());

    // `mosaic finalize` is idempotent: it rewrites the same root.
    let before = std::fs::read(path.join("zarr.json")).unwrap();
    let out = Mosaic::new(["finalize", "--store"]).arg(&path).ok();
    assert!(out.contains("2 bands: 70-80, 80-90"));
    assert_eq!(std::fs::read(path.join("zarr.json")).unwrap(), before);
}
