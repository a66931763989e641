//! Every kind of bad input gets a clear message naming the file, the build goes on with the
//! rest, the failure report lists it, and nothing already written changes.

mod common;

use common::{build, build_with_failures, s, scratch_dir, snapshot, synth, truncate};

use std::path::{Path, PathBuf};

use tessera_mosaic::input::npy::{NpyDtype, write_npy};

/// Write a small fake tile folder with the given embeddings / scales headers and data.
fn fake_tile(
    root: &Path,
    name: &str,
    emb: (NpyDtype, &[usize]),
    scales: Option<(NpyDtype, &[usize])>,
) -> PathBuf {
    let dir = root.join("2024").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let n: usize = emb.1.iter().product::<usize>() * emb.0.size();
    write_npy(
        &dir.join(format!("{name}.npy")),
        emb.0,
        emb.1,
        &vec![1u8; n],
    )
    .unwrap();
    if let Some((dt, shape)) = scales {
        let n: usize = shape.iter().product::<usize>() * dt.size();
        write_npy(
            &dir.join(format!("{name}_scales.npy")),
            dt,
            shape,
            &vec![0x3cu8; n],
        )
        .unwrap();
    }
    dir.join(format!("{name}.npy"))
}

/// Replace a real tile's scales by a constant.
fn set_scales(root: &Path, name: &str, value: f32) -> PathBuf {
    let path = root.join(format!("2024/{name}/{name}_scales.npy"));
    let header = tessera_mosaic::input::npy::read_header(&path).unwrap();
    let data: Vec<u8> = (0..header.len())
        .flat_map(|_| value.to_le_bytes())
        .collect();
    write_npy(&path, NpyDtype::Float32, &header.shape, &data).unwrap();
    path
}

#[test]
fn bad_inputs_are_reported_and_nothing_written_changes() {
    let d = scratch_dir("bad-input");
    let root = d.join("in");
    let store = d.join("store.zarr");

    // Empty input tree: a clear error, nothing created.
    std::fs::create_dir_all(&root).unwrap();
    build(&root, &store, "80-90").fails(2, "band 80-90 has no tiles in the input");

    // A good first build.
    let good = "grid_-99.95_80.05";
    synth(&root, good, "2024").ok();
    build(&root, &store, "80-90").ok();
    let before = snapshot(&store.join("80-90/embeddings/c"));
    assert_eq!(before.len(), 1);

    // Real tiles whose scales are all NaN, all zero, all FLT_MAX.
    let sentinels = [
        "grid_-99.85_80.05",
        "grid_-99.75_80.05",
        "grid_-99.65_80.05",
    ];
    synth(&root, &sentinels.join(","), "2024").ok();
    let nan = set_scales(&root, sentinels[0], f32::NAN);
    let zero = set_scales(&root, sentinels[1], 0.0);
    let big = set_scales(&root, sentinels[2], f32::MAX);
    // A real tile in another band: not part of this build.
    synth(&root, "grid_-99.95_79.95", "2024").ok();

    let i8_ = NpyDtype::Int8;
    let f32_ = NpyDtype::Float32;
    // Int8 embeddings and float32 scales of the given shapes.
    let fake = |name: &str, emb: &[usize], scales: &[usize]| {
        fake_tile(&root, name, (i8_, emb), Some((f32_, scales)))
    };
    let wrong_dtype = fake_tile(
        &root,
        "grid_-99.55_80.05",
        (f32_, &[1119, 211, 128]),
        Some((f32_, &[1119, 211])),
    );
    let wrong_rank = fake("grid_-99.45_80.05", &[1119, 211], &[1119, 211]);
    let wrong_channels = fake("grid_-99.35_80.05", &[1119, 211, 64], &[1119, 211]);
    let wrong_size = fake("grid_-99.25_80.05", &[100, 20, 128], &[100, 20]);
    let scales_shape_dir = fake("grid_-99.15_80.05", &[1119, 211, 128], &[1119, 210]);
    let scales_shape = scales_shape_dir.with_file_name("grid_-99.15_80.05_scales.npy");
    let no_scales = fake_tile(&root, "grid_-99.05_80.05", (i8_, &[1119, 211, 128]), None);
    let missing_scales = no_scales.with_file_name("grid_-99.05_80.05_scales.npy");
    // The embeddings "file" is a directory; a symlink loop stands in for an unreadable file.
    let dir_tile = root.join("2024/grid_-98.95_80.05");
    std::fs::create_dir_all(dir_tile.join("grid_-98.95_80.05.npy")).unwrap();
    let loop_tile = root.join("2024/grid_-98.85_80.05");
    std::fs::create_dir_all(&loop_tile).unwrap();
    let looped = loop_tile.join("grid_-98.85_80.05.npy");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    // Truncated file; a name off the 0.05 grid; a duplicate (folder + flat file of one cell).
    let truncated = fake("grid_-98.75_80.05", &[1119, 211, 128], &[1119, 211]);
    truncate(&truncated, |len| len - 1000);
    let off_grid = root.join("2024/grid_-98.70_80.05");
    std::fs::create_dir_all(&off_grid).unwrap();
    for suffix in [".npy", "_scales.npy"] {
        let name = format!("grid_-99.95_80.05{suffix}");
        std::fs::copy(
            root.join("2024/grid_-99.95_80.05").join(&name),
            root.join("2024").join(&name),
        )
        .unwrap();
    }

    let report = d.join("report.json");
    let (stderr, r) = build_with_failures(build(&root, &store, "80-90"), &report);

    let expect = [
        (nan.clone(), "no valid scale"),
        (zero.clone(), "<= 0"),
        (big.clone(), "infinite or >= 1e6"),
        (wrong_dtype, "expected int8"),
        (wrong_rank.clone(), "is not (H, W, 128)"),
        (wrong_channels, "is not (H, W, 128)"),
        (wrong_size, "is 100 x 20 but the georeference rule gives"),
        (scales_shape, "does not match the tile's (1119, 211)"),
        (missing_scales, "missing"),
        (dir_tile.join("grid_-98.95_80.05.npy"), "is a directory"),
        (looped.clone(), "cannot read"),
        (truncated, "data bytes"),
        (off_grid, "not a cell centre"),
        (root.join("2024/grid_-99.95_80.05.npy"), "duplicate tile"),
    ];
    let listed: Vec<(String, String)> = r["failed"]
        .as_array()
        .unwrap()
        .iter()
        .chain(r["input_problems"].as_array().unwrap())
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_string(),
                p["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (path, reason) in &expect {
        let line = format!("{}: ", path.display());
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&line) && l.contains(reason)),
            "stderr lacks `{line}...{reason}`:\n{stderr}"
        );
        assert!(
            listed
                .iter()
                .any(|(p, why)| p == s(path) && why.contains(reason)),
            "report lacks {} ({reason}): {listed:?}",
            path.display()
        );
    }
    // The NaN tile's reason counts its pixels.
    let n = tessera_mosaic::input::npy::read_header(&nan).unwrap().len();
    assert!(
        stderr.contains(&format!(
            "{}: no valid scale in {n} pixels ({n} NaN, 0 <= 0, 0 infinite",
            nan.display()
        )),
        "{stderr}"
    );

    // The duplicated cell is no longer built... but its shard from the first build is untouched,
    // as is everything else already written; nothing from the bad tiles was added.
    assert_eq!(snapshot(&store.join("80-90/embeddings/c")), before);
    assert!(!store.join("79.9").exists() && !store.join("70-80").exists());
    assert_eq!(r["tiles_written"], 0, "{r}");
}
