//! Colour statistics: per (cell, year), exact f64 sums over the dequantised valid pixels of
//! overview level [`STATISTICS_LEVEL`] and a fixed-size sample of them; merged per year over
//! every band into the sufficient statistics of a principal component analysis.
//!
//! Each (cell, year) has its own small objects, written with the cell's overviews: a worker
//! never overwrites another's, a rerun rewrites the same bytes, and a year's statistics are the
//! merge of whatever cells exist, so nothing is lost or counted twice across resumed or
//! concurrent builds.

use crate::grid::{CHANNELS, Cell};
use crate::hash::splitmix64;
use crate::zarr::{SAMPLE_PIXELS, SUMS_LEN};

/// Upper-triangle entries of a 128 x 128 symmetric matrix, row by row.
pub(crate) const TRIANGLE: usize = CHANNELS * (CHANNELS + 1) / 2;
/// Pixels a year's merged sample keeps.
pub const YEAR_SAMPLE: usize = 16_384;

/// The statistics of one (cell, year).
#[derive(Debug, Clone, PartialEq)]
pub struct CellStatistics {
    /// Count, sum (128) and upper triangle of the sum of outer products ([`SUMS_LEN`]).
    pub sums: Vec<f64>,
    /// [`SAMPLE_PIXELS`] dequantised pixels (128 each), NaN rows when the cell has fewer.
    pub sample: Vec<f32>,
}

fn seed(cell: Cell, year: u16) -> u64 {
    splitmix64(((cell.lat_index as u64) << 32) | ((cell.lon_index as u64) << 16) | year as u64)
}

impl CellStatistics {
    /// The statistics of a cell's pixels (int8 embeddings, scales NaN where no data), in pixel
    /// order so that the f64 sums are the same bytes on every run.
    pub fn of_pixels(cell: Cell, year: u16, embeddings: &[u8], scales: &[f32]) -> Self {
        let mut sums = vec![0f64; SUMS_LEN];
        let (head, outer) = sums.split_at_mut(1 + CHANNELS);
        // Pixels are summed BLOCK at a time (a zero pixel pads the last block and adds exact
        // zeros): each pass over the 66 KB triangle then does BLOCK pixels' work.
        let mut block = [[0f64; CHANNELS]; BLOCK];
        let mut filled = 0;
        let mut valid: Vec<(u64, usize)> = Vec::new();
        let seed = seed(cell, year);
        for (p, &s) in scales.iter().enumerate() {
            if s.is_nan() {
                continue;
            }
            let q = &embeddings[p * CHANNELS..(p + 1) * CHANNELS];
            for (xc, &b) in block[filled].iter_mut().zip(q) {
                *xc = (b as i8) as f64 * s as f64;
            }
            filled += 1;
            if filled == BLOCK {
                add_block(head, outer, &block);
                filled = 0;
            }
            valid.push((splitmix64(seed ^ p as u64), p));
        }
        if filled > 0 {
            block[filled..]
                .iter_mut()
                .for_each(|x| *x = [0.0; CHANNELS]);
            add_block(head, outer, &block);
        }
        head[0] = valid.len() as f64;
        // The sample: the valid pixels with the smallest hashes, in pixel order.
        valid.sort_unstable();
        valid.truncate(SAMPLE_PIXELS);
        valid.sort_unstable_by_key(|v| v.1);
        let mut sample = vec![f32::NAN; SAMPLE_PIXELS * CHANNELS];
        for (slot, (_, p)) in valid.iter().enumerate() {
            let q = &embeddings[p * CHANNELS..(p + 1) * CHANNELS];
            for (out, &b) in sample[slot * CHANNELS..(slot + 1) * CHANNELS]
                .iter_mut()
                .zip(q)
            {
                *out = (b as i8) as f32 * scales[*p];
            }
        }
        CellStatistics { sums, sample }
    }

    /// Valid pixels summed.
    pub fn count(&self) -> f64 {
        self.sums[0]
    }
}

/// Pixels per pass over the sums.
const BLOCK: usize = 4;

/// Add a block of pixels to the sums (`head`: count slot then the sum; `outer`: triangle).
fn add_block(head: &mut [f64], outer: &mut [f64], block: &[[f64; CHANNELS]; BLOCK]) {
    for c in 0..CHANNELS {
        head[1 + c] += (block[0][c] + block[1][c]) + (block[2][c] + block[3][c]);
    }
    let mut k = 0;
    for a in 0..CHANNELS {
        let (x0, x1, x2, x3) = (block[0][a], block[1][a], block[2][a], block[3][a]);
        let row = &mut outer[k..k + CHANNELS - a];
        let (y0, y1, y2, y3) = (
            &block[0][a..],
            &block[1][a..],
            &block[2][a..],
            &block[3][a..],
        );
        for ((((acc, b0), b1), b2), b3) in row.iter_mut().zip(y0).zip(y1).zip(y2).zip(y3) {
            *acc += (x0 * b0 + x1 * b1) + (x2 * b2 + x3 * b3);
        }
        k += CHANNELS - a;
    }
}

