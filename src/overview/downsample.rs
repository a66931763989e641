//! A cell's overview levels, made from its gathered full-resolution block while it is in
//! memory: each level copies, for every one of its pixels, the pixel of the level below under
//! its centre (no averaging: an averaged embedding is not an embedding).

use crate::grid::{BandGrid, CHANNELS};
use crate::zarr::{OverviewLevel, nearest_index, overview_levels};

/// One level of one cell: rows x cols x 128 int8 embeddings and rows x cols scales (NaN where
/// no data), row 0 south as in the band.
pub struct CellLevel {
    /// The level.
    pub level: OverviewLevel,
    /// int8 embeddings as bytes.
    pub embeddings: Vec<u8>,
    /// float32 scales.
    pub scales: Vec<f32>,
}

/// Nearest-neighbour downsampling of a block of `src_rows` x `src_cols` pixels to
/// `rows` x `cols`.
pub fn downsample_cell(
    embeddings: &[u8],
    scales: &[f32],
    (src_rows, src_cols): (usize, usize),
    (rows, cols): (usize, usize),
) -> (Vec<u8>, Vec<f32>) {
    let mut out_e = Vec::with_capacity(rows * cols * CHANNELS);
    let mut out_s = Vec::with_capacity(rows * cols);
    let col_index: Vec<usize> = (0..cols)
        .map(|j| nearest_index(j, src_cols, cols))
        .collect();
    for i in 0..rows {
        let r = nearest_index(i, src_rows, rows);
        for &c in &col_index {
            let p = r * src_cols + c;
            out_e.extend_from_slice(&embeddings[p * CHANNELS..(p + 1) * CHANNELS]);
            out_s.push(scales[p]);
        }
    }
    (out_e, out_s)
}

/// The per-cell levels of a band (those the build writes), each from the one before, starting
/// from the cell's full-resolution block.
pub fn cell_levels(grid: &BandGrid, embeddings: &[u8], scales: &[f32]) -> Vec<CellLevel> {
    let mut out: Vec<CellLevel> = Vec::new();
    for level in overview_levels(grid).into_iter().filter(|l| l.per_cell()) {
        let (e, s) = match out.last() {
            None => downsample_cell(
                embeddings,
                scales,
                (grid.rows_per_cell, grid.cols_per_cell),
                (level.rows_per_cell, level.cols_per_cell),
            ),
            Some(prev) => downsample_cell(
                &prev.embeddings,
                &prev.scales,
                (prev.level.rows_per_cell, prev.level.cols_per_cell),
                (level.rows_per_cell, level.cols_per_cell),
            ),
        };
        out.push(CellLevel {
            level,
            embeddings: e,
            scales: s,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_overview_pixel_is_a_pixel_of_the_block() {
        let (rows, cols) = (10, 6);
        let emb: Vec<u8> = (0..rows * cols)
            .flat_map(|p| std::iter::repeat_n(p as u8, CHANNELS))
            .collect();
        let scales: Vec<f32> = (0..rows * cols).map(|p| p as f32).collect();
        let (e, s) = downsample_cell(&emb, &scales, (rows, cols), (3, 2));
        assert_eq!(s, [7.0, 10.0, 31.0, 34.0, 49.0, 52.0]);
        for (k, v) in s.iter().enumerate() {
            assert!(
                e[k * CHANNELS..(k + 1) * CHANNELS]
                    .iter()
                    .all(|b| *b == *v as u8)
            );
        }
    }
}
