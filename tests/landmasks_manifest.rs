//! Landmasks from `landmasks.parquet`: `mosaic manifest` lists a tree's landmasks beside its
//! manifest, and a build from the two equals the build from the tree, landmask applied; a
//! malformed row is an error naming it.

mod common;

use common::{Mosaic, assert_same_snapshots, scratch_dir, snapshot, stderr, synth};

use std::path::Path;
use std::sync::Arc;

const TILES: &str = "grid_-99.95_80.05,grid_-99.85_80.05";

fn build(root: &Path, store: &Path, landmasks: Option<&Path>) {
    let mut build = common::build(root, store, "80-90");
    if let Some(dir) = landmasks {
        build = build.arg("--landmasks").arg(dir);
    }
    build.ok();
}

/// `mosaic manifest --input ROOT --landmasks DIR`.
fn manifest(root: &Path, landmasks: &Path) -> String {
    Mosaic::new(["manifest", "--input"])
        .arg(root)
        .arg("--landmasks")
        .arg(landmasks)
        .ok()
}

/// Every scale of every shard written in band 80-90, shard by shard in key order.
fn scales(store: &Path) -> Vec<f32> {
    let fs = zarrs::filesystem::FilesystemStore::new(store).unwrap();
    let array = zarrs::array::Array::open(Arc::new(fs), "/80-90/scales").unwrap();
    let keys: Vec<String> = snapshot(store)
        .into_keys()
        .filter_map(|k| k.strip_prefix("80-90/scales/c/").map(str::to_string))
        .collect();
    assert_eq!(keys.len(), 2, "two tiles, one scales shard each: {keys:?}");
    keys.iter()
        .flat_map(|k| {
            let index: Vec<u64> = k.split('/').map(|p| p.parse().unwrap()).collect();
            array.retrieve_chunk::<Vec<f32>>(&index).unwrap()
        })
        .collect()
}

/// Shards and metadata of a store, without the build's own records (`_mosaic/`).
fn contents(store: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut all = snapshot(store);
    all.retain(|k, _| !k.starts_with("_mosaic/"));
    all
}

#[test]
fn a_build_from_the_manifest_and_landmasks_parquet_equals_the_build_from_the_tree() {
    let d = scratch_dir("landmasks-manifest");
    let root = d.join("in");
    synth(&root, TILES, "2024")
        .args(["--landmasks", "--land-fraction", "0.7"])
        .ok();
    // Under a name no default finds: a build without --landmasks can only get them from
    // landmasks.parquet.
    let masks = root.join("masks");
    std::fs::rename(root.join("global_0.1_degree_tiff_all"), &masks).unwrap();
    let from_tree = d.join("tree.zarr");
    build(&root, &from_tree, Some(&masks));

    let text = manifest(&root, &masks);
    let listed = root.join("landmasks.parquet");
    assert!(
        text.contains(&format!("landmasks {}: 2 landmasks", listed.display())),
        "{text}"
    );
    let from_manifest = d.join("manifest.zarr");
    build(&root, &from_manifest, None);
    assert_same_snapshots(&contents(&from_tree), &contents(&from_manifest));

    // The landmask was applied: against a build without it, every pixel it marks as water is
    // NaN, and every other pixel is unchanged.
    let empty = d.join("no-masks");
    std::fs::create_dir_all(&empty).unwrap();
    let unmasked = d.join("unmasked.zarr");
    build(&root, &unmasked, Some(&empty));
    let (masked, plain) = (scales(&from_manifest), scales(&unmasked));
    assert_eq!(masked.len(), plain.len());
    let mut water = 0;
    for (m, p) in masked.iter().zip(&plain) {
        if m.is_nan() && !p.is_nan() {
            water += 1;
        } else {
            assert!(m.to_bits() == p.to_bits() || (m.is_nan() && p.is_nan()));
        }
    }
    assert!(
        water > masked.len() / 20,
        "only {water} of {} pixels masked as water",
        masked.len()
    );

    // A landmask whose size disagrees with landmasks.parquet fails its tile, named.
    let one = masks.join("grid_-99.85_80.05.tiff");
    let mut bytes = std::fs::read(&one).unwrap();
    bytes.extend_from_slice(&[0; 16]);
    std::fs::write(&one, bytes).unwrap();
    let out = common::build(&root, d.join("changed.zarr"), "80-90").run();
    let stderr = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("grid_-99.85_80.05.tiff") && stderr.contains("but landmasks.parquet gives"),
        "{stderr}"
    );

    // The landmasks gone from the tree: a new manifest removes the old landmasks.parquet, which
    // would otherwise keep masking the tiles.
    let text = manifest(&root, &empty);
    assert!(
        text.contains(&format!("landmasks {}: removed", listed.display())),
        "{text}"
    );
    assert!(!listed.exists());
}

#[test]
fn a_malformed_landmasks_row_is_an_error_naming_the_row() {
    let d = scratch_dir("landmasks-malformed");
    let root = d.join("in");
    synth(&root, "grid_-99.95_80.05", "2024")
        .arg("--landmasks")
        .ok();
    let good = tessera_mosaic::input::LandmaskRow {
        cell: tessera_mosaic::grid::Cell::parse_name("grid_-99.95_80.05").unwrap(),
        file_size: 100,
        path: "global_0.1_degree_tiff_all/grid_-99.95_80.05.tiff".into(),
    };
    let cases = [
        (
            tessera_mosaic::input::LandmaskRow {
                path: " ".into(),
                ..good.clone()
            },
            "row 1: `path` is empty",
        ),
        (
            good.clone(),
            "row 1: a second landmask for grid_-99.95_80.05",
        ),
    ];
    let in_root = root.join("landmasks.parquet");
    for (second, message) in cases {
        // Named, or found in ROOT: either way the row is named.
        let named = d.join("bad.parquet");
        for bad in [&named, &in_root] {
            tessera_mosaic::input::write_landmasks(bad, &[good.clone(), second.clone()], &[0, 0])
                .unwrap();
            let mut plan = Mosaic::new(["plan", "--input"]).arg(&root);
            if bad == &named {
                plan = plan.arg("--landmasks").arg(bad);
            }
            let out = plan.run();
            let stderr = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            let at = format!("landmasks {}, {message}", bad.display());
            assert!(stderr.contains(&at), "{at}: {stderr}");
        }
    }
    // `mosaic manifest` lists the files themselves, and replaces the bad one.
    Mosaic::new(["manifest", "--input"]).arg(&root).ok();
    Mosaic::new(["plan", "--input"]).arg(&root).ok();
}
