//! Placement: for every output pixel of a cell, the source pixel of the cell's tile it copies.
//!
//! Nearest neighbour: the output pixel centre (lat, lon) is projected to the tile's UTM CRS and
//! the source pixel containing that point is chosen. The exact answer needs PROJ for every
//! pixel; instead PROJ is evaluated on a coarse lattice of output pixels and interpolated
//! bilinearly, with an error bound measured per cell. Any pixel whose interpolated position lies
//! within the bound of a source pixel edge is redone exactly with PROJ, so the result equals the
//! exact one for every pixel (a test compares them on every pixel of cells at many latitudes).
//!
//! Error bound: bilinear interpolation of a smooth f over a lattice rectangle errs by about
//! `x(h-x) f_xx / 2 + y(k-y) f_yy / 2`. The two terms are measured separately at the midpoints
//! of each rectangle's bottom and left edges (where one term vanishes and the other peaks) and
//! summed; the bound is twice that sum plus 1 micrometre for rounding. Second derivatives vary
//! by well under 1% across a 0.1-degree cell, so the factor 2 is a wide margin.

use crate::grid::{BandGrid, GeometryError, PIXEL_M, TileGeometry, UtmProjection};

/// Marks an output pixel with no source pixel (outside the tile).
pub const NO_SOURCE: u32 = u32::MAX;

/// Output pixels between PROJ lattice nodes.
const NODE_STEP: usize = 32;

/// Where each output pixel of a cell comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementMap {
    /// Output rows (R), south to north.
    pub rows: usize,
    /// Output columns (C), west to east.
    pub cols: usize,
    /// Per output pixel (row-major, row 0 = south): source index `r * W + c`, or [`NO_SOURCE`].
    pub source: Vec<u32>,
    /// Pixels recomputed exactly because their approximate position was too close to an edge.
    pub exact_fallbacks: usize,
    /// The error bound used, metres.
    pub error_bound_m: f64,
}

/// Output pixel centres of a cell: (lons of its columns, lats of its rows, south first).
pub fn cell_pixel_centres(grid: &BandGrid, tile: &TileGeometry) -> (Vec<f64>, Vec<f64>) {
    let (r0, c0) = grid.cell_origin(tile.cell);
    let lons = (0..grid.cols_per_cell)
        .map(|c| grid.col_lon(c0 + c))
        .collect();
    let lats = (0..grid.rows_per_cell)
        .map(|r| grid.row_lat(r0 + r))
        .collect();
    (lons, lats)
}

/// The source pixel index holding a UTM position, or [`NO_SOURCE`].
fn source_index(tile: &TileGeometry, e: f64, n: f64) -> u32 {
    match tile.pixel_at(e, n) {
        Some((r, c)) => (r * tile.width + c) as u32,
        None => NO_SOURCE,
    }
}

/// Exact placement: PROJ for every output pixel. The reference for tests and `verify`.
pub fn place_cell_exact(
    grid: &BandGrid,
    tile: &TileGeometry,
    proj: &UtmProjection,
) -> Result<PlacementMap, GeometryError> {
    let (lons, lats) = cell_pixel_centres(grid, tile);
    let mut source = Vec::with_capacity(lons.len() * lats.len());
    for &lat in &lats {
        for &lon in &lons {
            let (e, n) = proj.forward(lon, lat)?;
            source.push(source_index(tile, e, n));
        }
    }
    Ok(PlacementMap {
        rows: lats.len(),
        cols: lons.len(),
        source,
        exact_fallbacks: lons.len() * lats.len(),
        error_bound_m: 0.0,
    })
}

/// Indices of lattice nodes along an axis of `n` pixels: every `NODE_STEP`, plus the last.
fn node_indices(n: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).step_by(NODE_STEP).collect();
    if *v.last().expect("n > 0") != n - 1 {
        v.push(n - 1);
    }
    v
}

/// The lattice interval holding pixel `v`: (node index, next node index, fraction).
fn interval(nodes: &[usize], v: usize) -> (usize, usize, f64) {
    if nodes.len() == 1 {
        return (0, 0, 0.0);
    }
    let i = (v / NODE_STEP).min(nodes.len() - 2);
    let (a, b) = (nodes[i], nodes[i + 1]);
    (i, i + 1, (v - a) as f64 / (b - a) as f64)
}

