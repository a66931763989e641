//! `mosaic stac` errors: a clear message and exit code 2, nothing written.

use std::process::Command;

fn mosaic(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mosaic"))
        .args(args)
        .output()
        .unwrap()
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("stac-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A store with a root group and no band.
fn empty_store(d: &std::path::Path) -> String {
    let store = d.join("store.zarr");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(
        store.join("zarr.json"),
        r#"{"zarr_format": 3, "node_type": "group", "attributes": {}}"#,
    )
    .unwrap();
    store.to_str().unwrap().to_string()
}

#[test]
fn missing_leaflet_is_reported() {
    let d = scratch("leaflet");
    let store = empty_store(&d);
    let out = d.join("out");
    let nowhere = d.join("no-leaflet");
    let r = mosaic(&[
        "stac",
        "--store",
        &store,
        "--out",
        out.to_str().unwrap(),
        "--leaflet",
        nowhere.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("Leaflet not found"), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_store_without_data_is_an_error() {
    let d = scratch("empty");
    let store = empty_store(&d);
    let out = d.join("out");
    let r = mosaic(&[
        "stac",
        "--store",
        &store,
        "--out",
        out.to_str().unwrap(),
        "--no-map",
    ]);
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("no band with data"), "{err}");
    assert!(!out.join("catalog.json").exists());

    let missing = d.join("missing.zarr");
    let r = mosaic(&[
        "stac",
        "--store",
        missing.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-map",
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("zarr.json missing"));
}
