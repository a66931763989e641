//! Builds that are killed and resumed, and builds with different thread counts, all end with
//! byte-identical stores.

mod common;

use common::{Mosaic, assert_same_snapshots, snapshot, synth};

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const TILES: &str = "grid_-99.95_80.05,grid_-99.85_80.05,grid_-99.95_80.15,grid_168.35_80.05";

fn workdir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("build-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        synth(d.join("in"), TILES, "2023,2024")
            .args(["--landmasks", "--land-fraction", "0.8"])
            .ok();
        d
    })
}

/// `mosaic build` of band 80-90 from the shared input into `store`.
fn build_into(store: &Path) -> Mosaic {
    common::build(workdir().join("in"), store, "80-90")
}

fn build(store: &Path, threads: usize) {
    build_into(store)
        .args(["--threads", &threads.to_string()])
        .ok();
}

fn assert_same(a: &Path, b: &Path) {
    let (sa, sb) = (snapshot(a), snapshot(b));
    assert_same_snapshots(&sa, &sb);
    let shards = sa
        .keys()
        .filter(|k| k.starts_with("80-90/embeddings/c/") || k.starts_with("80-90/scales/c/"))
        .count();
    assert_eq!(shards, 2 * 8, "8 tiles, two shards each");
}

/// Completed scales shards (names only; the build renames files while we look).
fn shard_count(store: &Path) -> usize {
    fn walk(dir: &Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| {
                let p = e.path();
                if p.is_dir() {
                    walk(&p)
                } else {
                    usize::from(!p.to_string_lossy().contains(".tmp."))
                }
            })
            .sum()
    }
    walk(&store.join("80-90/scales/c"))
}

#[test]
fn thread_counts_and_reruns_give_identical_stores() {
    let d = workdir();
    build(&d.join("t1.zarr"), 1);
    build(&d.join("t2.zarr"), 2);
    build(&d.join("t8.zarr"), 8);
    assert_same(&d.join("t1.zarr"), &d.join("t2.zarr"));
    assert_same(&d.join("t1.zarr"), &d.join("t8.zarr"));
    // A second run over a complete store writes nothing and changes nothing.
    build(&d.join("t2.zarr"), 2);
    assert_same(&d.join("t1.zarr"), &d.join("t2.zarr"));
}

#[test]
fn killed_builds_resume_to_an_identical_store() {
    let d = workdir();
    let reference = d.join("ref.zarr");
    build(&reference, 2);
    let store = d.join("killed.zarr");
    // Kill after the first completed tile, then again after a few more.
    let mut interrupted = 0;
    for kill_after in [1, 4] {
        let mut child = build_into(&store)
            .args(["--threads", "1"])
            .command()
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while shard_count(&store) < kill_after && start.elapsed() < Duration::from_secs(120) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Proof of an interruption: the build still runs and has not written every tile yet.
        let before = shard_count(&store);
        if child.try_wait().unwrap().is_none() && before < 8 {
            interrupted += 1;
        }
        let _ = child.kill(); // SIGKILL (an error only if it already exited)
        child.wait().unwrap();
        let done = shard_count(&store);
        assert!(done < 8, "killed before the end (had {done})");
    }
    assert!(
        interrupted >= 1,
        "no kill interrupted a running build: each had already exited"
    );
    build(&store, 2);
    assert_same(&reference, &store);
}

#[test]
fn a_tile_with_only_one_of_its_two_shards_is_rewritten() {
    let d = workdir();
    let store = d.join("half.zarr");
    build(&store, 2);
    let before = snapshot(&store);
    // As if a build was killed between the two shard writes of two tiles (one each way round).
    let scales = store.join("80-90/scales/c/0/0/800");
    let embeddings = store.join("80-90/embeddings/c/1/1/800/0");
    assert!(scales.exists() && embeddings.exists());
    std::fs::remove_file(&scales).unwrap();
    std::fs::remove_file(&embeddings).unwrap();
    let text = build_into(&store).ok();
    assert!(
        text.contains("2 tiles written, 6 already present"),
        "{text}"
    );
    // Both tiles rewritten whole: the store is again the one before the deletions.
    assert_same_snapshots(&before, &snapshot(&store));
}

