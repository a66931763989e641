//! `mosaic stac` errors: a clear message and exit code 2, nothing written.

mod common;

use common::{Mosaic, Scratch, scratch_dir};

use std::path::{Path, PathBuf};

/// A scratch folder with `store.zarr`, a store with a root group and no band, and the path
/// `out` (not created) for the catalogue.
fn empty_store(tag: &str) -> (Scratch, PathBuf, PathBuf) {
    let d = scratch_dir(tag);
    let store = d.join("store.zarr");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(
        store.join("zarr.json"),
        r#"{"zarr_format": 3, "node_type": "group", "attributes": {}}"#,
    )
    .unwrap();
    let out = d.join("out");
    (d, store, out)
}

/// `mosaic stac --store STORE --out OUT`.
fn stac(store: &Path, out: &Path) -> Mosaic {
    Mosaic::new(["stac", "--store"])
        .arg(store)
        .arg("--out")
        .arg(out)
}

#[test]
fn missing_leaflet_is_reported() {
    let (d, store, out) = empty_store("stac-cli-leaflet");
    let nowhere = d.join("no-leaflet");
    stac(&store, &out)
        .arg("--leaflet")
        .arg(&nowhere)
        .fails(2, "Leaflet not found");
    assert!(!out.exists());
}

#[test]
fn a_store_without_data_is_an_error() {
    let (d, store, out) = empty_store("stac-cli-empty");
    stac(&store, &out)
        .arg("--no-map")
        .fails(2, "no band with data");
    assert!(!out.join("catalog.json").exists());

    let missing = d.join("missing.zarr");
    stac(&missing, &out)
        .arg("--no-map")
        .fails(2, "zarr.json missing");
}

#[test]
fn href_base_must_be_a_url() {
    let (_d, store, out) = empty_store("stac-cli-href-base");
    stac(&store, &out)
        .args(["--no-map", "--href-base", "published/store.zarr"])
        .fails(2, "is not a URL");
    assert!(!out.exists());
}
