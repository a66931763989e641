//! `finalize --worker I/N` then `finalize`: the same store, byte for byte, as one `finalize`
//! whatever N and whatever order the shares ran in; the final step reads one partial per
//! block and no cell's statistics or overview; a build removes the partials made from the
//! cells it writes; a partial older than the cells it summed is found and made again.

mod common;

use common::{Mosaic, assert_same_files, build, copy_dir, scratch_dir, synth};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tessera_mosaic::build::finalize_store;
use tessera_mosaic::store::{Intercept, Store};
use tessera_mosaic::zarr::MosaicStore;

/// A cluster of 12 neighbouring cells in one block (64 x 64 cells), four cells around a
/// block corner (lon -0.8, lat 82.8: four blocks), scattered cells, and one cell of band
/// 70-80, so that coarse chunks straddle blocks and the basis folds two bands.
const TILES: &str = "grid_10.05_80.05,grid_10.15_80.05,grid_10.25_80.05,grid_10.35_80.05,\
grid_10.05_80.15,grid_10.15_80.15,grid_10.25_80.15,grid_10.35_80.15,\
grid_10.05_80.25,grid_10.15_80.25,grid_10.25_80.25,grid_10.35_80.25,\
grid_-0.85_82.75,grid_-0.75_82.85,grid_-0.85_82.85,grid_-0.75_82.75,\
grid_-99.95_85.05,grid_120.55_81.35,grid_-0.85_79.95";

/// Input with TILES for `years`, and a store of both bands built by `--worker 1/1` (every
/// cell, nothing finalized).
fn built_unfinalized(d: &Path, years: &str) -> (PathBuf, PathBuf) {
    let input = d.join("in");
    synth(&input, TILES, years).ok();
    let store = d.join("base.zarr");
    for band in ["70-80", "80-90"] {
        build(&input, &store, band).args(["--worker", "1/1"]).ok();
    }
    (input, store)
}

fn finalize(store: &Path) -> Mosaic {
    Mosaic::new(["finalize", "--store"]).arg(store)
}

/// Blocks made, partials read as they were, and stale partials, summed over the years.
fn counts(stdout: &str) -> (usize, usize, usize) {
    let sum = |marker: &str| -> usize {
        stdout
            .lines()
            .filter(|l| l.starts_with("year "))
            .map(|l| {
                // "... N blocks made ..., M partials read as they were, K stale; ..."
                let words: Vec<&str> = l.split_whitespace().collect();
                let at = words.windows(2).position(|w| w[1] == marker).unwrap();
                words[at]
                    .trim_matches(|c: char| !c.is_ascii_digit())
                    .parse::<usize>()
                    .unwrap()
            })
            .sum()
    };
    (sum("blocks"), sum("partials"), sum("stale;"))
}

#[test]
fn finalize_split_one_three_and_seven_ways_equals_one_finalize() {
    let d = scratch_dir("finalize-shares");
    let (_, base) = built_unfinalized(&d, "2023,2024");
    let reference = d.join("reference.zarr");
    copy_dir(&base, &reference);
    let one = finalize(&reference).ok();
    let (blocks, _, _) = counts(&one);
    assert!(blocks >= 10, "{one}");
    for level in 5..=9 {
        let chunks = reference.join(format!("80-90/overviews/{level}/scales/c"));
        assert!(!walk(&chunks).is_empty(), "no chunks of level {level}");
    }
    for order in [vec![1], vec![3, 1, 2], vec![7, 2, 5, 1, 6, 3, 4]] {
        let n = order.len();
        let store = d.join(format!("split-{n}.zarr"));
        copy_dir(&base, &store);
        let mut made = 0;
        let mut busy = 0;
        for i in &order {
            let out = finalize(&store)
                .args(["--worker", &format!("{i}/{n}")])
                .ok();
            let (m, _, _) = counts(&out);
            made += m;
            busy += usize::from(m > 0);
        }
        assert_eq!(made, blocks, "the shares together make every block once");
        if n > 1 {
            assert!(busy >= 2, "{busy} of {n} shares made blocks");
        }
        let reduce = finalize(&store).ok();
        assert_eq!(
            counts(&reduce),
            (0, blocks, 0),
            "the final step reads every partial and makes none: {reduce}"
        );
        assert_same_files(&reference, &store);
        // A share run again finds its partials matching the store: it makes nothing.
        let again = finalize(&store).args(["--worker", &format!("1/{n}")]).ok();
        assert_eq!(counts(&again).0, 0, "{again}");
        assert_same_files(&reference, &store);
    }
}

