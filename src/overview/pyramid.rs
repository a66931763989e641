//! The coarse levels of a band's pyramid, whose chunks span several cells: made by
//! `mosaic finalize` (and at the end of a whole-band build), never from the embeddings. Each
//! chunk is computed whole and written in one put, each cell's part of it from that cell's
//! finest per-cell level alone (level by level, as if from the stored level below: the same
//! bytes), so any share of `finalize --worker` can make any chunk without waiting for another.

use std::collections::BTreeSet;

use super::downsample::downsample_cell;
use crate::grid::{CHANNELS, LON_CELLS};
use crate::zarr::{
    BandLayout, EMBEDDINGS, FormatError, MosaicStore, OverviewLevel, SCALES, StoreArray,
    level_array, overview_levels, raw_bytes,
};

fn open_level(
    store: &MosaicStore,
    band: &str,
    level: u32,
) -> Result<(StoreArray, StoreArray), FormatError> {
    let open = |name: &str| {
        let path = format!("/{band}/{}", level_array(level, name));
        store.open_array(&path)
    };
    Ok((open(EMBEDDINGS)?, open(SCALES)?))
}

/// Chunk-grid (row, column) of the chunks an array (its path under the store's root, e.g.
/// `70-80/overviews/2/scales`) holds for a year, from the store's keys: keys `{y}/{i}/{j}`
/// followed only by zero indices (temporaries and other keys are skipped), sorted.
pub(crate) fn year_chunks(
    store: &MosaicStore,
    array: &str,
    year_index: u64,
) -> Result<Vec<(u64, u64)>, FormatError> {
    let prefix = format!("{array}/c/{year_index}/");
    let mut chunks: Vec<(u64, u64)> = store
        .store
        .list_prefix(&prefix)?
        .iter()
        .filter_map(|k| {
            let mut parts = k.strip_prefix(&prefix)?.split('/');
            let i = parts.next()?.parse().ok()?;
            let j = parts.next()?.parse().ok()?;
            parts.all(|p| p == "0").then_some((i, j))
        })
        .collect();
    chunks.sort_unstable();
    Ok(chunks)
}

/// A band's pyramid as finalize reads and writes it: its levels and their arrays.
pub(crate) struct Pyramid {
    levels: Vec<OverviewLevel>,
    /// Per level from `base` on: (embeddings, scales).
    arrays: Vec<(StoreArray, StoreArray)>,
    /// Index in `levels` of the finest level finalize reads: the last per-cell level.
    base: usize,
    lat_cells: u64,
    fill: i8,
}

/// One cell's int8 embeddings (as bytes) and scales at one level.
type CellPixels = (Vec<u8>, Vec<f32>);

/// A band-relative cell (row, column) of the chunk grid of a per-cell level.
pub(crate) type CellIndex = (u64, u64);

impl Pyramid {
    pub(crate) fn open(
        store: &MosaicStore,
        band: &str,
        layout: &BandLayout,
    ) -> Result<Pyramid, FormatError> {
        let levels = overview_levels(&layout.grid);
        let base = levels.iter().rposition(|l| l.per_cell()).unwrap_or(0);
        let arrays = levels[base..]
            .iter()
            .map(|l| open_level(store, band, l.level))
            .collect::<Result<_, _>>()?;
        Ok(Pyramid {
            levels,
            arrays,
            base,
            lat_cells: layout.grid.lat_cells() as u64,
            fill: layout.embeddings_fill,
        })
    }

    /// The key (under the store's root) of the base level's scales: one object per cell, so
    /// listing it gives the cells with overviews.
    pub(crate) fn base_scales(&self, band: &str) -> String {
        format!(
            "{band}/{}",
            level_array(self.levels[self.base].level, SCALES)
        )
    }

    /// Cells a coarse chunk can depend on beyond its own block, in every direction: the sum
    /// of the coarse levels' chunk widths (a chunk is written when it meets a chunk of the
    /// level below that was, which meets one below that, ...).
    pub(crate) fn margin(&self) -> u64 {
        self.levels[self.base + 1..]
            .iter()
            .map(|l| l.cells_per_chunk as u64)
            .sum()
    }

