//! Tile geometry against the PROJ-computed reference fixture (copied from
//! `../shared/fixtures/tile_geometry.csv`): EPSG and size exact, origin within 1 mm.

use tessera_mosaic::grid::Cell;
use tessera_mosaic::grid::TileGeometry;

#[test]
fn every_fixture_row_matches() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tile_geometry.csv"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut rows = 0;
    let mut worst: f64 = 0.0;
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let cell = Cell::parse_name(f[0]).unwrap();
        let g = TileGeometry::for_cell(cell).unwrap();
        let epsg: u32 = f[1].parse().unwrap();
        let (e, n): (f64, f64) = (f[2].parse().unwrap(), f[3].parse().unwrap());
        let (h, w): (usize, usize) = (f[4].parse().unwrap(), f[5].parse().unwrap());
        assert_eq!(g.epsg(), epsg, "{line}");
        assert_eq!((g.height, g.width), (h, w), "{line}");
        // The fixture has 4 decimals: allow its rounding on top of 1 mm.
        assert!(
            (g.origin_e - e).abs() <= 0.001,
            "{line}: origin_e {}",
            g.origin_e
        );
        assert!(
            (g.origin_n - n).abs() <= 0.001,
            "{line}: origin_n {}",
            g.origin_n
        );
        worst = worst
            .max((g.origin_e - e).abs())
            .max((g.origin_n - n).abs());
        rows += 1;
    }
    assert_eq!(rows, 60);
    eprintln!("60 fixture tiles match; worst origin difference {worst:.6} m");
}
