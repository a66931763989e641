//! Distributed and incremental builds: N worker processes together equal one process; adding a
//! year or late tiles writes only the new shards; `mosaic status` counts built, failed, missing.

mod common;

use common::{
    Mosaic, Scratch, assert_same_snapshots, build, scratch_dir, snapshot, stderr, synth,
    words_after,
};

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Assert two stores hold the same files, leaving out the per-worker failure records.
fn assert_same(a: &Path, b: &Path) {
    let zarr_files = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        snapshot(dir)
            .into_iter()
            .filter(|(k, _)| !k.starts_with("_mosaic/failures"))
            .collect()
    };
    assert_same_snapshots(&zarr_files(a), &zarr_files(b));
}

const CELLS: &str = "grid_-99.95_80.05,grid_-99.85_80.05,grid_-99.75_80.05,grid_-99.65_80.05,grid_-99.95_80.15,grid_-99.85_80.15";

/// A scratch folder with CELLS of 2024 in `in` and band 80-90 built from it by one process
/// into `one.zarr`.
fn built_by_one_process(tag: &str) -> (Scratch, PathBuf) {
    let d = scratch_dir(tag);
    let input = d.join("in");
    synth(&input, CELLS, "2024").ok();
    build(&input, d.join("one.zarr"), "80-90").ok();
    (d, input)
}

#[test]
fn three_worker_processes_equal_one_process() {
    let (d, input) = built_by_one_process("workers");
    let store = d.join("three.zarr");
    let children: Vec<_> = (1..=3)
        .map(|i| {
            build(&input, &store, "80-90")
                .args(["--threads", "1", "--worker", &format!("{i}/3")])
                .command()
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut written = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let n: usize = words_after(&text, "80-90: ")
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(n < 6, "each worker builds a share, not the band: {text}");
        written += n;
    }
    assert_eq!(written, 6, "the shares are disjoint and cover the band");
    // The steps that need the whole band (coarse overview levels, the year's colours) are
    // `finalize`'s after a worker split; then the store is the one-process store, byte for byte.
    Mosaic::new(["finalize", "--store"]).arg(&store).ok();
    assert_same(&d.join("one.zarr"), &store);
    for i in 1..=3 {
        assert!(
            store
                .join(format!("_mosaic/failures/80-90/worker-{i}-of-3.json"))
                .exists()
        );
    }
    build(&input, &store, "80-90")
        .args(["--worker", "4/3"])
        .fails(2, "need 1 <= I <= N");
}

#[test]
fn worker_shares_are_disjoint_and_together_the_band() {
    let (d, input) = built_by_one_process("worker-shares");
    // The same shares one after another, each into its own store: no "already present" skip
    // can hide an overlap. The shard sets are pairwise disjoint and together are the
    // one-process store's, byte for byte; every other file is the same in each.
    let one = snapshot(&d.join("one.zarr"));
    let is_shard =
        |k: &str| k.starts_with("80-90/embeddings/c/") || k.starts_with("80-90/scales/c/");
    let mut union: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut sharing = 0;
    for i in 1..=3 {
        let share = d.join(format!("share-{i}.zarr"));
        build(&input, &share, "80-90")
            .args(["--worker", &format!("{i}/3")])
            .ok();
        let files = snapshot(&share);
        let shards: Vec<&String> = files.keys().filter(|k| is_shard(k)).collect();
        sharing += usize::from(!shards.is_empty());
        for (k, v) in &files {
            if is_shard(k) {
                assert!(
                    union.insert(k.clone(), v.clone()).is_none(),
                    "{k} written by worker {i}/3 and by an earlier worker"
                );
            } else if !k.starts_with("_mosaic") {
                assert!(one.get(k) == Some(v), "{k} of worker {i}/3 differs");
            }
        }
    }
    let one_shards: BTreeMap<String, Vec<u8>> =
        one.into_iter().filter(|(k, _)| is_shard(k)).collect();
    assert_eq!(one_shards.len(), 2 * 6);
    assert!(
        sharing >= 2,
        "only {sharing} worker wrote shards: nothing to overlap"
    );
    assert_same_snapshots(&one_shards, &union);
}

#[test]
fn adding_a_year_and_late_tiles_writes_only_new_shards() {
    let d = scratch_dir("incremental");
    let input = d.join("in");
    let store = d.join("store.zarr");
    let early = "grid_-99.95_80.05,grid_-99.85_80.05";
    synth(&input, early, "2023").ok();
    build(&input, &store, "80-90").ok();
    let shard = store.join("80-90/embeddings/c/0/0/800/0");
    let before = std::fs::metadata(&shard).unwrap();

    // A new year, and a tile of 2023 that appears late.
    synth(&input, early, "2024").ok();
    synth(&input, "grid_-99.75_80.05", "2023").ok();
    let status = common::status(&store).arg("--input").arg(&input).ok();
    assert!(
        status.contains("80-90        2023        2        0        1"),
        "{status}"
    );
    let text = build(&input, &store, "80-90").ok();
    assert!(
        text.contains("3 tiles written, 2 already present"),
        "{text}"
    );
    let after = std::fs::metadata(&shard).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec()),
        "existing shard not rewritten"
    );

    // The year axis grew; the result equals a build from scratch.
    let reference = d.join("ref.zarr");
    build(&input, &reference, "80-90").ok();
    assert_same(&reference, &store);
    let status: serde_json::Value = serde_json::from_str(
        &common::status(&store)
            .arg("--input")
            .arg(&input)
            .arg("--json")
            .ok(),
    )
    .unwrap();
    let years = &status[0]["years"];
    assert_eq!(
        years[0],
        serde_json::json!({"year": 2023, "built": 3, "failed": 0, "missing": 0})
    );
    assert_eq!(
        years[1],
        serde_json::json!({"year": 2024, "built": 2, "failed": 0, "missing": 0})
    );

    // A year before the first one cannot be added.
    synth(&input, early, "2022").ok();
    build(&input, &store, "80-90").fails(2, "before the store's first year 2023");
}

#[test]
fn a_store_refuses_a_bands_toml_that_differs_from_its_own() {
    let d = scratch_dir("refuse-bands");
    let input = d.join("in");
    let store = d.join("store.zarr");
    synth(&input, "grid_-99.95_80.05", "2024").ok();
    build(&input, &store, "80-90").ok();
    let before = snapshot(&store);
    // Add a tile, so that a build that did not refuse would write something.
    synth(&input, "grid_-99.85_80.05", "2024").ok();
    let default =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/bands.toml")).unwrap();
    for (what, from, to, store_says, config_says) in [
        (
            "grid",
            "rows_per_cell = 1170",
            "rows_per_cell = 1287",
            "rows_per_cell: 1170",
            "rows_per_cell: 1287",
        ),
        ("codec", "level = 3", "level = 1", "level: 3", "level: 1"),
        (
            "fill",
            "embeddings_fill = 0",
            "embeddings_fill = 1",
            "fill 0",
            "and 1",
        ),
    ] {
        assert!(default.contains(from), "{from}");
        let path = d.join(format!("bands-{what}.toml"));
        std::fs::write(&path, default.replace(from, to)).unwrap();
        let out = build(&input, &store, "80-90")
            .arg("--bands")
            .arg(&path)
            .run();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains(store_says) && err.contains(config_says),
            "{what}: the message names both settings: {err}"
        );
        let after = snapshot(&store);
        assert_same_snapshots(&before, &after);
    }
}
