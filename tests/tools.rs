//! `mosaic verify`, `query` and `preview` on a built sample: results checked, not just exit codes.

mod common;

use common::{Mosaic, build, copy_dir, stdout, synth, verify, words_after};

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Two tiles at 80N in two years, built into band 80-90 (landmasks on).
fn sample() -> &'static (PathBuf, PathBuf) {
    static SAMPLE: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let d =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("tools-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let root = d.join("in");
        let store = d.join("store.zarr");
        synth(&root, "grid_-99.95_80.05,grid_-99.85_80.05", "2023,2024")
            .args(["--landmasks", "--land-fraction", "0.7"])
            .ok();
        build(&root, &store, "80-90").ok();
        (root, store)
    })
}

/// `mosaic verify` of band 80-90 with `args`, which must find problems (exit 1): its stdout.
fn verify_finds_problems(root: &Path, store: &Path, args: [&str; 2]) -> String {
    stdout(&verify(root, store, "80-90").args(args).exits(1))
}

/// `mosaic preview --store STORE --band 80-90`.
fn preview(store: &Path) -> Mosaic {
    Mosaic::new(["preview", "--store"])
        .arg(store)
        .args(["--band", "80-90"])
}

/// A PNG file's frame info and pixels.
fn read_png(path: &Path) -> (png::OutputInfo, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    (info, buf)
}

/// `mosaic query --store STORE --lat LAT --lon LON`.
fn query(store: &Path, lat: &str, lon: &str) -> Mosaic {
    Mosaic::new(["query", "--store"])
        .arg(store)
        .args(["--lat", lat, "--lon", lon])
}

#[test]
fn verify_passes_on_a_good_store_and_fails_on_a_corrupted_shard() {
    let (root, store) = sample();
    let out = verify(root, store, "80-90").arg("--full").run();
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("4 tiles") && text.contains(" 0 mismatches"),
        "{text}"
    );

    // Swap two valid shards: every byte decodes, but the pixels are wrong.
    let bad = store.with_extension("swapped.zarr");
    let _ = std::fs::remove_dir_all(&bad);
    copy_dir(store, &bad);
    let a = bad.join("80-90/embeddings/c/1/0/800/0");
    let b = bad.join("80-90/embeddings/c/1/0/801/0");
    let (da, db) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    std::fs::write(&a, db).unwrap();
    std::fs::write(&b, da).unwrap();
    let text = verify_finds_problems(root, &bad, ["--sample", "500"]);
    assert!(
        text.contains("mismatch 2024 grid_-99.95_80.05 row"),
        "{text}"
    );
    assert!(text.contains("FAILED"));

    // Shards of a cell with no input tile (copies of a good tile's, so they decode).
    let planted = ["80-90/embeddings/c/0/0/805/0", "80-90/scales/c/0/0/805"];
    for (key, from) in planted
        .iter()
        .zip(["80-90/embeddings/c/0/0/800/0", "80-90/scales/c/0/0/800"])
    {
        let to = bad.join(key);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(bad.join(from), to).unwrap();
    }
    // Flip bytes inside a shard's compressed data: reported, not a crash.
    let c = bad.join("80-90/scales/c/0/0/800");
    let mut bytes = std::fs::read(&c).unwrap();
    for x in bytes.iter_mut().skip(100).take(64) {
        *x ^= 0x5A;
    }
    std::fs::write(&c, bytes).unwrap();
    // And delete one shard: the tile is missing.
    std::fs::remove_file(bad.join("80-90/scales/c/0/0/801")).unwrap();
    let text = verify_finds_problems(root, &bad, ["--years", "2023"]);
    assert!(
        text.contains("missing from the store: 2023 grid_-99.85_80.05"),
        "{text}"
    );
    // zstd checksums turn the flipped bytes into a read error naming the tile.
    assert!(
        text.contains("error: 2023 grid_-99.95_80.05: reading scales"),
        "{text}"
    );
    assert!(text.contains(" 2 unexpected shards"), "{text}");
    for key in planted {
        assert!(
            text.contains(&format!("shard without an input tile: {key}\n")),
            "{text}"
        );
    }
}

