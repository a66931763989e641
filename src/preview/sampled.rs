//! A picture of a band built without overviews: the embeddings' first three principal
//! components of this picture's own pixels as RGB (no data transparent).
//!
//! The picture is sampled, not averaged: each image pixel shows the band pixel at its centre.
//! Reads are per cell: when an image pixel covers about a cell or more, only the inner chunk at
//! the cell's centre is read, so the cost grows with the number of cells shown, not their size.

use std::collections::BTreeMap;

use nalgebra::DMatrix;
use rayon::prelude::*;
use zarrs::array::ArraySubset;

use super::{Image, PreviewError};
use crate::grid::{BBox, BandGrid, CHANNELS, Cell};
use crate::overview::principal_components;
use crate::zarr::MosaicStore;

/// The box around a band's built cells in a year (default: the latest year with cells).
pub fn band_cells_bbox(
    store: &MosaicStore,
    band: &str,
    year: Option<u16>,
) -> Result<BBox, PreviewError> {
    let arrays = store.band_arrays(band)?;
    let present = store.built_cells(&arrays)?;
    let cells = match year {
        Some(y) => present.get(&y),
        None => present.values().last(),
    };
    cells
        .and_then(BBox::around_cells)
        .ok_or_else(|| PreviewError::Empty(format!("band {band} has no tiles yet")))
}

/// Band pixel rows and columns covered by a box (clamped to the band).
fn pixel_window(grid: &BandGrid, bbox: &BBox) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let r0 = (((bbox.lat0.max(grid.lat_min()) - grid.lat_min()) / grid.lat_step())
        .floor()
        .max(0.0)) as usize;
    let r1 = (((bbox.lat1.min(grid.lat_max()) - grid.lat_min()) / grid.lat_step()).ceil() as usize)
        .min(grid.rows());
    let c0 = (((bbox.lon0 + 180.0) / grid.lon_step()).floor().max(0.0)) as usize;
    let c1 = (((bbox.lon1 + 180.0) / grid.lon_step()).ceil() as usize).min(grid.cols());
    (r0..r1.max(r0), c0..c1.max(c0))
}

/// (image index, dequantised vector) of sampled pixels with data.
type Samples = Vec<(usize, Vec<f32>)>;

