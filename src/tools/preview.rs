//! `mosaic preview`: a picture of a band: the embeddings' first three principal components as
//! RGB (as TESSERA's users look at them; no data transparent), or a coverage map of which cells
//! are present per year.
//!
//! The picture is sampled, not averaged: each image pixel shows the band pixel at its centre.
//! Reads are per cell: when an image pixel covers about a cell or more, only the inner chunk at
//! the cell's centre is read, so the cost grows with the number of cells shown, not their size.

use std::collections::BTreeMap;
use std::path::Path;

use nalgebra::DMatrix;
use rayon::prelude::*;
use zarrs::array::ArraySubset;

use crate::grid::{BandGrid, CHANNELS, Cell};
use crate::overview::principal_components;
use crate::zarr::{FormatError, MosaicStore};

/// Errors of a preview.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("reading {0}: {1}")]
    Read(String, String),
    #[error("{0}")]
    Empty(String),
    #[error("cannot write {0}: {1}")]
    Write(String, String),
}

/// A lon/lat box.
#[derive(Debug, Clone, Copy)]
pub struct BBox {
    /// West.
    pub lon0: f64,
    /// South.
    pub lat0: f64,
    /// East.
    pub lon1: f64,
    /// North.
    pub lat1: f64,
}

/// An RGBA image.
pub struct Image {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// RGBA bytes, row-major, north first.
    pub rgba: Vec<u8>,
}

impl Image {
    /// Write as PNG.
    pub fn write_png(&self, path: &Path) -> Result<(), PreviewError> {
        let err = |e: String| PreviewError::Write(path.display().to_string(), e);
        let file = std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
        let mut encoder = png::Encoder::new(
            std::io::BufWriter::new(file),
            self.width as u32,
            self.height as u32,
        );
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| err(e.to_string()))?;
        writer
            .write_image_data(&self.rgba)
            .map_err(|e| err(e.to_string()))?;
        writer.finish().map_err(|e| err(e.to_string()))
    }
}

/// The box around a set of cells.
fn cells_bbox(cells: impl Iterator<Item = Cell>) -> Option<BBox> {
    let mut b: Option<BBox> = None;
    for c in cells {
        let (w, s) = (c.lon_min(), c.lat_min());
        b = Some(match b {
            None => BBox {
                lon0: w,
                lat0: s,
                lon1: w + 0.1,
                lat1: s + 0.1,
            },
            Some(b) => BBox {
                lon0: b.lon0.min(w),
                lat0: b.lat0.min(s),
                lon1: b.lon1.max(w + 0.1),
                lat1: b.lat1.max(s + 0.1),
            },
        });
    }
    b
}

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
        .and_then(|c| cells_bbox(c.iter().copied()))
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
        None => cells_bbox(cells.iter().copied())
            .ok_or_else(|| PreviewError::Empty(format!("band {band} has no tiles in {year}")))?,
    };
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
            let read_err =
                |e: zarrs::array::ArrayError| PreviewError::Read(cell.name(), e.to_string());
            let sub = ArraySubset::new_with_ranges(&[
                y..y + 1,
                r0 as u64..r1 as u64,
                c0 as u64..c1 as u64,
                0..CHANNELS as u64,
            ]);
            let emb: Vec<i8> = arrays
                .embeddings
                .retrieve_array_subset(&sub)
                .map_err(read_err)?;
            let sub = ArraySubset::new_with_ranges(&[
                y..y + 1,
                r0 as u64..r1 as u64,
                c0 as u64..c1 as u64,
            ]);
            let scales: Vec<f32> = arrays
                .scales
                .retrieve_array_subset(&sub)
                .map_err(read_err)?;
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

/// Render a coverage map: one panel per year (oldest on top), one square per cell, present
/// cells light, absent cells dark, a light line between panels.
pub fn render_coverage(
    store: &MosaicStore,
    band: &str,
    bbox: Option<BBox>,
) -> Result<(Image, Vec<u16>, BBox), PreviewError> {
    let arrays = store.band_arrays(band)?;
    let present = store.built_cells(&arrays)?;
    let years = arrays.layout.year_values();
    let bbox = match bbox {
        Some(b) => b,
        None => cells_bbox(present.values().flatten().copied())
            .ok_or_else(|| PreviewError::Empty(format!("band {band} has no tiles yet")))?,
    };
    let grid = &arrays.layout.grid;
    let lon_cells = ((bbox.lon1 - bbox.lon0) * 10.0).round().max(1.0) as usize;
    let lat0 = bbox.lat0.max(grid.lat_min());
    let lat1 = bbox.lat1.min(grid.lat_max());
    let lat_cells = ((lat1 - lat0) * 10.0).round().max(1.0) as usize;
    let k = (1024 / lon_cells).clamp(1, 32);
    let (pw, ph) = (lon_cells * k, lat_cells * k);
    let sep = 2;
    let height = years.len() * ph + (years.len().saturating_sub(1)) * sep;
    let mut rgba = vec![0u8; pw * height * 4];
    for px in rgba.chunks_mut(4) {
        px.copy_from_slice(&[200, 200, 200, 255]);
    }
    let first_lon = Cell::containing(bbox.lon0 + 0.05, lat0 + 0.05).map_or(0, |c| c.lon_index);
    let first_lat = Cell::containing(bbox.lon0 + 0.05, lat0 + 0.05).map_or(0, |c| c.lat_index);
    for (yi, year) in years.iter().enumerate() {
        let top = yi * (ph + sep);
        let cells = present.get(year);
        for a in 0..lat_cells {
            for b in 0..lon_cells {
                let cell = Cell {
                    lat_index: first_lat + a as u16,
                    lon_index: (first_lon as usize + b) as u16 % 3600,
                };
                let on = cells.is_some_and(|s| s.contains(&cell));
                let colour = if on {
                    [64, 200, 160, 255]
                } else {
                    [30, 30, 40, 255]
                };
                for dy in 0..k {
                    let row = top + (lat_cells - 1 - a) * k + dy;
                    for dx in 0..k {
                        let p = (row * pw + b * k + dx) * 4;
                        rgba[p..p + 4].copy_from_slice(&colour);
                    }
                }
            }
        }
    }
    Ok((
        Image {
            width: pw,
            height,
            rgba,
        },
        years,
        bbox,
    ))
}
