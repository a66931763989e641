//! `mosaic stac` errors: a clear message and exit code 2, nothing written.

mod common;

use common::{mosaic, scratch_dir};

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
    let d = scratch_dir("stac-cli-leaflet");
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
    let d = scratch_dir("stac-cli-empty");
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

#[test]
fn href_base_must_be_a_url() {
    let d = scratch_dir("stac-cli-href-base");
    let store = empty_store(&d);
    let out = d.join("out");
    let r = mosaic(&[
        "stac",
        "--store",
        &store,
        "--out",
        out.to_str().unwrap(),
        "--no-map",
        "--href-base",
        "published/store.zarr",
    ]);
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("is not a URL"), "{err}");
    assert!(!out.exists());
}