/// A cell's sampled pixels with their Efraimidis-Spirakis keys (each pixel stands for
/// count / pixels sampled) and their slot among the valid rows: smallest keys are kept.
pub(crate) fn sample_keys(
    cell: Cell,
    year: u16,
    stats: &CellStatistics,
) -> impl Iterator<Item = (f64, u16, &[f32])> {
    let rows: Vec<&[f32]> = stats
        .sample
        .chunks(CHANNELS)
        .filter(|r| !r[0].is_nan())
        .collect();
    let weight = stats.count() / rows.len().max(1) as f64;
    let seed = seed(cell, year) ^ 0x5eed;
    rows.into_iter().enumerate().map(move |(slot, row)| {
        let u = (splitmix64(seed ^ slot as u64) >> 11) as f64 / (1u64 << 53) as f64;
        (-(1.0 - u).ln() / weight, slot as u16, row)
    })
}

/// A year's statistics merged over cells (of one or all bands).
#[derive(Debug, Clone)]
pub struct YearStatistics {
    /// Valid pixels summed.
    pub count: f64,
    /// Sum of the pixels.
    pub sum: Vec<f64>,
    /// Upper triangle of the sum of outer products, row by row.
    pub outer: Vec<f64>,
    /// A weighted sample without replacement (Efraimidis-Spirakis keys: each cell's sampled
    /// pixels stand for its count), at most [`YEAR_SAMPLE`] pixels, smallest key first.
    pub sample: Vec<(f64, Vec<f32>)>,
    /// Cells merged.
    pub cells: usize,
}

impl Default for YearStatistics {
    fn default() -> Self {
        YearStatistics {
            count: 0.0,
            sum: vec![0.0; CHANNELS],
            outer: vec![0.0; TRIANGLE],
            sample: Vec::new(),
            cells: 0,
        }
    }
}

impl YearStatistics {
    /// Add one (cell, year). Merge cells in a fixed order for bit-identical sums.
    pub fn add(&mut self, cell: Cell, year: u16, stats: &CellStatistics) {
        let n = stats.count();
        if n.is_nan() || n <= 0.0 {
            return;
        }
        self.cells += 1;
        self.count += n;
        for (a, b) in self.sum.iter_mut().zip(&stats.sums[1..1 + CHANNELS]) {
            *a += b;
        }
        for (a, b) in self.outer.iter_mut().zip(&stats.sums[1 + CHANNELS..]) {
            *a += b;
        }
        for (key, _, row) in sample_keys(cell, year, stats) {
            self.sample.push((key, row.to_vec()));
        }
        if self.sample.len() > 2 * YEAR_SAMPLE {
            self.trim();
        }
    }

    /// Keep the [`YEAR_SAMPLE`] smallest keys.
    pub fn trim(&mut self) {
        self.sample.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.sample.truncate(YEAR_SAMPLE);
    }

    /// The mean pixel.
    pub fn mean(&self) -> Vec<f64> {
        self.sum.iter().map(|s| s / self.count).collect()
    }

    /// The covariance matrix (128 x 128, row-major).
    pub fn covariance(&self) -> Vec<f64> {
        let mean = self.mean();
        let n = self.count;
        let mut cov = vec![0f64; CHANNELS * CHANNELS];
        let mut k = 0;
        for a in 0..CHANNELS {
            for b in a..CHANNELS {
                let c = (self.outer[k] - n * mean[a] * mean[b]) / (n - 1.0).max(1.0);
                cov[a * CHANNELS + b] = c;
                cov[b * CHANNELS + a] = c;
                k += 1;
            }
        }
        cov
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_those_of_the_valid_dequantised_pixels() {
        let cell = Cell {
            lat_index: 1700,
            lon_index: 10,
        };
        let pixels = 100;
        let emb: Vec<u8> = (0..pixels * CHANNELS)
            .map(|i| ((i * 37 % 255) as i32 - 127) as i8 as u8)
            .collect();
        let scales: Vec<f32> = (0..pixels)
            .map(|p| {
                if p % 3 == 0 {
                    f32::NAN
                } else {
                    0.5 + p as f32 / 100.0
                }
            })
            .collect();
        let s = CellStatistics::of_pixels(cell, 2024, &emb, &scales);
        let valid: Vec<usize> = (0..pixels).filter(|p| p % 3 != 0).collect();
        assert_eq!(s.count(), valid.len() as f64);
        let x = |p: usize, c: usize| (emb[p * CHANNELS + c] as i8) as f64 * scales[p] as f64;
        let sum5: f64 = valid.iter().map(|&p| x(p, 5)).sum();
        assert!((s.sums[1 + 5] - sum5).abs() < 1e-9);
        // Entry (2, 7) of the triangle: row 0 has 128 entries, row 1 127, then 7 - 2 into row 2.
        let k = 128 + 127 + 5;
        let outer: f64 = valid.iter().map(|&p| x(p, 2) * x(p, 7)).sum();
        assert!((s.sums[1 + CHANNELS + k] - outer).abs() < 1e-6);
        let sampled = s.sample.chunks(CHANNELS).filter(|r| !r[0].is_nan()).count();
        assert_eq!(sampled, SAMPLE_PIXELS.min(valid.len()));
        let mut year = YearStatistics::default();
        year.add(cell, 2024, &s);
        year.add(cell, 2024, &s);
        assert_eq!(year.count, 2.0 * valid.len() as f64);
        let cov = year.covariance();
        assert_eq!(cov[2 * CHANNELS + 7], cov[7 * CHANNELS + 2]);
    }
}
