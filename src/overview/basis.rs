//! One colour basis per year: the top three principal components of the year's pixels over
//! every band, each stretched between its 2nd and 98th percentiles. Every picture of the year
//! (any band, any box, the map) uses it, so colours match across band edges.
//!
//! `mosaic finalize` (and a whole-band build when it ends) stores it in `_mosaic/colour/`,
//! with the number of cells of each band it was computed from; a reader takes the stored basis
//! when those counts are the store's, and otherwise merges the statistics itself.

use std::collections::BTreeMap;

use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};

use super::partials::{Missing, OnBlock, YearPartials, fold_year};
use super::pyramid::year_chunks;
use super::statistics::YearStatistics;
use crate::grid::CHANNELS;
use crate::zarr::{FormatError, MosaicStore, SUMS, colour_basis_key, statistics_array};

/// The colours of a year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColourBasis {
    /// The year.
    pub year: u16,
    /// Valid pixels the statistics summed (at the statistics level).
    pub pixels: f64,
    /// Cells merged, per band.
    pub cells: BTreeMap<String, usize>,
    /// The mean pixel (dequantised).
    pub mean: Vec<f64>,
    /// The first three principal components (unit vectors; largest entry positive).
    pub components: Vec<Vec<f64>>,
    /// Their eigenvalues (variance along each).
    pub variances: Vec<f64>,
    /// 2nd percentile of each component's projection: drawn as 0.
    pub low: Vec<f64>,
    /// 98th percentile: drawn as 255.
    pub high: Vec<f64>,
}

impl ColourBasis {
    /// The basis of merged statistics; `None` without pixels.
    pub fn from_statistics(
        year: u16,
        stats: &YearStatistics,
        cells: BTreeMap<String, usize>,
    ) -> Option<ColourBasis> {
        if stats.count < 2.0 {
            return None;
        }
        let cov = DMatrix::from_row_slice(CHANNELS, CHANNELS, &stats.covariance());
        let (components, variances) = principal_components(cov, 3);
        let mut basis = ColourBasis {
            year,
            pixels: stats.count,
            cells,
            mean: stats.mean(),
            variances,
            components,
            low: vec![0.0; 3],
            high: vec![1.0; 3],
        };
        let mut sample = stats.clone();
        sample.trim();
        for k in 0..3 {
            let mut p: Vec<f64> = sample
                .sample
                .iter()
                .map(|(_, v)| basis.project(v.iter().map(|x| *x as f64))[k])
                .collect();
            if p.is_empty() {
                continue;
            }
            p.sort_by(f64::total_cmp);
            basis.low[k] = p[(p.len() - 1) * 2 / 100];
            basis.high[k] = p[(p.len() - 1) * 98 / 100];
        }
        Some(basis)
    }

    /// The three components' values of a dequantised pixel.
    pub fn project(&self, pixel: impl Iterator<Item = f64>) -> [f64; 3] {
        let mut out = [0f64; 3];
        for (c, x) in pixel.enumerate() {
            let d = x - self.mean[c];
            for (k, o) in out.iter_mut().enumerate() {
                *o += d * self.components[k][c];
            }
        }
        out
    }

    /// The colour of a stored pixel: int8 embedding and its scale.
    pub fn rgb(&self, embedding: &[i8], scale: f32) -> [u8; 3] {
        let p = self.project(embedding.iter().map(|&q| q as f64 * scale as f64));
        std::array::from_fn(|k| {
            let t = (p[k] - self.low[k]) / (self.high[k] - self.low[k]).max(1e-12);
            (255.0 * t.clamp(0.0, 1.0)).round() as u8
        })
    }
}

/// The `n` leading principal components of a covariance matrix (unit vectors, each with its
/// largest entry positive so that the colours are deterministic) and their variances.
pub fn principal_components(cov: DMatrix<f64>, n: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
    let d = cov.nrows();
    let eigen = SymmetricEigen::new(cov);
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
    let leading = &order[..n.min(d)];
    let components = leading
        .iter()
        .map(|&k| {
            let mut v: Vec<f64> = eigen.eigenvectors.column(k).iter().copied().collect();
            let big = v
                .iter()
                .copied()
                .fold(0f64, |acc, x| if x.abs() > acc.abs() { x } else { acc });
            if big < 0.0 {
                v.iter_mut().for_each(|x| *x = -*x);
            }
            v
        })
        .collect();
    (
        components,
        leading.iter().map(|&k| eigen.eigenvalues[k]).collect(),
    )
}

/// Cells of a band with colour statistics for a year (their chunk-grid row and column).
fn cells_with_statistics(
    store: &MosaicStore,
    band: &str,
    year_index: u64,
) -> Result<Vec<(u64, u64)>, FormatError> {
    year_chunks(
        store,
        &format!("{band}/{}", statistics_array(SUMS)),
        year_index,
    )
}

/// Bands with overviews and statistics, with the year's index on their axis.
fn bands_with_year(store: &MosaicStore, year: u16) -> Result<Vec<(String, u64)>, FormatError> {
    let mut out = Vec::new();
    for band in store.bands()? {
        if !store.has_overviews(&band)? {
            continue;
        }
        let Some(layout) = store.band_layout(&band)? else {
            continue;
        };
        if let Some(y) = layout.year_index(year) {
            out.push((band, y));
        }
    }
    Ok(out)
}

/// Cells with statistics for a year, per band: what a stored basis must match.
pub fn statistics_cells(
    store: &MosaicStore,
    year: u16,
) -> Result<BTreeMap<String, usize>, FormatError> {
    let mut cells = BTreeMap::new();
    for (band, y) in bands_with_year(store, year)? {
        let n = cells_with_statistics(store, &band, y)?.len();
        if n > 0 {
            cells.insert(band, n);
        }
    }
    Ok(cells)
}

/// Merge the statistics of every band for a year: from each block's partial where it matches
/// the store, else summed from the block's cells (nothing written).
pub fn merge_statistics(
    store: &MosaicStore,
    year: u16,
) -> Result<(YearStatistics, BTreeMap<String, usize>), FormatError> {
    let (stats, cells, _) = fold_year(store, year, Missing::Sum, &|_| {})?;
    Ok((stats, cells))
}

/// The colour basis of a year: the stored one when it covers the cells the store has now,
/// otherwise computed from the statistics. `None` when the year has no statistics (no band
/// built with overviews holds it).
pub fn colour_basis(store: &MosaicStore, year: u16) -> Result<Option<ColourBasis>, FormatError> {
    if let Some(stored) = store.store.get_json(&colour_basis_key(year))?
        && let Ok(basis) = serde_json::from_value::<ColourBasis>(stored)
        && basis.cells == statistics_cells(store, year)?
    {
        return Ok(Some(basis));
    }
    let (stats, cells) = merge_statistics(store, year)?;
    Ok(ColourBasis::from_statistics(year, &stats, cells))
}

/// Compute and store the colour basis of a year from every band's block partials; blocks
/// without a partial that matches the store are made (`Missing::Make`) or summed in memory
/// (`Missing::Sum`). Idempotent: the same store gives the same bytes.
pub fn store_colour_basis(
    store: &MosaicStore,
    year: u16,
    missing: Missing,
    on_block: OnBlock,
) -> Result<(Option<ColourBasis>, YearPartials), FormatError> {
    let (stats, cells, report) = fold_year(store, year, missing, on_block)?;
    let basis = ColourBasis::from_statistics(year, &stats, cells);
    if let Some(basis) = &basis {
        store.store.put_json(
            &colour_basis_key(year),
            &serde_json::to_value(basis).expect("serialisable"),
        )?;
    }
    Ok((basis, report))
}