    /// The chunks of each coarse level (index into the levels, chunk list) a year's base cells
    /// give: every chunk holding a cell of a chunk of the level below (of a cell, at the base).
    pub(crate) fn wanted(&self, base_cells: &BTreeSet<CellIndex>) -> Vec<(usize, Vec<CellIndex>)> {
        let mut out = Vec::new();
        let mut from: Vec<CellIndex> = base_cells.iter().copied().collect();
        for to in self.base + 1..self.levels.len() {
            let k = self.levels[to - 1].cells_per_chunk as u64;
            let t = self.levels[to].cells_per_chunk as u64;
            let mut wanted: Vec<CellIndex> = from
                .iter()
                .flat_map(|&(i, j)| {
                    (i * k..(i + 1) * k)
                        .flat_map(move |ci| (j * k..(j + 1) * k).map(move |cj| (ci / t, cj / t)))
                })
                .collect();
            wanted.sort_unstable();
            wanted.dedup();
            from = wanted.clone();
            out.push((to, wanted));
        }
        out
    }

    /// Cells per chunk of level index `to`.
    pub(crate) fn cells_per_chunk(&self, to: usize) -> u64 {
        self.levels[to].cells_per_chunk as u64
    }

    /// A cell at level index `to`, from its base level through every level between; `None`
    /// where a level on the way has no valid pixel (drawn as fill, as the level below's
    /// all-NaN block was).
    fn cell_at(
        &self,
        y: u64,
        (ci, cj): CellIndex,
        to: usize,
        what: &str,
    ) -> Result<Option<CellPixels>, FormatError> {
        let (base_e, base_s) = &self.arrays[0];
        let e: Vec<i8> = base_e
            .retrieve_chunk(&[y, ci, cj, 0])
            .map_err(FormatError::array(what))?;
        let mut s: Vec<f32> = base_s
            .retrieve_chunk(&[y, ci, cj])
            .map_err(FormatError::array(what))?;
        let mut e: Vec<u8> = e.into_iter().map(|v| v as u8).collect();
        for l in self.base + 1..=to {
            if s.iter().all(|v| v.is_nan()) {
                return Ok(None);
            }
            let (from, into) = (&self.levels[l - 1], &self.levels[l]);
            (e, s) = downsample_cell(
                &e,
                &s,
                (from.rows_per_cell, from.cols_per_cell),
                (into.rows_per_cell, into.cols_per_cell),
            );
        }
        Ok(Some((e, s)))
    }

    /// Make and write one chunk `(a, b)` of level index `to` for year index `y`, from the
    /// base level of its cells that `base_cells` lists.
    pub(crate) fn make_chunk(
        &self,
        y: u64,
        to: usize,
        (a, b): CellIndex,
        base_cells: &BTreeSet<CellIndex>,
    ) -> Result<(), FormatError> {
        let level = &self.levels[to];
        let (to_e, to_s) = &self.arrays[to - self.base];
        let t = level.cells_per_chunk as u64;
        let cell_rows = a * t..((a + 1) * t).min(self.lat_cells);
        let cell_cols = b * t..((b + 1) * t).min(LON_CELLS as u64);
        let what = format!("overview level {} chunk {y}/{a}/{b}", level.level);
        let (tr, tc) = (level.rows_per_cell, level.cols_per_cell);
        let chunk_cols = tc * level.cells_per_chunk;
        let chunk_pixels = tr * level.cells_per_chunk * chunk_cols;
        let mut out_e = vec![self.fill as u8; chunk_pixels * CHANNELS];
        let mut out_s = vec![f32::NAN; chunk_pixels];
        for (ci, cell_row) in cell_rows.clone().enumerate() {
            for (cj, cell_col) in cell_cols.clone().enumerate() {
                if !base_cells.contains(&(cell_row, cell_col)) {
                    continue;
                }
                let Some((e, s)) = self.cell_at(y, (cell_row, cell_col), to, &what)? else {
                    continue;
                };
                for r in 0..tr {
                    let dst = (ci * tr + r) * chunk_cols + cj * tc;
                    out_s[dst..dst + tc].copy_from_slice(&s[r * tc..(r + 1) * tc]);
                    out_e[dst * CHANNELS..(dst + tc) * CHANNELS]
                        .copy_from_slice(&e[r * tc * CHANNELS..(r + 1) * tc * CHANNELS]);
                }
            }
        }
        let options = zarrs::array::CodecOptions::default()
            .with_store_empty_chunks(true)
            .with_concurrent_target(1);
        to_e.store_chunk_opt(&[y, a, b, 0], raw_bytes(&out_e), &options)
            .map_err(FormatError::array(&what))?;
        to_s.store_chunk_opt(&[y, a, b], out_s.as_slice(), &options)
            .map_err(FormatError::array(&what))
    }
}
