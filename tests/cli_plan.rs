//! `mosaic synth` at real size and `mosaic plan` on a tree spanning two bands, with
//! malformed names and files that must be reported, not fatal.

mod common;

use common::{Mosaic, read_json, scratch_dir, stderr, stdout, synth};

use tessera_mosaic::grid::Cell;
use tessera_mosaic::grid::TileGeometry;
use tessera_mosaic::input::npy;

/// Rows of the shared PROJ fixture: name -> (height, width).
fn fixture_sizes() -> std::collections::HashMap<String, (usize, usize)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tile_geometry.csv"
    ))
    .unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].to_string(),
                (f[4].parse().unwrap(), f[5].parse().unwrap()),
            )
        })
        .collect()
}

/// `mosaic plan --input ROOT`.
fn plan(root: &std::path::Path) -> Mosaic {
    Mosaic::new(["plan", "--input"]).arg(root)
}

#[test]
fn synth_then_plan_two_bands_with_bad_inputs() {
    let dir = scratch_dir("plan");
    let root = dir.join("tessera");
    // Two tiles in band 70-80 and two in 80-90, all rows of the PROJ fixture.
    let tiles = "grid_-143.25_79.05,grid_110.95_76.85,grid_-99.95_80.05,grid_168.35_80.05";
    synth(&root, tiles, "2023,2024").args(["--seed", "7"]).ok();

    // Real size: every tile has exactly the fixture's shape and 128 channels.
    let sizes = fixture_sizes();
    for name in tiles.split(',') {
        let (h, w) = sizes[name];
        let header = npy::read_header(&root.join(format!("2024/{name}/{name}.npy"))).unwrap();
        assert_eq!(header.shape, vec![h, w, 128], "{name}");
        let scales =
            npy::read_header(&root.join(format!("2023/{name}/{name}_scales.npy"))).unwrap();
        assert_eq!(scales.shape, vec![h, w], "{name}");
    }

    // One tile missing in 2023; malformed inputs that must be reported.
    std::fs::remove_dir_all(root.join("2023/grid_168.35_80.05")).unwrap();
    std::fs::create_dir_all(root.join("2024/grid_1.23_45.67")).unwrap();
    std::fs::create_dir_all(root.join("2024/grid_10.05")).unwrap();
    let bad = root.join("2024/grid_20.05_75.05");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(
        bad.join("grid_20.05_75.05.npy"),
        b"\x93NUMPY\x01\x00garbage",
    )
    .unwrap();
    std::fs::write(
        bad.join("grid_20.05_75.05_scales.npy"),
        npy::encode_header(npy::NpyDtype::Float32, &[2, 2]),
    )
    .unwrap();

    let json = dir.join("plan.json");
    let out = plan(&root).arg("--json").arg(&json).run();
    assert!(out.status.success(), "plan must not fail on bad inputs");
    let (stdout, stderr) = (stdout(&out), stderr(&out));
    assert!(
        stdout.contains("70-80") && stdout.contains("80-90"),
        "{stdout}"
    );
    assert!(
        stderr.contains("grid_1.23_45.67") && stderr.contains("not a cell centre"),
        "{stderr}"
    );
    assert!(stderr.contains("grid_10.05"), "{stderr}");
    assert!(stderr.contains("grid_20.05_75.05.npy"), "{stderr}");

    let plan = read_json(&json);
    let bands = plan["bands"].as_array().unwrap();
    assert_eq!(bands.len(), 2);
    let b70 = &bands[0];
    let b80 = &bands[1];
    assert_eq!(b70["grid"]["name"], "70-80");
    assert_eq!(b70["tiles_per_year"]["2023"], 2);
    assert_eq!(b70["tiles_per_year"]["2024"], 2);
    assert_eq!(b80["grid"]["name"], "80-90");
    assert_eq!(b80["tiles_per_year"]["2023"], 1);
    assert_eq!(b80["tiles_per_year"]["2024"], 2);
    for b in [b70, b80] {
        let c = b["grid"]["cols_per_cell"].as_u64().unwrap();
        let shape: Vec<u64> = serde_json::from_value(b["array_shape"].clone()).unwrap();
        assert_eq!(shape, vec![2, 100 * 1170, 3600 * c, 128]);
        assert_eq!(b["shard_shape"], serde_json::json!([1, 1170, c, 128]));
        assert_eq!(b["cells_present"], 2);
    }
    assert_eq!(plan["problems"].as_array().unwrap().len(), 3);
}

