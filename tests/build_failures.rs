//! Bad tiles are reported (path + reason, on stderr and in the report file), the rest of the
//! band is still written, and the exit code is non-zero.

mod common;

use common::{build, build_with_failures, read_json, scratch_dir, synth, truncate};

use std::path::Path;

#[test]
fn bad_tiles_are_reported_and_the_rest_is_written() {
    let d = scratch_dir("failures");
    let root = d.join("in");
    let tiles = "grid_-99.95_80.05,grid_-99.85_80.05,grid_-99.75_80.05";
    synth(&root, tiles, "2024").arg("--landmasks").ok();
    // A truncated tile and a landmask of the wrong size.
    let bad = root.join("2024/grid_-99.95_80.05/grid_-99.95_80.05.npy");
    truncate(&bad, |len| len / 2);
    let mask = root.join("global_0.1_degree_tiff_all/grid_-99.85_80.05.tiff");
    tessera_mosaic::input::geotiff::write_u8(
        &mask,
        3,
        2,
        &[1; 6],
        &tessera_mosaic::input::geotiff::GeoTransform {
            epsg: 32614,
            x0: 0.0,
            y0: 0.0,
            dx: 10.0,
            dy: 10.0,
        },
    )
    .unwrap();

    let store = d.join("store.zarr");
    let report = d.join("report.json");
    let (stderr, r) = build_with_failures(build(&root, &store, "80-90"), &report);
    assert!(
        stderr.contains("grid_-99.95_80.05.npy") && stderr.contains("data bytes"),
        "{stderr}"
    );
    assert!(
        stderr.contains("grid_-99.85_80.05.tiff") && stderr.contains("landmask is 2 x 3"),
        "{stderr}"
    );

    assert_eq!(r["tiles_written"], 1);
    assert_eq!(r["failed"].as_array().unwrap().len(), 1);
    assert_eq!(r["input_problems"].as_array().unwrap().len(), 1);
    // The good tile is in the store, the bad ones are not.
    let shard = |lon_index: u32| store.join(format!("80-90/scales/c/0/0/{lon_index}"));
    assert!(shard(802).exists() && !shard(800).exists() && !shard(801).exists());
    let failure_record = || read_json(store.join("_mosaic/failures/80-90/all.json"));
    let record = failure_record();
    assert_eq!(record["failed"][0]["path"], mask.to_str().unwrap());

    // `mosaic status` counts the cell whose build failed (the landmask one) as failed, the one
    // written as built: the counts we made above, and the shard files on disk.
    let status = |store: &Path| -> serde_json::Value {
        serde_json::from_str(&common::status(store).arg("--json").ok()).unwrap()
    };
    let on_disk = std::fs::read_dir(store.join("80-90/scales/c/0/0"))
        .unwrap()
        .count();
    assert_eq!(on_disk, 1);
    let s = status(&store);
    assert_eq!(s[0]["band"], "80-90", "{s}");
    assert_eq!(s[0]["years"][0]["year"], 2024, "{s}");
    assert_eq!(s[0]["years"][0]["built"], on_disk, "{s}");
    assert_eq!(s[0]["years"][0]["failed"], 1, "{s}");

    // Fixing the inputs and rerunning completes the band without touching the good shard.
    let before = std::fs::read(shard(802)).unwrap();
    std::fs::remove_file(&mask).unwrap();
    std::fs::remove_dir_all(root.join("2024/grid_-99.95_80.05")).unwrap();
    build(&root, &store, "80-90").ok();
    assert!(shard(801).exists() && !shard(800).exists());
    assert_eq!(std::fs::read(shard(802)).unwrap(), before);
    // The new run's failure record replaced the old one: it describes this run (no failure).
    let record = failure_record();
    assert_eq!(record["failed"], serde_json::json!([]), "{record}");
    assert_eq!(record["input_problems"], serde_json::json!([]), "{record}");
    let s = status(&store);
    assert_eq!(s[0]["years"][0]["built"], 2, "{s}");
    assert_eq!(s[0]["years"][0]["failed"], 0, "{s}");
}
