//! The fast placement equals exact PROJ placement on every pixel, and no source pixel inside a
//! cell is skipped, for cells at many latitudes, both hemispheres, zone edges and the
//! antimeridian.

use tessera_mosaic::grid::BandGrid;
use tessera_mosaic::grid::BandsConfig;
use tessera_mosaic::grid::Cell;
use tessera_mosaic::grid::{PIXEL_M, TileGeometry, UtmProjection, UtmZone};
use tessera_mosaic::placement::{NO_SOURCE, place_cell, place_cell_exact};

const CELLS: &[&str] = &[
    "grid_0.05_0.05",      // equator, 3 degrees from the central meridian
    "grid_2.95_-0.05",     // straddles the central meridian, south of the equator
    "grid_5.95_30.05",     // zone edge
    "grid_6.05_30.05",     // other side of the zone edge
    "grid_0.85_49.95",     // fixture tile
    "grid_76.15_-59.75",   // southern hemisphere
    "grid_-143.25_79.05",  // high latitude
    "grid_-99.95_80.05",   // 80N, 80-90 band
    "grid_179.95_65.05",   // antimeridian, east side
    "grid_-179.95_-35.05", // antimeridian, west side, south
];

/// A cell by name, its band's grid, its UTM projection and its tile's geometry.
fn cell_setup(name: &str, config: &BandsConfig) -> (Cell, BandGrid, UtmProjection, TileGeometry) {
    let cell = Cell::parse_name(name).unwrap();
    let band = config.band_of_lat_index(cell.lat_index).unwrap();
    let grid = BandGrid::for_band(band, config).unwrap();
    let proj = UtmProjection::new(UtmZone::for_cell(cell)).unwrap();
    let tile = TileGeometry::with_projection(cell, &proj).unwrap();
    (cell, grid, proj, tile)
}

#[test]
fn fast_placement_equals_exact_proj_on_every_pixel() {
    let config = BandsConfig::default();
    for name in CELLS {
        let (_, grid, proj, tile) = cell_setup(name, &config);
        let fast = place_cell(&grid, &tile, &proj).unwrap();
        let exact = place_cell_exact(&grid, &tile, &proj).unwrap();
        let differing = fast
            .source
            .iter()
            .zip(&exact.source)
            .filter(|(a, b)| a != b)
            .count();
        eprintln!(
            "{name}: {} x {} pixels, bound {:.2e} m, {} exact fallbacks ({:.3}%), {differing} differ",
            fast.rows,
            fast.cols,
            fast.error_bound_m,
            fast.exact_fallbacks,
            100.0 * fast.exact_fallbacks as f64 / fast.source.len() as f64
        );
        assert_eq!(differing, 0, "{name}");
        assert!(
            fast.error_bound_m < 0.05,
            "{name}: bound {}",
            fast.error_bound_m
        );
        assert!(
            fast.exact_fallbacks * 100 < fast.source.len(),
            "{name}: too many fallbacks"
        );
    }
}

#[test]
fn no_source_pixel_inside_a_cell_is_skipped() {
    let config = BandsConfig::default();
    for name in CELLS {
        let (cell, grid, proj, tile) = cell_setup(name, &config);
        let map = place_cell(&grid, &tile, &proj).unwrap();
        let mut hit = vec![false; tile.height * tile.width];
        for &s in &map.source {
            if s != NO_SOURCE {
                hit[s as usize] = true;
            }
        }
        let (lon0, lat0) = (cell.lon_min(), cell.lat_min());
        let inside = |e: f64, n: f64| {
            let (lon, lat) = proj.inverse(e, n).unwrap();
            lon > lon0 && lon < lon0 + 0.1 && lat > lat0 && lat < lat0 + 0.1
        };
        let (mut interior, mut missed) = (0, 0);
        for r in 0..tile.height {
            for c in 0..tile.width {
                let e0 = tile.origin_e + PIXEL_M * c as f64;
                let n0 = tile.origin_n - PIXEL_M * r as f64;
                let corners = [
                    (e0, n0),
                    (e0 + PIXEL_M, n0),
                    (e0, n0 - PIXEL_M),
                    (e0 + PIXEL_M, n0 - PIXEL_M),
                ];
                if corners.iter().all(|&(e, n)| inside(e, n)) {
                    interior += 1;
                    if !hit[r * tile.width + c] {
                        missed += 1;
                    }
                }
            }
        }
        eprintln!("{name}: {interior} interior source pixels, {missed} skipped");
        assert!(interior > tile.height * tile.width / 2);
        assert_eq!(missed, 0, "{name}");
    }
}
