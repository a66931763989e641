//! `query` reads only the inner chunks a box needs: checked with a read log kept here (not the
//! tool's own read counter), against the inner chunks that the store's own
//! metadata, coordinate arrays and shard indices say the box covers. The tool's counter must
//! agree with this count.

mod common;

use common::{build, read_json, s, scratch_dir, shard_and_inner_shape, shard_index, synth};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tessera_mosaic::grid::BBox;
use tessera_mosaic::query::{QueryPlan, QueryRequest};
use tessera_mosaic::store::{Intercept, Store, count_reads};
use tessera_mosaic::zarr::MosaicStore;
use zarrs::storage::ReadableStorageTraits;

/// A JSON document of the store.
fn json(store: &Path, key: &str) -> serde_json::Value {
    read_json(store.join(key))
}

/// A band's `lat` or `lon` pixel centres, from the grid its metadata documents (docs/format.md;
/// tests/python/test_readers.py checks every reader finds these values in the stored arrays).
fn coordinate(store: &Path, band: &str, name: &str) -> Vec<f64> {
    let grid = &json(store, &format!("{band}/zarr.json"))["attributes"]["tessera_mosaic"]["grid"];
    let field = |key: &str| grid[key].as_u64().unwrap() as usize;
    if name == "lat" {
        let r = field("rows_per_cell");
        let first = field("lat_start_index") * r;
        let rows = (field("lat_end_index") - field("lat_start_index")) * r;
        (first..first + rows)
            .map(|i| (i as f64 + 0.5) / (10.0 * r as f64) - 90.0)
            .collect()
    } else {
        let c = field("cols_per_cell");
        (0..3600 * c)
            .map(|i| (i as f64 + 0.5) / (10.0 * c as f64) - 180.0)
            .collect()
    }
}

/// Byte intervals merged into a sorted list of disjoint ranges.
fn merged(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The byte ranges of a shard that hold the index and the inner chunks `wanted` (grid indices
/// within the shard, C order over `grid`), from the shard's own index: (offset, nbytes) u64
/// pairs, then a crc32c, at the end of the object.
fn expected_ranges(shard: &Path, grid: &[u64], wanted: &BTreeSet<Vec<u64>>) -> Vec<(u64, u64)> {
    let (entries, index) = shard_index(shard, grid.iter().product());
    let mut out = vec![index];
    for idx in wanted {
        let linear = idx.iter().zip(grid).fold(0, |acc, (i, g)| acc * g + i);
        let (offset, nbytes) = entries[linear as usize];
        assert_ne!(offset, u64::MAX, "inner chunk {idx:?} is stored");
        out.push((offset, offset + nbytes));
    }
    out
}

#[test]
fn query_reads_exactly_the_inner_chunks_under_the_box() {
    let d = scratch_dir("query-reads");
    let (root, store) = (d.join("in"), d.join("store.zarr"));
    synth(&root, "grid_-99.95_80.05", "2024")
        .args(["--land-fraction", "1.0"])
        .ok();
    build(&root, &store, "80-90").ok();

    // The one shard of the band, and the inner chunk grid, from the store's own metadata.
    let band = "80-90";
    let shards: Vec<_> = std::fs::read_dir(store.join(format!("{band}/embeddings/c/0")))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(shards.len(), 1);
    let shard_row: u64 = shards[0].parse().unwrap();
    let cols_dir = store.join(format!("{band}/embeddings/c/0/{shard_row}"));
    let shard_col: u64 = std::fs::read_dir(&cols_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap()
        .parse()
        .unwrap();
    let meta = json(&store, &format!("{band}/embeddings/zarr.json"));
    let (shard_shape, inner) = shard_and_inner_shape(&meta);
    let grid: Vec<u64> = shard_shape.iter().zip(&inner).map(|(s, c)| s / c).collect();

    // A box straddling the boundary between two inner chunk rows, a few columns wide.
    let lats = coordinate(&store, band, "lat");
    let lons = coordinate(&store, band, "lon");
    let (r0, c0) = (shard_row * shard_shape[1], shard_col * shard_shape[2]);
    let rows = (r0 + inner[1] - 2)..=(r0 + inner[1] + 1);
    let cols = (c0 + 3)..=(c0 + 5);
    let request = QueryRequest {
        bbox: BBox::new(
            lons[*cols.start() as usize],
            lats[*rows.start() as usize],
            lons[*cols.end() as usize],
            lats[*rows.end() as usize],
        )
        .unwrap(),
        year: Some(2024),
        dequantize: false,
    };
    let wanted: BTreeSet<Vec<u64>> = rows
        .clone()
        .flat_map(|r| cols.clone().map(move |c| (r, c)))
        .map(|(r, c)| vec![0, (r - r0) / inner[1], (c - c0) / inner[2], 0])
        .collect();
    assert_eq!(
        wanted.len(),
        2,
        "the box spans two inner chunks: {wanted:?}"
    );

    // Run the query in-process through the logging adapter (inside the tool's own counter).
    // Every byte range read, per key, resolved to `start..end`.
    let opened = Store::open(s(&store)).unwrap();
    let reads = Arc::new(Mutex::new(Vec::new()));
    let (log, sizes) = (reads.clone(), opened.storage.clone());
    let logged = Intercept::new(&opened)
        .on_read(move |key, ranges| {
            if let Some(size) = sizes.size_key(key).unwrap() {
                for r in ranges {
                    let range = r.to_range(size);
                    let entry = (key.as_str().to_string(), range.start, range.end);
                    log.lock().unwrap().push(entry);
                }
            }
        })
        .into_store(&opened.location);
    let (counted, tool_counter) = count_reads(&logged);
    let plan = QueryPlan::new(&MosaicStore { store: counted }, &request).unwrap();
    assert_eq!((plan.rows(), plan.cols()), (4, 3));
    plan.write_npy(&d.join("box.npy")).unwrap();

    let reads = reads.lock().unwrap().clone();
    let mut by_key: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for (key, a, b) in &reads {
        by_key.entry(key.clone()).or_default().push((*a, *b));
    }
    let emb_key = format!("{band}/embeddings/c/0/{shard_row}/{shard_col}/0");
    let sc_key = format!("{band}/scales/c/0/{shard_row}/{shard_col}");
    for key in by_key.keys() {
        assert!(
            key.ends_with("zarr.json") || *key == emb_key || *key == sc_key,
            "unexpected read of {key}"
        );
    }
    let want_emb = expected_ranges(&store.join(&emb_key), &grid, &wanted);
    let scale_wanted: BTreeSet<Vec<u64>> = wanted.iter().map(|w| w[..3].to_vec()).collect();
    let want_sc = expected_ranges(&store.join(&sc_key), &grid[..3], &scale_wanted);
    assert_eq!(merged(by_key[&emb_key].clone()), merged(want_emb.clone()));
    assert_eq!(merged(by_key[&sc_key].clone()), merged(want_sc.clone()));
    // No byte of a shard read twice.
    let total = |r: &[(u64, u64)]| r.iter().map(|(a, b)| b - a).sum::<u64>();
    assert_eq!(total(&by_key[&emb_key]), total(&merged(want_emb)));

    // The tool's own counter agrees with this count.
    let all_bytes: u64 = reads.iter().map(|(_, a, b)| b - a).sum();
    assert_eq!(tool_counter.bytes_read() as u64, all_bytes);
    assert_eq!(tool_counter.reads(), reads.len());
}