#[test]
fn max_stretch_proposes_valid_bands() {
    let dir = scratch_dir("stretch");
    let root = dir.join("t");
    synth(&root, "grid_-99.95_80.05,grid_110.95_76.85", "2024").ok();
    let stdout = plan(&root).args(["--max-stretch", "1.25"]).ok();
    let toml_text = stdout.split("# proposed bands.toml").nth(1).unwrap();
    let toml_text = &toml_text[toml_text.find('\n').unwrap()..];
    let path = dir.join("proposed.toml");
    std::fs::write(&path, toml_text).unwrap();
    let config = tessera_mosaic::grid::BandsConfig::load(&path).unwrap();
    // Contiguous from 76 to 81 and every band within the stretch bound.
    assert_eq!(config.bands.first().unwrap().lat_min, 76.0); // 76.85 rounded down to a degree
    assert_eq!(config.bands.last().unwrap().lat_max, 81.0);
    for w in config.bands.windows(2) {
        assert_eq!(w[0].lat_max, w[1].lat_min);
    }
    for b in &config.bands {
        let g = tessera_mosaic::grid::BandGrid::for_band(b, &config).unwrap();
        assert!(g.stretch() <= 1.25, "{} {}", b.name, g.stretch());
    }
    // Narrow bands near the pole, wider ones further south, none of a single cell throughout.
    assert!(
        config.bands.len() > 3 && config.bands.len() < 40,
        "{}",
        config.bands.len()
    );
    let widths: Vec<f64> = config.bands.iter().map(|b| b.lat_max - b.lat_min).collect();
    assert!(widths[0] > widths[widths.len() - 1], "{widths:?}");
}

#[test]
fn synth_tiles_have_the_rule_geometry_at_the_equator_and_antimeridian() {
    let dir = scratch_dir("eq");
    let root = dir.join("t");
    Mosaic::new(["synth", "--out"])
        .arg(&root)
        .args(["--bbox", "179.9,-0.1,-179.95,0.0", "--years", "2024"])
        .args(["--land-fraction", "1"])
        .ok();
    let mut n = 0;
    for entry in std::fs::read_dir(root.join("2024")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let g = TileGeometry::for_cell(Cell::parse_name(&name).unwrap()).unwrap();
        let h = npy::read_header(&root.join(format!("2024/{name}/{name}.npy"))).unwrap();
        assert_eq!(h.shape, vec![g.height, g.width, 128]);
        assert!(g.height > 1100 && g.width > 1100);
        n += 1;
    }
    assert_eq!(
        n, 2,
        "grid_179.95_-0.05 and grid_-179.95_-0.05 are the box's cells"
    );
}

#[test]
fn synth_is_deterministic_for_a_seed() {
    let dir = scratch_dir("synth-seed");
    let run = |name: &str, seed: &str| {
        let root = dir.join(name);
        synth(&root, "grid_-99.95_80.05", "2024")
            .args(["--landmasks", "--seed", seed])
            .ok();
        common::snapshot(&root)
    };
    let a = run("a", "7");
    let b = run("b", "7");
    let c = run("c", "8");
    // Same seed: the same files, byte for byte (tiles, scales and landmask).
    assert_eq!(a.len(), 3, "{:?}", a.keys().collect::<Vec<_>>());
    common::assert_same_snapshots(&a, &b);
    // Another seed: other embeddings.
    let emb = "2024/grid_-99.95_80.05/grid_-99.95_80.05.npy";
    assert_eq!(a[emb].len(), c[emb].len());
    assert!(a[emb] != c[emb], "seed 8 gave the embeddings of seed 7");
}
