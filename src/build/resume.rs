//! Resume: what is left to do. A (cell, year) is done when every sink holds it (decided from
//! the store itself, so any process on any machine agrees); the rest of this worker's share is
//! the work, grouped by cell so that a cell's placement map serves all its years.

use std::path::Path;

use super::share::in_worker_share;
use super::sink::BuiltCells;
use crate::grid::{BandGrid, Cell, TileGeometry};
use crate::input::{Catalogue, InputTile};

/// Work of one cell: its geometry and the tiles still to write.
pub(crate) struct CellWork<'a> {
    pub(crate) cell: Cell,
    pub(crate) geometry: TileGeometry,
    pub(crate) tiles: Vec<&'a InputTile>,
    pub(crate) landmask: Option<&'a Path>,
}

/// The work of a band: the cells of this worker's share with tiles not yet built.
pub(crate) struct BandWork<'a> {
    pub(crate) cells: Vec<CellWork<'a>>,
    /// Tiles (cell x year) in this worker's share.
    pub(crate) tiles_total: usize,
    /// Tiles already built (skipped).
    pub(crate) tiles_skipped: usize,
}

impl BandWork<'_> {
    /// Tiles to write.
    pub(crate) fn tiles_to_write(&self) -> usize {
        self.cells.iter().map(|w| w.tiles.len()).sum()
    }
}

/// The tiles of `grid`'s band in share `worker` that `built` does not hold yet.
pub(crate) fn band_work<'a>(
    catalogue: &'a Catalogue,
    grid: &BandGrid,
    worker: Option<(usize, usize)>,
    built: &BuiltCells,
) -> BandWork<'a> {
    let mut work = BandWork {
        cells: Vec::new(),
        tiles_total: 0,
        tiles_skipped: 0,
    };
    for (&cell, geometry) in &catalogue.geometry {
        if !grid.contains(cell) || !in_worker_share(cell, worker) {
            continue;
        }
        let mut tiles = Vec::new();
        for tile in catalogue.tiles_of_cell(cell) {
            work.tiles_total += 1;
            if built
                .get(&tile.year)
                .is_some_and(|cells| cells.contains(&cell))
            {
                work.tiles_skipped += 1;
            } else {
                tiles.push(tile);
            }
        }
        if !tiles.is_empty() {
            work.cells.push(CellWork {
                cell,
                geometry: *geometry,
                tiles,
                landmask: catalogue.landmasks.get(&cell).map(|p| p.as_path()),
            });
        }
    }
    if !catalogue.read_order.is_empty() {
        work.cells
            .sort_by_key(|w| (catalogue.read_order.get(&w.cell).copied(), w.cell));
    }
    work
}

/// The (cell, year)s every sink holds.
pub(crate) fn built_everywhere(all: Vec<BuiltCells>) -> BuiltCells {
    let mut all = all.into_iter();
    let Some(mut common) = all.next() else {
        return BuiltCells::new();
    };
    for other in all {
        common.retain(|year, cells| {
            let empty = Default::default();
            let theirs = other.get(year).unwrap_or(&empty);
            cells.retain(|c| theirs.contains(c));
            !cells.is_empty()
        });
    }
    common
}