/// `verify` checks the overviews and colour statistics too: a level-2 object swapped with
/// another cell's (decodes, wrong pixels), another level's object with flipped bytes, and
/// another cell's statistics each fail it, naming the level or the statistics.
#[test]
fn verify_fails_on_corrupted_overviews_and_statistics() {
    let (root, store) = sample();
    let bad = store.with_extension("overviews.zarr");
    let _ = std::fs::remove_dir_all(&bad);
    copy_dir(store, &bad);
    // Year 1 (2024), the band's only cell row, cells 800 and 801.
    let key = |array: &str, lon: u32| {
        let trailing = if array.ends_with("embeddings") || array.ends_with("sums") {
            "/0"
        } else {
            ""
        };
        bad.join(format!("80-90/{array}/c/1/0/{lon}{trailing}"))
    };
    let swap = |a: &Path, b: &Path| {
        let (da, db) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
        assert_ne!(da, db);
        std::fs::write(a, db).unwrap();
        std::fs::write(b, da).unwrap();
    };
    swap(
        &key("overviews/2/embeddings", 800),
        &key("overviews/2/embeddings", 801),
    );
    let text = verify_finds_problems(root, &bad, ["--years", "2024"]);
    assert!(
        text.contains("grid_-99.95_80.05") && text.contains("overview level 2:"),
        "{text}"
    );
    assert!(text.contains("FAILED"), "{text}");

    // Restored, then level 3's scales of one cell damaged: a read error naming the level.
    copy_dir(store, &bad);
    let c = key("overviews/3/scales", 801);
    let mut bytes = std::fs::read(&c).unwrap();
    let n = bytes.len();
    for x in bytes.iter_mut().skip(n / 3).take(32) {
        *x ^= 0x5A;
    }
    std::fs::write(&c, bytes).unwrap();
    let text = verify_finds_problems(root, &bad, ["--years", "2024"]);
    assert!(
        text.contains("grid_-99.85_80.05: reading overview level 3 scales"),
        "{text}"
    );

    // Restored, then the two cells' statistics swapped: sums that the pixels do not give.
    copy_dir(store, &bad);
    swap(
        &key("colour_statistics/sums", 800),
        &key("colour_statistics/sums", 801),
    );
    let text = verify_finds_problems(root, &bad, ["--years", "2024"]);
    assert!(text.contains("colour statistics: sums["), "{text}");
    // And the good store passes (the overviews and statistics checked).
    let text = verify(root, store, "80-90").ok();
    assert!(text.contains(" 0 mismatches"), "{text}");
}

#[test]
fn preview_pngs_show_data_and_transparent_no_data() {
    let (_, store) = sample();
    let png_path = store.with_extension("preview.png");
    preview(store)
        .args(["--year", "2023", "--width", "300", "-o"])
        .arg(&png_path)
        .ok();
    let (info, buf) = read_png(&png_path);
    // Two cells side by side at 80N (222 columns each), drawn in square degrees from the
    // overviews and no finer than the finest level (ceil(222 / 4) = 56 columns per cell):
    // 0.2 x 0.1 degrees at 112 px for 0.2 degrees.
    assert_eq!((info.width, info.height), (112, 56));
    let px = buf.chunks(4);
    let transparent = px.clone().filter(|p| p[3] == 0).count();
    let opaque = px.clone().filter(|p| p[3] == 255).count();
    assert_eq!(transparent + opaque, (info.width * info.height) as usize);
    // Land fraction 0.7 with water masked: both present, land dominant.
    assert!(
        transparent > opaque / 20 && opaque > transparent,
        "{transparent} {opaque}"
    );
    // Colours vary (PCA spreads the data over the RGB cube).
    let reds: std::collections::BTreeSet<u8> = px.filter(|p| p[3] == 255).map(|p| p[0]).collect();
    assert!(reds.len() > 100);

    let cov = store.with_extension("coverage.png");
    preview(store).arg("--coverage").arg("-o").arg(&cov).ok();
    let (info, buf) = read_png(&cov);
    // Two years stacked, two cells wide, one cell tall: 2 panels of k x k squares + separator.
    let k = info.width as usize / 2;
    assert_eq!(info.height as usize, 2 * k + 2);
    let at = |x: usize, y: usize| &buf[(y * info.width as usize + x) * 4..][..3];
    assert_eq!(at(k / 2, k / 2), [64, 200, 160]);
    assert_eq!(at(k + k / 2, k + 2 + k / 2), [64, 200, 160]);
}

