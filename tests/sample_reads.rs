//! `sample` reads each inner chunk its points need once per batch, several at a time, and an
//! `embeddings` chunk only where the `scales` chunk has data under one of the batch's points:
//! checked with a read log kept here (not the tool's own counter), each read resolved to an
//! inner chunk through the shard's own index, against the chunks computed here from the band's
//! grid (its metadata) and the no-data pixels decoded here from the stored `scales` (zstd).

mod common;

use common::{build, read_json, s, scratch_dir, shard_and_inner_shape, shard_index, synth};

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tessera_mosaic::sample::{SampleRequest, sample};
use tessera_mosaic::store::{Intercept, Store, count_reads};
use tessera_mosaic::zarr::MosaicStore;
use zarrs::storage::ReadableStorageTraits;

const BAND: &str = "80-90";

/// A band array's shard shape and inner chunk shape, from its `zarr.json`, whose inner chunks
/// the test decodes itself (bytes, then zstd).
fn shapes(store: &Path, array: &str) -> (Vec<u64>, Vec<u64>) {
    let meta = read_json(store.join(format!("{BAND}/{array}/zarr.json")));
    let chain: Vec<&str> = meta["codecs"][0]["configuration"]["codecs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(meta["codecs"][0]["name"], "sharding_indexed");
    assert_eq!(chain, ["bytes", "zstd"], "{array}: the chain decoded here");
    shard_and_inner_shape(&meta)
}

/// A point at a pixel centre: (band row, column) and (lon, lat) from the band's grid.
#[derive(Clone, Copy, Debug)]
struct Point {
    pixel: Option<(u64, u64)>,
    lon: f64,
    lat: f64,
}

#[test]
fn sample_reads_each_needed_chunk_once_per_batch_and_embeddings_only_under_data() {
    let d = scratch_dir("sample-reads");
    let (root, store) = (d.join("in"), d.join("store.zarr"));
    // One cell with water (landmasks), so that inner chunks hold both data and no data.
    synth(&root, "grid_-99.95_80.05", "2024")
        .args(["--landmasks", "--land-fraction", "0.5", "--seed", "5"])
        .ok();
    build(&root, &store, BAND).ok();

    // The band's grid (docs/format.md): pixel centres of rows and columns.
    let grid =
        &read_json(store.join(format!("{BAND}/zarr.json")))["attributes"]["tessera_mosaic"]["grid"];
    let field = |key: &str| grid[key].as_u64().unwrap();
    let (r_cell, c_cell) = (field("rows_per_cell"), field("cols_per_cell"));
    let first_row = field("lat_start_index") * r_cell;
    let lat_of = |row: u64| ((first_row + row) as f64 + 0.5) / (10 * r_cell) as f64 - 90.0;
    let lon_of = |col: u64| (col as f64 + 0.5) / (10 * c_cell) as f64 - 180.0;

    // The one shard pair, and each scales inner chunk decoded here.
    let (shard_shape, inner) = shapes(&store, "scales");
    let (emb_shard_shape, emb_inner) = shapes(&store, "embeddings");
    assert_eq!(
        (&emb_shard_shape[..3], &emb_inner[..3]),
        (&shard_shape[..], &inner[..])
    );
    let per = [shard_shape[1] / inner[1], shard_shape[2] / inner[2]];
    let list = |p: &Path| -> Vec<u64> {
        std::fs::read_dir(p)
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .file_name()
                    .into_string()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect()
    };
    let shard_rows = list(&store.join(format!("{BAND}/scales/c/0")));
    assert_eq!(shard_rows.len(), 1);
    let sr = shard_rows[0];
    let sc = list(&store.join(format!("{BAND}/scales/c/0/{sr}")))[0];
    let sc_key = format!("{BAND}/scales/c/0/{sr}/{sc}");
    let emb_key = format!("{BAND}/embeddings/c/0/{sr}/{sc}/0");
    let (sc_index, sc_index_range) = shard_index(&store.join(&sc_key), per[0] * per[1]);
    let (emb_index, emb_index_range) = shard_index(&store.join(&emb_key), per[0] * per[1]);
    // Scales of each stored inner chunk, keyed by its chunk indices in the band.
    let mut scales: BTreeMap<(u64, u64), Vec<f32>> = BTreeMap::new();
    let shard_bytes = std::fs::read(store.join(&sc_key)).unwrap();
    for (k, &(offset, n)) in sc_index.iter().enumerate() {
        if offset == u64::MAX {
            continue;
        }
        let raw = zstd::decode_all(&shard_bytes[offset as usize..(offset + n) as usize]).unwrap();
        let values: Vec<f32> = raw
            .chunks(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(values.len() as u64, inner[1] * inner[2]);
        let k = k as u64;
        scales.insert((sr * per[0] + k / per[1], sc * per[1] + k % per[1]), values);
    }
    let chunk_of = |(row, col): (u64, u64)| (row / inner[1], col / inner[2]);
    let scale_at = |(row, col): (u64, u64)| -> f32 {
        scales.get(&chunk_of((row, col))).map_or(f32::NAN, |v| {
            v[((row % inner[1]) * inner[2] + col % inner[2]) as usize]
        })
    };
    // Pixels of a stored chunk, with data or without.
    let pixels = |chunk: (u64, u64), data: bool| -> Vec<(u64, u64)> {
        let v = &scales[&chunk];
        (0..v.len() as u64)
            .filter(|&i| v[i as usize].is_nan() != data)
            .map(|i| {
                (
                    chunk.0 * inner[1] + i / inner[2],
                    chunk.1 * inner[2] + i % inner[2],
                )
            })
            .collect()
    };
    let full: Vec<_> = scales
        .keys()
        .filter(|&&c| pixels(c, false).is_empty())
        .copied()
        .collect();
    let mixed: Vec<_> = scales
        .keys()
        .filter(|&&c| !pixels(c, false).is_empty() && !pixels(c, true).is_empty())
        .copied()
        .collect();
    assert!(full.len() >= 2 && mixed.len() >= 2, "{full:?} {mixed:?}");
    let at = |pixel: (u64, u64)| Point {
        pixel: Some(pixel),
        lon: lon_of(pixel.1),
        lat: lat_of(pixel.0),
    };
    let (a, b, c, e) = (
        full[0],
        mixed[0],
        mixed[mixed.len() - 1],
        full[full.len() - 1],
    );
    let (a_px, b_data, b_none, c_none) = (
        pixels(a, true),
        pixels(b, true),
        pixels(b, false),
        pixels(c, false),
    );
    // A pixel of the next cell east, which has no tile (its shards are absent).
    let (row_in_cell, col_next) = (a_px[0].0, (sc + 1) * shard_shape[2] + 3);
    let outside = |lon: f64, lat: f64| Point {
        pixel: None,
        lon,
        lat,
    };
    // Batches of 4: chunk a twice in batch 1 and again in batch 2; chunk b on no data only in
    // batch 1, on data in batches 2 and 4; chunk c on no data only, in two batches; chunk e in
    // two batches; points outside the band; a cell without a tile.
    let points = vec![
        at(a_px[0]),
        at(a_px[a_px.len() / 2]),
        at(b_none[0]),
        at(c_none[0]),
        //
        at(a_px[a_px.len() - 1]),
        at(c_none[c_none.len() - 1]),
        at(b_data[0]),
        at(pixels(e, true)[1]),
        //
        outside(-99.95, 79.5),
        at((row_in_cell, col_next)),
        outside(10.0, -45.0),
        at(pixels(e, true)[2]),
        //
        at(b_data[b_data.len() - 1]),
    ];
    let batch = 4;
    let csv = d.join("points.csv");
    let mut text = String::from("lon,lat\n");
    for p in &points {
        text.push_str(&format!("{},{}\n", p.lon, p.lat));
    }
    std::fs::write(&csv, text).unwrap();

    // What the promise says, from the grid and the decoded scales: per batch, each chunk under
    // a point once; its embeddings once if one of the batch's points there has data.
    let (mut want_sc, mut want_emb) = (BTreeMap::new(), BTreeMap::new());
    let (mut groups, mut no_data, mut sampled) = (0, 0, 0);
    for part in points.chunks(batch) {
        let in_band: BTreeSet<(u64, u64)> =
            part.iter().filter_map(|p| p.pixel.map(chunk_of)).collect();
        let with_data: BTreeSet<(u64, u64)> = part
            .iter()
            .filter_map(|p| p.pixel)
            .filter(|&px| !scale_at(px).is_nan())
            .map(chunk_of)
            .collect();
        groups += in_band.len() + with_data.len();
        for ch in in_band.iter().filter(|ch| scales.contains_key(ch)) {
            *want_sc.entry(*ch).or_insert(0) += 1;
        }
        for ch in with_data {
            *want_emb.entry(ch).or_insert(0) += 1;
        }
        for px in part.iter().filter_map(|p| p.pixel) {
            if scale_at(px).is_nan() {
                no_data += 1;
            } else {
                sampled += 1;
            }
        }
    }
    // The cases are really there.
    assert_eq!((want_sc[&a], want_emb[&a]), (2, 2));
    assert_eq!((want_sc[&b], want_emb[&b]), (3, 2));
    assert_eq!((want_sc[&c], want_emb.get(&c)), (2, None));

    // Sample in-process through the logging adapter (inside the tool's own counter). Every
    // byte range read, per key. A read of chunk bytes waits (up to 30 s, in one read only) for
    // another to start while it is in flight, which only reads in parallel give: the state is
    // (reads in flight, two were in flight at once, gave up waiting).
    let opened = Store::open(s(&store)).unwrap();
    let reads = Arc::new(Mutex::new(Vec::new()));
    let overlap = Arc::new((Mutex::new((0usize, false, false)), Condvar::new()));
    let (log, sizes, rendezvous) = (reads.clone(), opened.storage.clone(), overlap.clone());
    let logged = Intercept::new(&opened)
        .on_read(move |key, ranges| {
            let Some(size) = sizes.size_key(key).unwrap() else {
                log.lock().unwrap().push((key.as_str().to_string(), 0, 0));
                return;
            };
            let ranges: Vec<_> = ranges.iter().map(|r| r.to_range(size)).collect();
            for r in &ranges {
                log.lock()
                    .unwrap()
                    .push((key.as_str().to_string(), r.start, r.end));
            }
            if key.as_str().contains("/c/") && ranges.iter().all(|r| r.end < size) {
                let (lock, wake) = &*rendezvous;
                let mut state = lock.lock().unwrap();
                state.0 += 1;
                if state.0 >= 2 {
                    state.1 = true;
                    wake.notify_all();
                }
                if !state.1 && !state.2 {
                    state = wake
                        .wait_timeout_while(state, Duration::from_secs(30), |s| !s.1)
                        .unwrap()
                        .0;
                    // Waited once in vain: the reads are one at a time; stop waiting.
                    state.2 = !state.1;
                }
                state.0 -= 1;
            }
        })
        .into_store(&opened.location);
    let (counted, tool_counter) = count_reads(&logged);
    let request = SampleRequest {
        points: csv,
        lon_col: "lon".into(),
        lat_col: "lat".into(),
        years: None,
        dequantize: false,
        out: d.join("out.parquet"),
        batch,
    };
    // Four threads whatever the machine: the promise is reads in flight together.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(4)
        .build()
        .unwrap();
    let summary = pool
        .install(|| sample(&MosaicStore { store: counted }, &request, &|_, _| {}))
        .unwrap();
    assert!(
        overlap.0.lock().unwrap().1,
        "no two inner chunk reads were in flight at once"
    );

    // Each read resolved to an inner chunk (or the index) through the shard's own index.
    let reads = reads.lock().unwrap().clone();
    let resolve = |index: &[(u64, u64)], start: u64, end: u64| -> Option<(u64, u64)> {
        let k = index
            .iter()
            .position(|&(o, n)| o != u64::MAX && (o, o + n) == (start, end))?
            as u64;
        Some((sr * per[0] + k / per[1], sc * per[1] + k % per[1]))
    };
    let absent_key = format!("{BAND}/scales/c/0/{sr}/{}", sc + 1);
    assert!(!store.join(&absent_key).exists());
    assert!(reads.iter().any(|(k, _, _)| *k == absent_key), "{reads:?}");
    let (mut got_sc, mut got_emb) = (BTreeMap::new(), BTreeMap::new());
    for (key, start, end) in &reads {
        if key.ends_with("zarr.json") {
            continue;
        }
        let (index, index_range, got) = if *key == sc_key {
            (&sc_index, sc_index_range, &mut got_sc)
        } else if *key == emb_key {
            (&emb_index, emb_index_range, &mut got_emb)
        } else {
            // Only the tile-less cell's absent scales shard may be asked for.
            assert!(
                *key == absent_key && (*start, *end) == (0, 0),
                "unexpected read of {key} {start}..{end}"
            );
            continue;
        };
        if (*start, *end) == index_range {
            continue;
        }
        let chunk = resolve(index, *start, *end)
            .unwrap_or_else(|| panic!("{key}: bytes {start}..{end} are not one inner chunk"));
        *got.entry(chunk).or_insert(0) += 1;
    }
    assert_eq!(got_sc, want_sc, "scales inner chunk reads");
    assert_eq!(got_emb, want_emb, "embeddings inner chunk reads");

    // The tool's own figures agree with this log and with the decoded scales.
    assert_eq!(summary.chunks_read, groups);
    assert_eq!(summary.outside, 2);
    assert_eq!((summary.sampled, summary.no_data), (sampled, no_data));
    let all_bytes: u64 = reads.iter().map(|(_, a, b)| b - a).sum();
    assert_eq!(tool_counter.bytes_read() as u64, all_bytes);
}
