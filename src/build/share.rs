//! Worker shares: `--worker I/N` builds a fixed, disjoint subset of a band's cells, so N
//! processes on N machines build a band together with no coordination but the store.

use crate::grid::Cell;

/// True when `cell` belongs to share `worker = (i, n)` (0-based `i`); every cell when `None`.
/// A fixed function of the cell, so every worker agrees on the split.
pub fn in_worker_share(cell: Cell, worker: Option<(usize, usize)>) -> bool {
    match worker {
        None => true,
        Some((i, n)) => {
            let id = cell.lat_index as u64 * 3600 + cell.lon_index as u64;
            // Mix so that neighbouring cells spread over workers evenly.
            (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % n as u64 == i as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cell_is_in_exactly_one_share() {
        for n in [1, 2, 3, 16] {
            for lat_index in (0..1800).step_by(37) {
                for lon_index in (0..3600).step_by(41) {
                    let cell = Cell::new(lon_index, lat_index).unwrap();
                    let owners = (0..n).filter(|&i| in_worker_share(cell, Some((i, n))));
                    assert_eq!(owners.count(), 1, "{cell} with {n} workers");
                }
            }
        }
    }
}
