//! Item footprints: the exact outline of a set of cells, traced on the cell lattice, as
//! GeoJSON, and the smallest box around cells (crossing the antimeridian when smaller).

use std::collections::{BTreeMap, BTreeSet};

use geo::{BoundingRect, LineString, MultiPolygon, Polygon, coord};
use serde_json::{Value, json};

use crate::grid::{Cell, LAT_CELLS, LON_CELLS};

/// A lattice ring without the points where it goes straight on.
fn drop_straight_points(ring: Vec<(i32, i32)>) -> Vec<(i32, i32)> {
    let n = ring.len();
    (0..n)
        .filter(|&i| {
            let (a, b, c) = (ring[(i + n - 1) % n], ring[i], ring[(i + 1) % n]);
            (b.0 - a.0) * (c.1 - b.1) != (b.1 - a.1) * (c.0 - b.0)
        })
        .map(|i| ring[i])
        .collect()
}

/// Polygons covering exactly the given cells, in cell-index units (x = lon index, y = lat
/// index, corners at integers), exterior rings counter-clockwise and holes clockwise.
///
/// Traced on the lattice itself, exactly: every cell side with no cell beyond it is a boundary
/// edge, the edges are linked into rings, and each hole goes to the exterior of its own
/// 4-connected piece of cells. Cells touching only at a corner belong to separate polygons.
/// (A general polygon union, tried first, returned invalid polygons for ~0.1% of a
/// continent-sized mask.)
pub fn footprint_indices(cells: &BTreeSet<Cell>) -> MultiPolygon<f64> {
    type Point = (i32, i32);
    let has = |x: i32, y: i32| {
        (0..LON_CELLS as i32).contains(&x)
            && (0..LAT_CELLS as i32).contains(&y)
            && cells.contains(&Cell {
                lon_index: x as u16,
                lat_index: y as u16,
            })
    };
    // Boundary edges of the union, each directed with the cells on its left: exteriors run
    // counter-clockwise, holes clockwise. Keyed by start point (a point starts at most two).
    let mut edges: BTreeMap<Point, Vec<Point>> = BTreeMap::new();
    for c in cells {
        let (x, y) = (c.lon_index as i32, c.lat_index as i32);
        let sides = [
            ((x, y), (x + 1, y), (x, y - 1)),
            ((x + 1, y), (x + 1, y + 1), (x + 1, y)),
            ((x + 1, y + 1), (x, y + 1), (x, y + 1)),
            ((x, y + 1), (x, y), (x - 1, y)),
        ];
        for (from, to, neighbour) in sides {
            if !has(neighbour.0, neighbour.1) {
                edges.entry(from).or_default().push(to);
            }
        }
    }
    // Trace rings. Where two cells touch only at a corner, turn left: the cells stay in
    // separate rings (polygons touching at a point), so every ring is simple.
    let mut rings: Vec<Vec<Point>> = Vec::new();
    while let Some((&start, _)) = edges.iter().next() {
        let mut ring = vec![start];
        let (mut prev, mut at) = (start, start);
        loop {
            let outs = edges
                .get_mut(&at)
                .expect("boundary edges form closed rings");
            let k = if outs.len() == 1 {
                0
            } else {
                let d_in = (at.0 - prev.0, at.1 - prev.1);
                let left = (-d_in.1, d_in.0);
                outs.iter()
                    .position(|p| (p.0 - at.0, p.1 - at.1) == left)
                    .unwrap_or(0)
            };
            let next = outs.swap_remove(k);
            if outs.is_empty() {
                edges.remove(&at);
            }
            (prev, at) = (at, next);
            if at == start {
                break;
            }
            ring.push(at);
        }
        // A ring that passes a corner twice (where cells of one piece touch diagonally) is
        // split there into simple rings: an exterior and a hole touching at that point.
        let mut simple: Vec<Vec<Point>> = Vec::new();
        let mut stack: Vec<Point> = Vec::new();
        let mut seen: BTreeMap<Point, usize> = BTreeMap::new();
        for p in ring.into_iter().chain([start]) {
            if let Some(&i) = seen.get(&p) {
                let lp: Vec<Point> = stack.drain(i..).collect();
                for q in &lp {
                    seen.remove(q);
                }
                simple.push(lp);
            }
            seen.insert(p, stack.len());
            stack.push(p);
        }
        rings.extend(simple.into_iter().map(drop_straight_points));
    }
    // Twice the signed area: positive for exteriors, negative for holes.
    let area2 = |r: &[Point]| -> i64 {
        (0..r.len())
            .map(|i| {
                let (a, b) = (r[i], r[(i + 1) % r.len()]);
                a.0 as i64 * b.1 as i64 - b.0 as i64 * a.1 as i64
            })
            .sum()
    };
    // The cell left of a ring's first edge names its 4-connected piece of cells; a hole
    // belongs to the exterior of the same piece.
    let mut piece_of: BTreeMap<Cell, usize> = BTreeMap::new();
    let mut pieces = 0;
    for &c in cells {
        if piece_of.contains_key(&c) {
            continue;
        }
        let mut stack = vec![c];
        piece_of.insert(c, pieces);
        while let Some(c) = stack.pop() {
            let (x, y) = (c.lon_index as i32, c.lat_index as i32);
            for (nx, ny) in [(x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)] {
                if has(nx, ny) {
                    let n = Cell {
                        lon_index: nx as u16,
                        lat_index: ny as u16,
                    };
                    if let std::collections::btree_map::Entry::Vacant(e) = piece_of.entry(n) {
                        e.insert(pieces);
                        stack.push(n);
                    }
                }
            }
        }
        pieces += 1;
    }
    let left_cell = |r: &[Point]| {
        let (a, b) = (r[0], r[1 % r.len()]);
        let (x, y) = match (b.0 - a.0).signum() + 2 * (b.1 - a.1).signum() {
            1 => (a.0, a.1),          // east: the cell above
            2 => (a.0 - 1, a.1),      // north: the cell to the west
            -1 => (a.0 - 1, a.1 - 1), // west: the cell below
            _ => (a.0, a.1 - 1),      // south: the cell to the east
        };
        piece_of[&Cell {
            lon_index: x as u16,
            lat_index: y as u16,
        }]
    };
    let to_line = |r: &[Point]| {
        let mut pts: Vec<geo::Coord<f64>> = r
            .iter()
            .map(|&(x, y)| coord! {x: x as f64, y: y as f64})
            .collect();
        pts.push(pts[0]);
        LineString(pts)
    };
    let mut exteriors: BTreeMap<usize, LineString<f64>> = BTreeMap::new();
    let mut holes: BTreeMap<usize, Vec<LineString<f64>>> = BTreeMap::new();
    for r in &rings {
        if area2(r) > 0 {
            exteriors.insert(left_cell(r), to_line(r));
        } else {
            holes.entry(left_cell(r)).or_default().push(to_line(r));
        }
    }
    let mut parts: Vec<Polygon<f64>> = exteriors
        .into_iter()
        .map(|(piece, ext)| Polygon::new(ext, holes.remove(&piece).unwrap_or_default()))
        .collect();
    let key = |p: &Polygon<f64>| {
        p.bounding_rect()
            .map(|r| (r.min().y as i64, r.min().x as i64))
            .unwrap_or_default()
    };
    parts.sort_by_key(key);
    MultiPolygon(parts)
}

