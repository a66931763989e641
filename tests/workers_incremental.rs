//! Distributed and incremental builds: N worker processes together equal one process; adding a
//! year or late tiles writes only the new shards; `mosaic status` counts built, failed, missing.

mod common;

use common::{assert_same_snapshots, mosaic, s, scratch_dir, snapshot};

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Assert two stores hold the same files, leaving out the per-worker failure records.
fn assert_same(a: &Path, b: &Path) {
    let zarr_files = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        snapshot(dir)
            .into_iter()
            .filter(|(k, _)| !k.starts_with("_mosaic"))
            .collect()
    };
    assert_same_snapshots(&zarr_files(a), &zarr_files(b));
}

const CELLS: &str = "grid_-99.95_80.05,grid_-99.85_80.05,grid_-99.75_80.05,grid_-99.65_80.05,grid_-99.95_80.15,grid_-99.85_80.15";

#[test]
fn three_worker_processes_equal_one_process() {
    let d = scratch_dir("workers");
    let input = d.join("in");
    ok(mosaic(&[
        "synth",
        "--out",
        s(&input),
        "--tiles",
        CELLS,
        "--years",
        "2024",
    ]));
    ok(mosaic(&[
        "build",
        "--input",
        s(&input),
        "--out",
        s(&d.join("one.zarr")),
        "--band",
        "80-90",
    ]));
    let store = d.join("three.zarr");
    let children: Vec<_> = (1..=3)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_mosaic"))
                .args([
                    "build",
                    "--input",
                    s(&input),
                    "--out",
                    s(&store),
                    "--band",
                    "80-90",
                    "--threads",
                    "1",
                    "--worker",
                    &format!("{i}/3"),
                ])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
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
        let n: usize = text
            .split("80-90: ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(n < 6, "each worker builds a share, not the band: {text}");
        written += n;
    }
    assert_eq!(written, 6, "the shares are disjoint and cover the band");
    assert_same(&d.join("one.zarr"), &store);
    for i in 1..=3 {
        assert!(
            store
                .join(format!("_mosaic/failures/80-90/worker-{i}-of-3.json"))
                .exists()
        );
    }
    let bad = mosaic(&[
        "build",
        "--input",
        s(&input),
        "--out",
        s(&store),
        "--band",
        "80-90",
        "--worker",
        "4/3",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("need 1 <= I <= N"));
}

#[test]
fn adding_a_year_and_late_tiles_writes_only_new_shards() {
    let d = scratch_dir("incremental");
    let input = d.join("in");
    let store = d.join("store.zarr");
    let early = "grid_-99.95_80.05,grid_-99.85_80.05";
    ok(mosaic(&[
        "synth",
        "--out",
        s(&input),
        "--tiles",
        early,
        "--years",
        "2023",
    ]));
    ok(mosaic(&[
        "build",
        "--input",
        s(&input),
        "--out",
        s(&store),
        "--band",
        "80-90",
    ]));
    let shard = store.join("80-90/embeddings/c/0/0/800/0");
    let before = std::fs::metadata(&shard).unwrap();

    // A new year, and a tile of 2023 that appears late.
    ok(mosaic(&[
        "synth",
        "--out",
        s(&input),
        "--tiles",
        early,
        "--years",
        "2024",
    ]));
    ok(mosaic(&[
        "synth",
        "--out",
        s(&input),
        "--tiles",
        "grid_-99.75_80.05",
        "--years",
        "2023",
    ]));
    let status = ok(mosaic(&[
        "status",
        "--store",
        s(&store),
        "--input",
        s(&input),
    ]));
    assert!(
        status.contains("80-90        2023        2        0        1"),
        "{status}"
    );
    let text = ok(mosaic(&[
        "build",
        "--input",
        s(&input),
        "--out",
        s(&store),
        "--band",
        "80-90",
    ]));
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
    ok(mosaic(&[
        "build",
        "--input",
        s(&input),
        "--out",
        s(&reference),
        "--band",
        "80-90",
    ]));
    assert_same(&reference, &store);
    let status: serde_json::Value = serde_json::from_str(&ok(mosaic(&[
        "status",
        "--store",
        s(&store),
        "--input",
        s(&input),
        "--json",
    ])))
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
    ok(mosaic(&[
        "synth",
        "--out",
        s(&input),
        "--tiles",
        early,
        "--years",
        "2022",
    ]));
    let out = mosaic(&[
        "build",
        "--input",
        s(&input),
        "--out",
        s(&store),
        "--band",
        "80-90",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("before the store's first year 2023"));
}