/// Render the PCA picture of one year.
pub fn render_embeddings(
    store: &MosaicStore,
    band: &str,
    year: Option<u16>,
    bbox: Option<BBox>,
    max_width: usize,
) -> Result<(Image, u16, BBox), PreviewError> {
    let arrays = store.band_arrays(band)?;
    let grid = arrays.layout.grid.clone();
    let present = store.built_cells(&arrays)?;
    let year = match year {
        Some(y) => y,
        None => *present
            .keys()
            .last()
            .ok_or_else(|| PreviewError::Empty(format!("band {band} has no tiles yet")))?,
    };
    let cells = present.get(&year).cloned().unwrap_or_default();
    let bbox = match bbox {
        Some(b) => b,
        None => BBox::around_cells(&cells)
            .ok_or_else(|| PreviewError::Empty(format!("band {band} has no tiles in {year}")))?,
    };
    if bbox.crosses_antimeridian() {
        return Err(PreviewError::Empty(format!(
            "band {band} has no overviews, and a picture without them cannot cross the antimeridian ({bbox}): draw each side"
        )));
    }
    let (rows, cols) = pixel_window(&grid, &bbox);
    if rows.is_empty() || cols.is_empty() {
        return Err(PreviewError::Empty(format!(
            "the box does not overlap band {band}"
        )));
    }
    let scale = (cols.len() as f64 / max_width as f64).max(1.0);
    let width = (cols.len() as f64 / scale).ceil() as usize;
    let height = (rows.len() as f64 / scale).ceil() as usize;
    // Band pixel sampled by each image pixel (image row 0 = north).
    let sample_row =
        |i: usize| rows.end - 1 - (((i as f64 + 0.5) * scale) as usize).min(rows.len() - 1);
    let sample_col =
        |j: usize| cols.start + (((j as f64 + 0.5) * scale) as usize).min(cols.len() - 1);

    // Group image pixels by cell.
    let mut by_cell: BTreeMap<Cell, Vec<(usize, usize)>> = BTreeMap::new();
    for i in 0..height {
        let r = sample_row(i);
        for j in 0..width {
            let c = sample_col(j);
            let cell = grid.cell_of_pixel(r, c);
            if cells.contains(&cell) {
                by_cell.entry(cell).or_default().push((i, j));
            }
        }
    }
    let y = arrays
        .layout
        .year_index(year)
        .ok_or_else(|| PreviewError::Empty(format!("year {year} is not in band {band}")))?;
    let coarse = scale >= grid.rows_per_cell as f64 / 2.0;
    // (image index, dequantised vector) for every sampled pixel with data.
    let per_cell: Vec<Result<Samples, PreviewError>> = by_cell
        .par_iter()
        .map(|(cell, pixels)| {
            let (cr, cc) = grid.cell_origin(*cell);
            let targets: Vec<(usize, usize, usize)> = pixels
                .iter()
                .map(|&(i, j)| {
                    let (mut r, mut c) = (sample_row(i), sample_col(j));
                    if coarse {
                        // Zoomed out: every sample of the cell comes from its central inner chunk.
                        let (hr, hc) = (grid.chunk_rows / 2, grid.chunk_cols / 2);
                        r = cr + (grid.rows_per_cell / 2 / grid.chunk_rows) * grid.chunk_rows + hr;
                        c = cc + (grid.cols_per_cell / 2 / grid.chunk_cols) * grid.chunk_cols + hc;
                    }
                    (i * width + j, r, c)
                })
                .collect();
            let r0 = targets.iter().map(|t| t.1).min().expect("pixels");
            let r1 = targets.iter().map(|t| t.1).max().expect("pixels") + 1;
            let c0 = targets.iter().map(|t| t.2).min().expect("pixels");
            let c1 = targets.iter().map(|t| t.2).max().expect("pixels") + 1;
            let sub = ArraySubset::new_with_ranges(&[
                y..y + 1,
                r0 as u64..r1 as u64,
                c0 as u64..c1 as u64,
                0..CHANNELS as u64,
            ]);
            let emb: Vec<i8> = arrays
                .embeddings
                .retrieve_array_subset(&sub)
                .map_err(PreviewError::read(cell.name()))?;
            let sub = ArraySubset::new_with_ranges(&[
                y..y + 1,
                r0 as u64..r1 as u64,
                c0 as u64..c1 as u64,
            ]);
            let scales: Vec<f32> = arrays
                .scales
                .retrieve_array_subset(&sub)
                .map_err(PreviewError::read(cell.name()))?;
            let w = c1 - c0;
            Ok(targets
                .into_iter()
                .filter_map(|(k, r, c)| {
                    let p = (r - r0) * w + (c - c0);
                    let s = scales[p];
                    (!s.is_nan()).then(|| {
                        (
                            k,
                            emb[p * CHANNELS..(p + 1) * CHANNELS]
                                .iter()
                                .map(|&v| v as f32 * s)
                                .collect(),
                        )
                    })
                })
                .collect())
        })
        .collect();
    let mut samples = Vec::new();
    for r in per_cell {
        samples.extend(r?);
    }
    if samples.is_empty() {
        return Err(PreviewError::Empty(format!(
            "no data in the box for {year}"
        )));
    }
    let rgb = pca_rgb(&samples.iter().map(|s| s.1.as_slice()).collect::<Vec<_>>());
    let mut rgba = vec![0u8; width * height * 4];
    for ((k, _), c) in samples.iter().zip(rgb) {
        rgba[k * 4..k * 4 + 4].copy_from_slice(&[c[0], c[1], c[2], 255]);
    }
    Ok((
        Image {
            width,
            height,
            rgba,
        },
        year,
        bbox,
    ))
}

/// Project vectors on their first three principal components, each stretched to 0..255 between
/// its 2nd and 98th percentiles.
pub fn pca_rgb(vectors: &[&[f32]]) -> Vec<[u8; 3]> {
    let n = vectors.len();
    let d = vectors[0].len();
    // Fit on at most 20 000 evenly spaced vectors.
    let step = n.div_ceil(20_000).max(1);
    let fit: Vec<&[f32]> = vectors.iter().step_by(step).copied().collect();
    let mut mean = vec![0f64; d];
    for v in &fit {
        for (m, x) in mean.iter_mut().zip(*v) {
            *m += *x as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= fit.len() as f64);
    let mut cov = DMatrix::<f64>::zeros(d, d);
    for v in &fit {
        let c: Vec<f64> = v.iter().zip(&mean).map(|(x, m)| *x as f64 - m).collect();
        for a in 0..d {
            for b in a..d {
                cov[(a, b)] += c[a] * c[b];
            }
        }
    }
    for a in 0..d {
        for b in 0..a {
            cov[(a, b)] = cov[(b, a)];
        }
    }
    let (components, _) = principal_components(cov, 3);
    let projected: Vec<[f64; 3]> = vectors
        .iter()
        .map(|v| {
            let mut p = [0f64; 3];
            for (k, comp) in components.iter().enumerate() {
                p[k] = v
                    .iter()
                    .zip(&mean)
                    .zip(comp)
                    .map(|((x, m), c)| (*x as f64 - m) * c)
                    .sum();
            }
            p
        })
        .collect();
    let mut lo = [0f64; 3];
    let mut hi = [0f64; 3];
    for k in 0..3 {
        let mut col: Vec<f64> = projected.iter().map(|p| p[k]).collect();
        col.sort_by(f64::total_cmp);
        lo[k] = col[(col.len() - 1) * 2 / 100];
        hi[k] = col[(col.len() - 1) * 98 / 100];
    }
    projected
        .iter()
        .map(|p| {
            std::array::from_fn(|k| {
                (255.0 * ((p[k] - lo[k]) / (hi[k] - lo[k]).max(1e-12)).clamp(0.0, 1.0)).round()
                    as u8
            })
        })
        .collect()
}