/// `preview --coverage` paints exactly the cells built in each year: a tile missing in one
/// year leaves its square unpainted in that year's panel, and present in the other's.
#[test]
fn coverage_leaves_a_tile_missing_in_one_year_unpainted() {
    let d = common::scratch_dir("coverage");
    let (root, store) = (d.join("in"), d.join("store.zarr"));
    let (west, east) = ("grid_-99.95_80.05", "grid_-99.85_80.05");
    synth(&root, &format!("{west},{east}"), "2023,2024").ok();
    std::fs::remove_dir_all(root.join("2024").join(east)).unwrap();
    build(&root, &store, "80-90").ok();
    let cov = d.join("coverage.png");
    preview(&store).arg("--coverage").arg("-o").arg(&cov).ok();
    let (info, buf) = read_png(&cov);
    // Two years stacked (2023 on top), two cells wide, one cell tall, a 2-pixel line between.
    let (w, h) = (info.width as usize, info.height as usize);
    let k = w / 2;
    assert_eq!((w, h), (2 * k, 2 * k + 2));
    let at = |x: usize, y: usize| -> [u8; 4] { buf[(y * w + x) * 4..][..4].try_into().unwrap() };
    // Every pixel of a square has one colour.
    let square = |col: usize, panel: usize| -> [u8; 4] {
        let (x0, y0) = (col * k, panel * (k + 2));
        let c = at(x0, y0);
        for y in y0..y0 + k {
            for x in x0..x0 + k {
                assert_eq!(at(x, y), c, "square {col} of panel {panel} at ({x}, {y})");
            }
        }
        c
    };
    let present = square(0, 0);
    assert_eq!(present, [64, 200, 160, 255]);
    assert_eq!(square(1, 0), present, "{east} 2023");
    assert_eq!(square(0, 1), present, "{west} 2024");
    let missing = square(1, 1);
    assert_ne!(missing, present, "{east} has no tile in 2024");
    assert_eq!(
        missing[3], 255,
        "an absent cell is drawn dark, not transparent"
    );
}

#[test]
fn query_rejects_bad_ranges_clearly() {
    let (_, store) = sample();
    let o = store.with_extension("q.npy");
    for (lat, lon, msg) in [
        ("81:80.5", "-100:-99.9", "must be less than"),
        ("95:96", "-100:-99.9", "within -90..90"),
        ("80.05:80.06", "-200:-99", "within -180..180"),
        ("10:11", "0:1", "holds no pixel"),
        ("abc:1", "0:1", "is not a number"),
    ] {
        let out = query(store, lat, lon).arg("-o").arg(&o).run();
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(msg), "{lat} {lon}: {err}");
    }
    let out = query(store, "80.01:80.02", "-99.99:-99.98")
        .arg("-o")
        .arg(store.with_extension("q.tif"))
        .run();
    assert!(
        common::stderr(&out).contains("one year"),
        "GeoTIFF needs --year"
    );
}

#[test]
fn query_reads_only_the_inner_chunks_it_needs() {
    let (_, store) = sample();
    let o = store.with_extension("small.npy");
    let text = query(store, "80.01:80.011", "-99.95:-99.949")
        .args(["--year", "2024", "-o"])
        .arg(&o)
        .ok();
    // "read N MB in K requests"
    let mut words = words_after(&text, "read ");
    let read: f64 = words.next().unwrap().parse().unwrap();
    let unit = words.next().unwrap();
    let bytes = read
        * match unit {
            "KB" => 1e3,
            "MB" => 1e6,
            "B" => 1.0,
            _ => 1e9,
        };
    let shard = std::fs::metadata(store.join("80-90/embeddings/c/1/0/800/0"))
        .unwrap()
        .len() as f64;
    assert!(
        bytes < shard / 5.0,
        "read {bytes} bytes, a shard is {shard}"
    );
}
