//! The coarse levels of a band's pyramid, whose chunks span several cells: made by
//! `mosaic finalize` (and at the end of a whole-band build) from the level below, never from
//! the embeddings. Each chunk is computed whole from its cells and written in one put, so the
//! step is idempotent and any worker split gives the same bytes.

use rayon::prelude::*;
use zarrs::array::ArraySubset;

use super::downsample::downsample_cell;
use crate::grid::{CHANNELS, LON_CELLS};
use crate::zarr::{
    EMBEDDINGS, FormatError, MosaicStore, OverviewLevel, SCALES, StoreArray, level_array,
    overview_levels, raw_bytes,
};

/// What a pyramid step did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PyramidReport {
    /// Chunks written, over all coarse levels and years.
    pub chunks: usize,
    /// Coarse levels made.
    pub levels: usize,
}

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

/// Make every coarse level of a band from the level below, for every year.
pub fn build_coarse_levels(store: &MosaicStore, band: &str) -> Result<PyramidReport, FormatError> {
    let layout = store.band_layout(band)?.ok_or_else(|| FormatError::Band {
        location: store.location().to_string(),
        band: band.to_string(),
        message: "no such band in the store".into(),
    })?;
    let grid = &layout.grid;
    let levels = overview_levels(grid);
    let mut report = PyramidReport::default();
    for pair in levels.windows(2) {
        let (from, to) = (&pair[0], &pair[1]);
        if to.per_cell() {
            continue;
        }
        report.levels += 1;
        let (from_e, from_s) = open_level(store, band, from.level)?;
        let (to_e, to_s) = open_level(store, band, to.level)?;
        for y in 0..layout.years as u64 {
            // Chunks of `to` holding any cell that `from` holds.
            let from_scales = format!("{band}/{}", level_array(from.level, SCALES));
            let mut wanted: Vec<(u64, u64)> = year_chunks(store, &from_scales, y)?
                .into_iter()
                .flat_map(|(i, j)| {
                    let k = from.cells_per_chunk as u64;
                    let t = to.cells_per_chunk as u64;
                    // Cells of the `from` chunk, mapped to the `to` chunks holding them.
                    (i * k..(i + 1) * k)
                        .flat_map(move |ci| (j * k..(j + 1) * k).map(move |cj| (ci / t, cj / t)))
                })
                .collect();
            wanted.sort_unstable();
            wanted.dedup();
            let lat_cells = grid.lat_cells() as u64;
            let written: Vec<Result<(), FormatError>> = wanted
                .par_iter()
                .map(|&(a, b)| {
                    make_chunk(
                        (&from_e, &from_s),
                        (&to_e, &to_s),
                        from,
                        to,
                        y,
                        (a, b),
                        lat_cells,
                        layout.embeddings_fill,
                    )
                })
                .collect();
            for w in written {
                w?;
            }
            report.chunks += wanted.len();
        }
    }
    Ok(report)
}

/// One chunk of a coarse level: read its cells from the level below, downsample each cell,
/// write the chunk whole.
#[allow(clippy::too_many_arguments)]
fn make_chunk(
    (from_e, from_s): (&StoreArray, &StoreArray),
    (to_e, to_s): (&StoreArray, &StoreArray),
    from: &OverviewLevel,
    to: &OverviewLevel,
    y: u64,
    (a, b): (u64, u64),
    lat_cells: u64,
    fill: i8,
) -> Result<(), FormatError> {
    let t = to.cells_per_chunk as u64;
    let cell_rows = a * t..((a + 1) * t).min(lat_cells);
    let cell_cols = b * t..((b + 1) * t).min(LON_CELLS as u64);
    let (fr, fc) = (from.rows_per_cell as u64, from.cols_per_cell as u64);
    let what = format!("overview level {} chunk {y}/{a}/{b}", to.level);
    let rows = cell_rows.start * fr..cell_rows.end * fr;
    let cols = cell_cols.start * fc..cell_cols.end * fc;
    let region_cols = (cols.end - cols.start) as usize;
    let emb: Vec<i8> = from_e
        .retrieve_array_subset(&ArraySubset::new_with_ranges(&[
            y..y + 1,
            rows.clone(),
            cols.clone(),
            0..CHANNELS as u64,
        ]))
        .map_err(FormatError::array(&what))?;
    let scales: Vec<f32> = from_s
        .retrieve_array_subset(&ArraySubset::new_with_ranges(&[y..y + 1, rows, cols]))
        .map_err(FormatError::array(&what))?;
    let (tr, tc) = (to.rows_per_cell, to.cols_per_cell);
    let chunk_cols = tc * to.cells_per_chunk;
    let chunk_pixels = tr * to.cells_per_chunk * chunk_cols;
    let mut out_e = vec![fill as u8; chunk_pixels * CHANNELS];
    let mut out_s = vec![f32::NAN; chunk_pixels];
    let (fr, fc) = (fr as usize, fc as usize);
    let mut block_e = vec![0u8; fr * fc * CHANNELS];
    let mut block_s = vec![0f32; fr * fc];
    for (ci, _) in cell_rows.clone().enumerate() {
        for (cj, _) in cell_cols.clone().enumerate() {
            // The cell's block in the region read.
            for r in 0..fr {
                let src = (ci * fr + r) * region_cols + cj * fc;
                block_s[r * fc..(r + 1) * fc].copy_from_slice(&scales[src..src + fc]);
                for (o, v) in block_e[r * fc * CHANNELS..(r + 1) * fc * CHANNELS]
                    .iter_mut()
                    .zip(&emb[src * CHANNELS..(src + fc) * CHANNELS])
                {
                    *o = *v as u8;
                }
            }
            if block_s.iter().all(|s| s.is_nan()) {
                continue;
            }
            let (e, s) = downsample_cell(&block_e, &block_s, (fr, fc), (tr, tc));
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
