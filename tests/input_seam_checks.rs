//! Every reader goes through the input seam's checks (issue 24): a landmask whose georeference
//! disagrees with the rule fails its tile naming both transforms; `verify` never panics on a
//! malformed tile or landmask (wrong size, truncated, wrong dtype, garbage), it names the file;
//! a build whose tiles all failed reports no exact-fallback percentage above 100.

mod common;

use std::path::{Path, PathBuf};

use common::{build, scratch_dir, synth, verify};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use tessera_mosaic::input::geotiff::{self, GeoTransform};
use tessera_mosaic::input::npy::{NpyDtype, write_npy};

const TILES: &str = "grid_-99.95_80.05,grid_-99.85_80.05";
const MASK: &str = "global_0.1_degree_tiff_all/grid_-99.85_80.05.tiff";
const EMB: &str = "2024/grid_-99.85_80.05/grid_-99.85_80.05.npy";
const SCALES: &str = "2024/grid_-99.85_80.05/grid_-99.85_80.05_scales.npy";

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A synthetic tree of two tiles with landmasks, and a store built from it.
fn tree_and_store(d: &Path) -> (PathBuf, PathBuf) {
    let root = d.join("in");
    synth(&root, TILES, "2024").arg("--landmasks").run_ok();
    let store = d.join("store.zarr");
    build(&root, &store, "80-90").run_ok();
    (root, store)
}

fn verify_sample(root: &Path, store: &Path) -> std::process::Output {
    verify(root, store, "80-90").args(["--sample", "50"]).run()
}

#[test]
fn a_landmask_shifted_from_the_rule_fails_its_tile_naming_both_transforms() {
    let d = scratch_dir("landmask-georef");
    let (root, good_store) = tree_and_store(&d);
    let mask = root.join(MASK);
    let raster = geotiff::read_u8_raster(std::fs::File::open(&mask).unwrap()).unwrap();
    let t = raster.transform.expect("synth writes a georeference");
    // Shifted 5 m east: the same size, the same CRS.
    let shifted = GeoTransform {
        x0: t.x0 + 5.0,
        ..t
    };
    geotiff::write_u8(&mask, raster.width, raster.height, &raster.data, &shifted).unwrap();
    let out = build(&root, d.join("shifted.zarr"), "80-90").run();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("grid_-99.85_80.05.tiff"), "{all}");
    assert!(all.contains("disagrees with the tile's"), "{all}");
    assert!(
        all.contains(&format!("{:.3}", t.x0 + 5.0)) && all.contains(&format!("{:.3}", t.x0)),
        "both origins named: {all}"
    );
    // verify reads the landmask through the same check.
    let out = verify_sample(&root, &good_store);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("disagrees with the tile's"), "{all}");
    // A CRS other than the rule's, too.
    let other = GeoTransform { epsg: 32615, ..t };
    geotiff::write_u8(&mask, raster.width, raster.height, &raster.data, &other).unwrap();
    let all = text(&verify_sample(&root, &good_store));
    assert!(
        all.contains("EPSG:32615") && all.contains("EPSG:32614"),
        "{all}"
    );
    // Within 1 cm: accepted.
    let close = GeoTransform {
        x0: t.x0 + 0.004,
        ..t
    };
    geotiff::write_u8(&mask, raster.width, raster.height, &raster.data, &close).unwrap();
    let out = verify_sample(&root, &good_store);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_build_whose_tiles_all_failed_reports_no_fallback_percentage_over_100() {
    let d = scratch_dir("all-failed");
    let root = d.join("in");
    synth(&root, TILES, "2024").run_ok();
    // Every scale NaN: each tile fails when it is read, after its cell's placement was made.
    for name in ["grid_-99.95_80.05", "grid_-99.85_80.05"] {
        let f = root.join(format!("2024/{name}/{name}_scales.npy"));
        let header = tessera_mosaic::input::npy::read_header(&f).unwrap();
        let nan: Vec<u8> = (0..header.len())
            .flat_map(|_| f32::NAN.to_le_bytes())
            .collect();
        write_npy(&f, NpyDtype::Float32, &header.shape, &nan).unwrap();
    }
    let out = build(&root, d.join("s.zarr"), "80-90").run();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("0 tiles written") && all.contains("no valid scale"),
        "{all}"
    );
    assert!(
        all.contains(" 0.0000% of pixels placed by the exact fallback"),
        "{all}"
    );
}