/// `bands.toml` as it was before format version 2: 117 x ~101 pixel-major inner chunks (no
/// `order`).
fn version_1_bands(dir: &Path) -> PathBuf {
    let repo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/bands.toml")).unwrap();
    let (head, bands) = repo.split_once("[compression]").unwrap();
    let head = head.split("[chunks]").next().unwrap();
    let path = dir.join("bands-v1.toml");
    std::fs::write(
        &path,
        format!("{head}[chunks]\nrows = 117\ntarget_cols = 128\n\n[compression]{bands}"),
    )
    .unwrap();
    path
}

/// Every `zarr.json` of a store rewritten as a version 1 build wrote it: no `chunk_order` in
/// the layout (and its copies in consolidated metadata), `format_version` 1.
fn make_version_1(store: &Path) {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("chunk_order");
                if m.contains_key("format_version") {
                    m.insert("format_version".into(), 1.into());
                }
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    for (key, bytes) in snapshot(store) {
        if key.ends_with("zarr.json") {
            let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            strip(&mut v);
            std::fs::write(store.join(&key), serde_json::to_vec_pretty(&v).unwrap()).unwrap();
        }
    }
}

#[test]
fn a_version_1_store_still_reads_verifies_and_extends() {
    let d = workdir();
    let store = d.join("v1.zarr");
    let bands = version_1_bands(d);
    build_into(&store)
        .args(["--years", "2023", "--bands"])
        .arg(&bands)
        .ok();
    make_version_1(&store);
    let meta = common::read_json(store.join("80-90/embeddings/zarr.json"));
    let inner = &meta["codecs"][0]["configuration"];
    assert_eq!(inner["chunk_shape"][1], 117);
    assert_eq!(
        inner["codecs"][0]["name"], "bytes",
        "pixel-major: no transpose"
    );
    let layout = common::read_json(store.join("80-90/zarr.json"));
    assert_eq!(layout["attributes"]["tessera_mosaic"]["format_version"], 1);
    common::verify(d.join("in"), &store, "80-90")
        .args(["--years", "2023"])
        .ok();
    // Extended by a later year in its own layout, then read and verified whole.
    build_into(&store)
        .args(["--years", "2024", "--bands"])
        .arg(&bands)
        .ok();
    common::verify(d.join("in"), &store, "80-90").ok();
    let layout = common::read_json(store.join("80-90/zarr.json"));
    assert_eq!(layout["attributes"]["tessera_mosaic"]["format_version"], 1);
    // The same tiles built with today's chunks (39 rows), channel-planar: the transpose codec.
    let new = d.join("v2.zarr");
    let planar = d.join("bands-planar.toml");
    let repo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/bands.toml")).unwrap();
    let with_planar = repo.replace("order = \"pixel_major\"", "order = \"channel_planar\"");
    assert_ne!(repo, with_planar);
    std::fs::write(&planar, with_planar).unwrap();
    build_into(&new).arg("--bands").arg(&planar).ok();
    let meta = common::read_json(new.join("80-90/embeddings/zarr.json"));
    let inner = &meta["codecs"][0]["configuration"];
    assert_eq!(inner["chunk_shape"][1], 39);
    assert_eq!(inner["codecs"][0]["name"], "transpose");
    assert_eq!(
        inner["codecs"][0]["configuration"]["order"],
        serde_json::json!([0, 3, 1, 2])
    );
    common::verify(d.join("in"), &new, "80-90").ok();
    // A newer format than this build knows is refused, not misread.
    let group = new.join("80-90/zarr.json");
    let mut doc = common::read_json(&group);
    doc["attributes"]["tessera_mosaic"]["format_version"] = 99.into();
    std::fs::write(&group, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let err = common::verify(d.join("in"), &new, "80-90").run();
    assert!(!err.status.success());
    assert!(
        common::stderr(&err).contains("format_version 99"),
        "{}",
        common::stderr(&err)
    );
}