/// Fast placement, equal to [`place_cell_exact`] for every pixel.
pub fn place_cell(
    grid: &BandGrid,
    tile: &TileGeometry,
    proj: &UtmProjection,
) -> Result<PlacementMap, GeometryError> {
    let (lons, lats) = cell_pixel_centres(grid, tile);
    let (rows, cols) = (lats.len(), lons.len());
    let node_r = node_indices(rows);
    let node_c = node_indices(cols);
    let nc = node_c.len();
    // Exact positions at the lattice nodes.
    let mut nodes = Vec::with_capacity(node_r.len() * nc);
    for &r in &node_r {
        for &c in &node_c {
            nodes.push(proj.forward(lons[c], lats[r])?);
        }
    }
    let node = |i: usize, j: usize| nodes[i * nc + j];
    let lerp =
        |a: (f64, f64), b: (f64, f64), t: f64| (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);

    // Error bound from the midpoints of bottom edges (lon term) and left edges (lat term).
    let (mut err_lon, mut err_lat) = (0.0f64, 0.0f64);
    for i in 0..node_r.len() {
        for j in 0..nc {
            if j + 1 < nc && node_c[j + 1] - node_c[j] >= 2 {
                let cm = (node_c[j] + node_c[j + 1]) / 2;
                let t = (cm - node_c[j]) as f64 / (node_c[j + 1] - node_c[j]) as f64;
                let approx = lerp(node(i, j), node(i, j + 1), t);
                let exact = proj.forward(lons[cm], lats[node_r[i]])?;
                err_lon = err_lon
                    .max((approx.0 - exact.0).abs())
                    .max((approx.1 - exact.1).abs());
            }
            if i + 1 < node_r.len() && node_r[i + 1] - node_r[i] >= 2 {
                let rm = (node_r[i] + node_r[i + 1]) / 2;
                let t = (rm - node_r[i]) as f64 / (node_r[i + 1] - node_r[i]) as f64;
                let approx = lerp(node(i, j), node(i + 1, j), t);
                let exact = proj.forward(lons[node_c[j]], lats[rm])?;
                err_lat = err_lat
                    .max((approx.0 - exact.0).abs())
                    .max((approx.1 - exact.1).abs());
            }
        }
    }
    let bound_m = 2.0 * (err_lon + err_lat) + 1e-6;
    let bound_px = bound_m / PIXEL_M;

    let mut source = vec![NO_SOURCE; rows * cols];
    let mut fallbacks = 0;
    let (w, h) = (tile.width as f64, tile.height as f64);
    let col_intervals: Vec<(usize, usize, f64)> = (0..cols).map(|c| interval(&node_c, c)).collect();
    let mut row_nodes = vec![(0.0, 0.0); nc];
    for r in 0..rows {
        // Interpolate the lattice columns to this row once; each pixel then needs one lerp.
        let (i, i1, ty) = interval(&node_r, r);
        for (j, p) in row_nodes.iter_mut().enumerate() {
            *p = lerp(node(i, j), node(i1, j), ty);
        }
        for c in 0..cols {
            let (j, j1, tx) = col_intervals[c];
            let (e, n) = lerp(row_nodes[j], row_nodes[j1], tx);
            let x = (e - tile.origin_e) / PIXEL_M;
            let y = (tile.origin_n - n) / PIXEL_M;
            let near_edge = (x - x.round()).abs() <= bound_px || (y - y.round()).abs() <= bound_px;
            source[r * cols + c] = if near_edge {
                fallbacks += 1;
                let (e, n) = proj.forward(lons[c], lats[r])?;
                source_index(tile, e, n)
            } else if x < 0.0 || y < 0.0 || x >= w || y >= h {
                NO_SOURCE
            } else {
                (y as usize * tile.width + x as usize) as u32
            };
        }
    }
    Ok(PlacementMap {
        rows,
        cols,
        source,
        exact_fallbacks: fallbacks,
        error_bound_m: bound_m,
    })
}
