//! A whole-band picture reads the coarsest overview level that fits and nothing of the band's
//! own arrays: checked with a read log kept here (not the tool's own read counter), as
//! tests/query_reads.rs does for `query`. The level is computed here from the documented rule
//! (docs/overviews.md: the coarsest level whose pixels are no larger than the picture's) and
//! the pixel sizes in the store's multiscales layout. The tool's counter must agree.

mod common;

use common::{build, read_json, s, scratch_dir, synth};

use std::path::Path;
use std::sync::{Arc, Mutex};

use tessera_mosaic::preview::{band_cells_bbox, render_box};
use tessera_mosaic::store::{Intercept, Store, count_reads};
use tessera_mosaic::zarr::MosaicStore;
use zarrs::storage::ReadableStorageTraits;

/// The stored bytes of a band's two arrays (every file under them).
fn band_bytes(store: &Path, band: &str) -> u64 {
    fn walk(d: &Path) -> u64 {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p)
                } else {
                    std::fs::metadata(&p).unwrap().len()
                }
            })
            .sum()
    }
    ["embeddings", "scales"]
        .iter()
        .map(|a| walk(&store.join(band).join(a)))
        .sum()
}

/// The level a picture of `width` x `height` pixels over `lon_deg` x `lat_deg` degrees reads,
/// by the documented rule, from the band's multiscales layout (`spatial:transform` of each
/// level: `[a, b, c, d, e, f]`, `a` the column width, `-e` the row height).
fn level_by_rule(
    store: &Path,
    band: &str,
    lon_deg: f64,
    lat_deg: f64,
    size: (usize, usize),
) -> u32 {
    let attrs = read_json(store.join(band).join("overviews/zarr.json"));
    let layout = attrs["attributes"]["multiscales"]["layout"]
        .as_array()
        .unwrap()
        .clone();
    let (dlon, dlat) = (lon_deg / size.0 as f64, lat_deg / size.1 as f64);
    let level = |e: &serde_json::Value| e["asset"].as_str().unwrap().parse::<u32>().unwrap();
    layout
        .iter()
        .filter(|e| {
            let t = &e["spatial:transform"];
            t[0].as_f64().unwrap() <= dlon * 1.0001 && -t[4].as_f64().unwrap() <= dlat * 1.0001
        })
        .map(level)
        .max()
        .unwrap_or_else(|| level(&layout[0]))
}

#[test]
fn a_whole_band_picture_reads_only_the_coarsest_level_that_fits() {
    let d = scratch_dir("preview-reads");
    let (root, store) = (d.join("in"), d.join("store.zarr"));
    // Two cells half the globe apart: the band's box is 180 degrees wide.
    synth(&root, "grid_-99.95_80.05,grid_79.95_80.05", "2024")
        .args(["--land-fraction", "1.0"])
        .ok();
    build(&root, &store, "80-90").ok();
    let band = "80-90";

    // Render in-process through a logging adapter (inside the tool's own counter): every
    // byte range read, per key, with its length (0 for a key that does not exist).
    let opened = Store::open(s(&store)).unwrap();
    let reads = Arc::new(Mutex::new(Vec::new()));
    let (log, sizes) = (reads.clone(), opened.storage.clone());
    let logged = Intercept::new(&opened)
        .on_read(move |key, ranges| {
            // A read of an absent key (an empty chunk) is a request that returns nothing.
            let size = sizes.size_key(key).unwrap();
            for r in ranges {
                let n = size.map_or(0, |size| {
                    let range = r.to_range(size);
                    range.end - range.start
                });
                log.lock().unwrap().push((key.as_str().to_string(), n));
            }
        })
        .into_store(&opened.location);
    let (counted, tool_counter) = count_reads(&logged);
    let mosaic = MosaicStore { store: counted };
    let bbox = band_cells_bbox(&mosaic, band, None).unwrap();
    let picture = render_box(&mosaic, bbox, None, 1024).unwrap();
    let size = (picture.image.width, picture.image.height);
    assert!(size.0 > 500, "{size:?}");

    let level = level_by_rule(
        &store,
        band,
        picture.bbox.lon_width(),
        picture.bbox.lat1 - picture.bbox.lat0,
        size,
    );
    assert!(
        level > 2,
        "a 180-degree picture reads a coarse level, not {level}"
    );
    assert_eq!(picture.levels, vec![(band.to_string(), level)]);

    let reads = reads.lock().unwrap().clone();
    assert!(!reads.is_empty());
    // Only metadata, the year's colour basis and the chunks of that one level.
    let level_prefix = format!("{band}/overviews/{level}/");
    for (key, _) in &reads {
        assert!(
            key.ends_with("zarr.json")
                || key.starts_with("_mosaic/colour/")
                || (key.starts_with(&level_prefix) && key.contains("/c/")),
            "unexpected read of {key}; level {level} by the rule"
        );
    }
    assert!(
        reads.iter().any(|(k, _)| k.starts_with(&level_prefix)),
        "{reads:?}"
    );
    // The pixels read: under 1% of the band's stored bytes (docs/overviews.md). (Metadata
    // documents are a fixed cost, larger than this two-tile band's 1%: not counted here.)
    let read: u64 = reads.iter().map(|(_, n)| n).sum();
    let pixels: u64 = reads
        .iter()
        .filter(|(k, _)| !k.ends_with(".json"))
        .map(|(_, n)| n)
        .sum();
    let stored = band_bytes(&store, band);
    assert!(
        pixels * 100 < stored,
        "read {pixels} bytes of pixels of {stored}: {reads:?}"
    );

    // The tool's own counter (printed by `mosaic preview`) agrees with this log.
    assert_eq!(tool_counter.bytes_read() as u64, read);
    assert_eq!(tool_counter.reads(), reads.len());
}