/// Longitude in degrees of a cell-column edge index (exact decimal for integer indices).
pub(super) fn edge_lon(x: f64) -> f64 {
    (x.round() as i32 - (LON_CELLS / 2) as i32) as f64 / 10.0
}

/// Latitude in degrees of a cell-row edge index.
pub(super) fn edge_lat(y: f64) -> f64 {
    (y.round() as i32 - (LAT_CELLS / 2) as i32) as f64 / 10.0
}

/// A footprint (cell-index units) as a GeoJSON geometry in degrees: a `Polygon` when it has
/// one part, else a `MultiPolygon`. Parts on both sides of the antimeridian stay separate.
pub fn footprint_geojson(footprint: &MultiPolygon<f64>) -> Value {
    let polygon = |p: &Polygon<f64>| -> Value {
        std::iter::once(p.exterior())
            .chain(p.interiors())
            .map(|ring| {
                ring.coords()
                    .map(|c| json!([edge_lon(c.x), edge_lat(c.y)]))
                    .collect::<Value>()
            })
            .collect()
    };
    if footprint.0.len() == 1 {
        json!({"type": "Polygon", "coordinates": polygon(&footprint.0[0])})
    } else {
        json!({
            "type": "MultiPolygon",
            "coordinates": footprint.0.iter().map(polygon).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footprint_merges_cells_and_keeps_holes() {
        // A 3x3 ring of cells around an empty centre, plus a separate cell.
        let mut cells = BTreeSet::new();
        for i in 0..3 {
            for j in 0..3 {
                if (i, j) != (1, 1) {
                    cells.insert(Cell::new(100 + i, 200 + j).unwrap());
                }
            }
        }
        cells.insert(Cell::new(110, 200).unwrap());
        let fp = footprint_indices(&cells);
        assert_eq!(fp.0.len(), 2);
        let ring = &fp.0[0];
        assert_eq!(ring.interiors().len(), 1);
        use geo::Area;
        assert_eq!(fp.unsigned_area(), cells.len() as f64);
        assert!(ring.exterior().is_closed());
        // Exterior counter-clockwise, hole clockwise (RFC 7946).
        assert!(ring.signed_area() > 0.0);
        let geo = footprint_geojson(&fp);
        assert_eq!(geo["type"], "MultiPolygon");
        assert_eq!(geo["coordinates"][1][0][0].as_array().unwrap().len(), 2);
    }
}

#[cfg(test)]
mod scale {
    use super::*;
    use crate::stac::coverage_image;

    /// A land-like mask over a whole year: footprints and the coverage image are exact for ~2
    /// million cells (areas and pixel counts equal the cell counts); `--nocapture` prints
    /// their times.
    #[test]
    fn a_whole_year_of_cells() {
        use geo::Area;
        let mut cells_by_band: Vec<BTreeSet<Cell>> = vec![BTreeSet::new(); 18];
        let mut n = 0;
        for lat in 0..LAT_CELLS {
            for lon in 0..LON_CELLS {
                let (x, y) = (lon as f64 / 60.0, lat as f64 / 40.0);
                let v = (x.sin() * y.cos()
                    + (2.3 * x + 0.7).sin() * (1.7 * y).sin() * 0.6
                    + (((lon as u32).wrapping_mul(2654435761) ^ (lat as u32 * 40503)) % 1000)
                        as f64
                        / 4000.0)
                    .abs();
                if v > 0.55 && lat > 300 {
                    cells_by_band[lat as usize / 100].insert(Cell::new(lon, lat).unwrap());
                    n += 1;
                }
            }
        }
        let start = std::time::Instant::now();
        let mut parts = 0;
        let mut vertices = 0;
        for cells in &cells_by_band {
            let fp = footprint_indices(cells);
            // In cell-index units every cell has area 1: the union covers exactly the cells.
            assert_eq!(fp.unsigned_area().round() as usize, cells.len());
            assert!(fp.0.iter().all(geo::Validation::is_valid));
            parts += fp.0.len();
            vertices += fp.0.iter().map(|p| p.exterior().0.len()).sum::<usize>();
            let _ = crate::grid::BBox::around_cells(cells.iter());
        }
        let footprints = start.elapsed().as_secs_f64();
        let start = std::time::Instant::now();
        let image = coverage_image(cells_by_band.iter().flatten(), 0, LAT_CELLS);
        assert_eq!(image.rgba.chunks(4).filter(|p| p[3] != 0).count(), n);
        let path = std::env::temp_dir().join("mosaic-coverage-scale.png");
        image.write_png(&path).unwrap();
        println!(
            "{n} cells in 18 bands: footprints {footprints:.2} s ({parts} polygons, {vertices} exterior vertices); coverage PNG {:.2} s, {} bytes",
            start.elapsed().as_secs_f64(),
            std::fs::metadata(&path).unwrap().len()
        );
        // The map's tiles for such a year: per zoom, the tiles touching a cell.
        let start = std::time::Instant::now();
        let zooms = crate::stac::tiles_of_cells(cells_by_band.iter().flatten(), 11);
        let counts: Vec<usize> = zooms.iter().map(|t| t.len()).collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]) && counts[11] >= n);
        println!(
            "map tiles per zoom 0-11: {counts:?}, {} in all ({:.2} s)",
            counts.iter().sum::<usize>(),
            start.elapsed().as_secs_f64()
        );
    }
}
