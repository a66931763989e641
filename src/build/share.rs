//! Worker shares: `--worker I/N` builds a fixed, disjoint subset of a band's cells, so N
//! processes on N machines build a band together with no coordination but the store.

use crate::grid::Cell;

/// True when `cell` belongs to share `worker = (i, n)` (0-based `i`); every cell when `None`.
/// A fixed function of the cell, so every worker agrees on the split.
pub fn in_worker_share(cell: Cell, worker: Option<(usize, usize)>) -> bool {
    match worker {
        None => true,
        Some(worker) => id_in_share(cell.lat_index as u64 * 3600 + cell.lon_index as u64, worker),
    }
}

/// True when the unit numbered `id` belongs to share `(i, n)`: the one rule behind cells,
/// finalize's blocks and the map's tile blocks.
pub fn id_in_share(id: u64, (i, n): (usize, usize)) -> bool {
    // Mix so that neighbouring units spread over workers evenly.
    (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % n as u64 == i as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many of the cells `lat_indices` x `lon_indices` each of `n` shares takes.
    fn share_sizes(
        n: usize,
        lat_indices: std::ops::Range<u16>,
        lon_indices: std::ops::Range<u16>,
    ) -> Vec<usize> {
        let mut sizes = vec![0; n];
        for lat_index in lat_indices {
            for lon_index in lon_indices.clone() {
                let cell = Cell::new(lon_index, lat_index).unwrap();
                let owners: Vec<usize> = (0..n)
                    .filter(|&i| in_worker_share(cell, Some((i, n))))
                    .collect();
                assert_eq!(owners.len(), 1, "{cell} with {n} workers: {owners:?}");
                sizes[owners[0]] += 1;
            }
        }
        sizes
    }

    /// The promise of docs/scale.md: each of N workers takes about 1/N of a band's cells, and
    /// of any block of neighbouring cells (a country, a test region), so none is left with most
    /// of the work. Within 1% of the mean over a whole band (360,000 cells); within 10% over
    /// 50 x 50 blocks (2,500 cells, where the split measured at most 4.4% off for 2 to 16
    /// workers; one binomial standard deviation is 7% for 16).
    #[test]
    fn shares_are_disjoint_and_even() {
        for n in [1, 2, 3, 7, 16] {
            for (lats, lons, tolerance) in [
                (1600..1700, 0..3600, 0.01),
                (1200..1250, 1800..1850, 0.1),
                (300..350, 3500..3550, 0.1),
                (900..950, 100..150, 0.1),
            ] {
                let sizes = share_sizes(n, lats.clone(), lons.clone());
                let total: usize = sizes.iter().sum();
                assert_eq!(total, lats.len() * lons.len());
                let mean = total as f64 / n as f64;
                for (i, &size) in sizes.iter().enumerate() {
                    assert!(
                        (size as f64 - mean).abs() <= tolerance * mean,
                        "share {i}/{n} of {lats:?} x {lons:?} has {size} cells, mean {mean}: {sizes:?}"
                    );
                }
            }
        }
    }
}