#[test]
fn the_final_step_reads_one_partial_per_block_and_no_cell() {
    let d = scratch_dir("finalize-reads");
    let (_, store) = built_unfinalized(&d, "2024");
    for i in 1..=3 {
        finalize(&store).args(["--worker", &format!("{i}/3")]).ok();
    }
    // The partials, from the folder itself.
    let partials: Vec<String> = walk(&store.join("_mosaic/finalize"))
        .into_iter()
        .map(|p| p.strip_prefix(&store).unwrap().display().to_string())
        .collect();
    let statistics_objects = walk(&store.join("80-90/colour_statistics"))
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "c"))
        .count();
    assert!(
        partials.len() * 2 <= statistics_objects,
        "{} partials, {statistics_objects} statistics objects: the test needs blocks of many cells",
        partials.len()
    );

    let reads: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = reads.clone();
    let opened = Store::open_local(&store).unwrap();
    let logged = Intercept::new(&opened)
        .on_read(move |key, _| log.lock().unwrap().push(key.as_str().to_string()))
        .into_store(&opened.location);
    let report = finalize_store(&MosaicStore { store: logged }, |_| {}, &|_| {}).unwrap();
    assert_eq!(report.bases.len(), 1);
    let reads = reads.lock().unwrap().clone();
    let mut per_key: BTreeMap<&str, usize> = BTreeMap::new();
    for k in &reads {
        *per_key.entry(k.as_str()).or_default() += 1;
    }
    for k in per_key.keys() {
        assert!(
            k.ends_with("zarr.json") || k.starts_with("_mosaic/finalize/"),
            "the final step read {k}"
        );
    }
    let partials_read: Vec<&str> = per_key
        .iter()
        .filter(|(k, _)| k.starts_with("_mosaic/finalize/"))
        .map(|(k, n)| {
            assert_eq!(*n, 1, "{k} read {n} times");
            *k
        })
        .collect();
    assert_eq!(partials_read, partials, "every partial read, once");
}

#[test]
fn a_partial_older_than_its_cells_is_found_and_made_again() {
    let d = scratch_dir("finalize-stale");
    let (input, store) = built_unfinalized(&d, "2024");
    for i in 1..=2 {
        finalize(&store).args(["--worker", &format!("{i}/2")]).ok();
    }
    finalize(&store).ok();
    // A late tile in the cluster's block (its statistics), then one in the next block east,
    // whose cells the cluster block's coarse chunks reach (a level-9 chunk of 22 cells starts
    // at lon index 1914, in the cluster's block 26-29, and holds 1920): each built after the
    // partials. The build removes the cluster block's partial before it writes the cell; put
    // back (as a build of an earlier version left it), the final step finds it stale.
    let cluster = store.join("_mosaic/finalize/2024/80-90/26-29.bin");
    for (late, why) in [
        ("grid_10.45_80.05", "summed the statistics of"),
        ("grid_12.05_80.05", "made its overview chunks from"),
    ] {
        synth(&input, late, "2024").ok();
        let partial = std::fs::read(&cluster).unwrap();
        build(&input, &store, "80-90")
            .args(["--worker", "1/1"])
            .ok();
        assert!(!cluster.exists(), "{late}: the build left 26-29.bin");
        std::fs::write(&cluster, partial).unwrap();
        let out = finalize(&store).run();
        assert!(out.status.success());
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        let (made, _, stale) = counts(&stdout);
        assert!(stale >= 1 && made >= stale, "{stdout}");
        assert!(
            stderr.lines().any(|l| l.starts_with("stale partial")
                && l.contains(why)
                && l.contains(&format!("{late} built since"))),
            "{stderr}"
        );
    }
    // What a finalize of the whole input, from scratch, gives.
    let fresh = d.join("fresh.zarr");
    for band in ["70-80", "80-90"] {
        build(&input, &fresh, band).args(["--worker", "1/1"]).ok();
    }
    finalize(&fresh).ok();
    assert_same_files(&fresh, &store);
    let again = finalize(&store).ok();
    assert_eq!(counts(&again).0, 0, "{again}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}