/// A way to damage one input file.
#[derive(Debug, Clone)]
enum Damage {
    TruncateEmbeddings(f64),
    TruncateScales(f64),
    EmbeddingsDtype(usize),
    ScalesShape(usize, usize),
    MaskSize(usize, usize),
    TruncateMask(f64),
    GarbageMask(Vec<u8>),
    GarbageEmbeddings(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (0.0..1.0f64).prop_map(Damage::TruncateEmbeddings),
        (0.0..1.0f64).prop_map(Damage::TruncateScales),
        (0usize..2).prop_map(Damage::EmbeddingsDtype),
        (1usize..300, 1usize..300).prop_map(|(h, w)| Damage::ScalesShape(h, w)),
        (1usize..300, 1usize..300).prop_map(|(h, w)| Damage::MaskSize(h, w)),
        (0.0..1.0f64).prop_map(Damage::TruncateMask),
        proptest::collection::vec(any::<u8>(), 0..400).prop_map(Damage::GarbageMask),
        proptest::collection::vec(any::<u8>(), 0..400).prop_map(Damage::GarbageEmbeddings),
    ]
}

fn truncate(path: &Path, fraction: f64) {
    let len = std::fs::metadata(path).unwrap().len();
    let keep = ((len as f64) * fraction) as u64;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(keep.min(len - 1))
        .unwrap();
}

/// Apply a damage; returns the file damaged.
fn apply(root: &Path, damage: &Damage) -> PathBuf {
    let (emb, scales, mask) = (root.join(EMB), root.join(SCALES), root.join(MASK));
    match damage {
        Damage::TruncateEmbeddings(f) => {
            truncate(&emb, *f);
            emb
        }
        Damage::TruncateScales(f) => {
            truncate(&scales, *f);
            scales
        }
        Damage::EmbeddingsDtype(i) => {
            // The same shape, another dtype.
            let dtype = [NpyDtype::Float32, NpyDtype::Uint8][*i];
            let shape = [1119usize, 211, 128];
            let n: usize = shape.iter().product::<usize>() * dtype.size();
            write_npy(&emb, dtype, &shape, &vec![0; n]).unwrap();
            emb
        }
        Damage::ScalesShape(h, w) => {
            write_npy(&scales, NpyDtype::Float32, &[*h, *w], &vec![0; h * w * 4]).unwrap();
            scales
        }
        Damage::MaskSize(h, w) => {
            let t = GeoTransform {
                epsg: 32614,
                x0: 0.0,
                y0: 0.0,
                dx: 10.0,
                dy: 10.0,
            };
            geotiff::write_u8(&mask, *w, *h, &vec![1; h * w], &t).unwrap();
            mask
        }
        Damage::TruncateMask(f) => {
            truncate(&mask, *f);
            mask
        }
        Damage::GarbageMask(bytes) => {
            std::fs::write(&mask, bytes).unwrap();
            mask
        }
        Damage::GarbageEmbeddings(bytes) => {
            std::fs::write(&emb, bytes).unwrap();
            emb
        }
    }
}

#[test]
fn verify_names_every_malformed_tile_or_landmask_and_never_panics() {
    let d = scratch_dir("verify-malformed");
    let (root, store) = tree_and_store(&d);
    let pristine: Vec<(PathBuf, Vec<u8>)> = [EMB, SCALES, MASK]
        .iter()
        .map(|f| (root.join(f), std::fs::read(root.join(f)).unwrap()))
        .collect();
    // The planted fault first: a landmask of the wrong size (exit 101 before the fix).
    let mut cases = vec![Damage::MaskSize(2, 3)];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 10,
        ..ProptestConfig::default()
    });
    for _ in 0..10 {
        cases.push(damage().new_tree(&mut runner).unwrap().current());
    }
    for case in cases {
        let file = apply(&root, &case);
        let out = verify_sample(&root, &store);
        let all = text(&out);
        assert_ne!(out.status.code(), Some(101), "{case:?} panicked: {all}");
        assert_eq!(out.status.code(), Some(1), "{case:?}: {all}");
        let name = file.file_name().unwrap().to_string_lossy();
        assert!(all.contains(&*name), "{case:?}: {name} not named: {all}");
        for (path, bytes) in &pristine {
            std::fs::write(path, bytes).unwrap();
        }
    }
    let out = verify_sample(&root, &store);
    assert!(out.status.success(), "{}", text(&out));
}
