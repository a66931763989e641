//! Finalize in shares: a band's cells fall into fixed blocks of [`BLOCK_CELLS`] x
//! [`BLOCK_CELLS`]; for each (band, year, block) one share makes the coarse overview chunks
//! whose first cell lies in the block and sums the block's colour statistics into one partial
//! object. The year's colour basis is then folded from the partials (bands in order, blocks in
//! order), reading one object per block instead of two per cell.
//!
//! Blocks are fixed, not per share, so the partials, and the f64 sums folded from them, are the
//! same bytes whatever the split and in whatever order shares ran. Each partial records the
//! cells it summed and the per-cell overview cells around it that its chunks depend on; a
//! partial whose record differs from the store's listing (cells built after it) is stale, and
//! is made again, never folded.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::pyramid::{CellIndex, Pyramid, year_chunks};
use super::statistics::{CellStatistics, TRIANGLE, YEAR_SAMPLE, YearStatistics, sample_keys};
use crate::grid::{CHANNELS, Cell};
use crate::zarr::{
    BLOCK_CELLS, FormatError, MosaicStore, SAMPLE, SAMPLE_PIXELS, SUMS, SUMS_LEN, StoreArray,
    partial_key, statistics_array,
};

/// A block: (lat_index, lon_index) / [`BLOCK_CELLS`].
pub type Block = (u16, u16);

/// The block of a cell.
pub fn block_of(cell: Cell) -> Block {
    (cell.lat_index / BLOCK_CELLS, cell.lon_index / BLOCK_CELLS)
}

/// The block of the first cell of a coarse chunk `(a, b)` of `t` cells a side, in a band whose
/// first cell row is `lat_start`.
fn chunk_block(lat_start: u16, t: u64, (a, b): CellIndex) -> Block {
    let lat = lat_start as u64 + a * t;
    let block = BLOCK_CELLS as u64;
    ((lat / block) as u16, (b * t / block) as u16)
}

/// The blocks whose partial depends on the content of band-relative `cells`: their own, which
/// sum their statistics, and each block whose share makes a coarse chunk from them (the chunks
/// [`Pyramid::wanted`] gives for those cells).
fn blocks_depending_on(
    pyramid: &Pyramid,
    lat_start: u16,
    cells: &BTreeSet<CellIndex>,
) -> BTreeSet<Block> {
    let mut blocks: BTreeSet<Block> = cells
        .iter()
        .map(|&ij| chunk_block(lat_start, 1, ij))
        .collect();
    for (to, chunks) in pyramid.wanted(cells) {
        let t = pyramid.cells_per_chunk(to);
        blocks.extend(chunks.into_iter().map(|ab| chunk_block(lat_start, t, ab)));
    }
    blocks
}

/// Remove, before a build writes `cells` (year, cell) of a band with overviews, the partials
/// made from those cells' previous content. A partial records which cells it summed, not what
/// they held, so a cell built again (its objects, or its band's folder, removed and the band
/// built anew) would otherwise leave its block's partial looking current, and `finalize` would
/// neither make the block's coarse chunks again nor fold the new statistics. Removing first is
/// safe against a crash: a missing partial is made by `finalize`. Returns how many were removed.
pub fn forget_partials(
    store: &MosaicStore,
    band: &str,
    cells: &[(u16, Cell)],
) -> Result<usize, FormatError> {
    let Some(layout) = store.band_layout(band)? else {
        return Ok(0);
    };
    if !store.has_overviews(band)? {
        return Ok(0);
    }
    let lat_start = layout.grid.lat_start_index;
    let mut years: BTreeMap<u16, BTreeSet<CellIndex>> = BTreeMap::new();
    for &(year, cell) in cells {
        let ij = ((cell.lat_index - lat_start) as u64, cell.lon_index as u64);
        years.entry(year).or_default().insert(ij);
    }
    let mut pyramid = None;
    let mut removed = 0;
    for (year, cells) in years {
        let stored: BTreeSet<String> = store
            .store
            .list_prefix(&format!("_mosaic/finalize/{year}/{band}/"))?
            .into_iter()
            .collect();
        if stored.is_empty() {
            continue;
        }
        let pyramid = match &pyramid {
            Some(p) => p,
            None => pyramid.insert(Pyramid::open(store, band, &layout)?),
        };
        for block in blocks_depending_on(pyramid, lat_start, &cells) {
            let key = partial_key(band, year, block);
            if stored.contains(&key) {
                store.store.erase(&key)?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Bytes that start every partial object (format version 1).
const MAGIC: &[u8; 8] = b"MOSAICP1";

/// One sampled pixel and what orders it: key, then cell and slot (ties never depend on the
/// order partials were read).
#[derive(Debug, Clone)]
struct SampleRow {
    key: f64,
    cell: [u16; 2],
    slot: u16,
    values: Vec<f32>,
}

fn row_order(a: &SampleRow, b: &SampleRow) -> Ordering {
    a.key
        .total_cmp(&b.key)
        .then(a.cell.cmp(&b.cell))
        .then(a.slot.cmp(&b.slot))
}

/// What a partial records about what it read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PartialHeader {
    band: String,
    year: u16,
    block: [u16; 2],
    /// Cells (lat_index, lon_index) whose statistics it summed, in order.
    statistics_cells: Vec<[u16; 2]>,
    /// Per-cell overview cells within the pyramid's margin of the block: the chunks it made
    /// depend on them.
    overview_cells: Vec<[u16; 2]>,
    /// Coarse overview chunks it made.
    pyramid_chunks: usize,
    /// Sampled pixels it keeps.
    sample_rows: usize,
}

/// A block's statistics: sequential f64 sums over its cells in cell order, and its
/// [`YEAR_SAMPLE`] smallest-key sampled pixels.
#[derive(Debug, Clone)]
struct BlockPartial {
    header: PartialHeader,
    /// Count, sum, upper triangle of outer products ([`SUMS_LEN`]).
    sums: Vec<f64>,
    rows: Vec<SampleRow>,
}

fn trim(rows: &mut Vec<SampleRow>) {
    rows.sort_by(row_order);
    rows.truncate(YEAR_SAMPLE);
}

impl BlockPartial {
    fn encode(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).expect("serialisable");
        let mut out = Vec::with_capacity(
            16 + header.len() + SUMS_LEN * 8 + self.rows.len() * (16 + CHANNELS * 4),
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        for v in &self.sums {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for r in &self.rows {
            out.extend_from_slice(&r.key.to_le_bytes());
            for v in [r.cell[0], r.cell[1], r.slot, 0] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for v in &r.values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<BlockPartial, String> {
        let take = |at: &mut usize, n: usize| -> Result<&[u8], String> {
            let s = bytes
                .get(*at..*at + n)
                .ok_or_else(|| format!("truncated at byte {at} of {}", bytes.len()))?;
            *at += n;
            Ok(s)
        };
        let mut at = 0;
        if take(&mut at, 8)? != MAGIC {
            return Err("not a partial (bad magic bytes)".into());
        }
        let n = u64::from_le_bytes(take(&mut at, 8)?.try_into().unwrap()) as usize;
        let header: PartialHeader =
            serde_json::from_slice(take(&mut at, n)?).map_err(|e| format!("header: {e}"))?;
        let f64s = |s: &[u8]| -> Vec<f64> {
            s.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect()
        };
        let sums = f64s(take(&mut at, SUMS_LEN * 8)?);
        let mut rows = Vec::with_capacity(header.sample_rows);
        for _ in 0..header.sample_rows {
            let key = f64s(take(&mut at, 8)?)[0];
            let ids: Vec<u16> = take(&mut at, 8)?
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes(c.try_into().unwrap()))
                .collect();
            let values = take(&mut at, CHANNELS * 4)?
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            rows.push(SampleRow {
                key,
                cell: [ids[0], ids[1]],
                slot: ids[2],
                values,
            });
        }
        if at != bytes.len() {
            return Err(format!("{} bytes after the last row", bytes.len() - at));
        }
        Ok(BlockPartial { header, sums, rows })
    }
}

/// One band's year as the store holds it now (two listings: the per-cell overview level and
/// the statistics).
pub struct BandYear {
    /// The band.
    pub band: String,
    /// The year.
    pub year: u16,
    y: u64,
    lat_start: u16,
    pyramid: Pyramid,
    overview_cells: BTreeSet<CellIndex>,
    statistics_cells: Vec<CellIndex>,
    wanted: Vec<(usize, Vec<CellIndex>)>,
    sums: StoreArray,
    sample: StoreArray,
}

impl BandYear {
    /// The band's year, `None` when the band has no overviews or not that year.
    pub fn list(store: &MosaicStore, band: &str, year: u16) -> Result<Option<Self>, FormatError> {
        if !store.has_overviews(band)? {
            return Ok(None);
        }
        let Some(layout) = store.band_layout(band)? else {
            return Ok(None);
        };
        let Some(y) = layout.year_index(year) else {
            return Ok(None);
        };
        let pyramid = Pyramid::open(store, band, &layout)?;
        let overview_cells: BTreeSet<CellIndex> =
            year_chunks(store, &pyramid.base_scales(band), y)?
                .into_iter()
                .collect();
        let statistics_cells =
            year_chunks(store, &format!("{band}/{}", statistics_array(SUMS)), y)?;
        let wanted = pyramid.wanted(&overview_cells);
        let open = |name: &str| store.open_array(&format!("/{band}/{}", statistics_array(name)));
        Ok(Some(BandYear {
            band: band.to_string(),
            year,
            y,
            lat_start: layout.grid.lat_start_index,
            sums: open(SUMS)?,
            sample: open(SAMPLE)?,
            pyramid,
            overview_cells,
            statistics_cells,
            wanted,
        }))
    }

    /// Cells (band-relative) with statistics, as listed.
    pub fn statistics_cell_count(&self) -> usize {
        self.statistics_cells.len()
    }

    fn cell(&self, (i, j): CellIndex) -> Cell {
        Cell {
            lat_index: self.lat_start + i as u16,
            lon_index: j as u16,
        }
    }

    fn block(&self, c: CellIndex) -> Block {
        block_of(self.cell(c))
    }

    /// Blocks holding any per-cell overview cell, statistics cell or the first cell of a
    /// coarse chunk to make, in order.
    pub fn blocks(&self) -> Vec<Block> {
        let mut set: BTreeSet<Block> = self
            .overview_cells
            .iter()
            .chain(&self.statistics_cells)
            .map(|&c| self.block(c))
            .collect();
        for (to, wanted) in &self.wanted {
            set.extend(wanted.iter().map(|&ab| self.chunk_block(*to, ab)));
        }
        set.into_iter().collect()
    }

    /// The block of a coarse chunk's first cell: the block whose share makes it.
    fn chunk_block(&self, to: usize, ab: CellIndex) -> (u16, u16) {
        chunk_block(self.lat_start, self.pyramid.cells_per_chunk(to), ab)
    }

    fn statistics_cells_in(&self, block: Block) -> Vec<CellIndex> {
        self.statistics_cells
            .iter()
            .copied()
            .filter(|&c| self.block(c) == block)
            .collect()
    }

    fn overview_window(&self, block: Block) -> Vec<[u16; 2]> {
        let m = self.pyramid.margin() as i64;
        let b = BLOCK_CELLS as i64;
        let (r, c) = (block.0 as i64 * b, block.1 as i64 * b);
        self.overview_cells
            .iter()
            .map(|&x| self.cell(x))
            .filter(|x| {
                let (lat, lon) = (x.lat_index as i64, x.lon_index as i64);
                lat >= r - m && lat < r + b + m && lon >= c - m && lon < c + b + m
            })
            .map(|x| [x.lat_index, x.lon_index])
            .collect()
    }

    fn header(&self, block: Block) -> PartialHeader {
        PartialHeader {
            band: self.band.clone(),
            year: self.year,
            block: [block.0, block.1],
            statistics_cells: self
                .statistics_cells_in(block)
                .into_iter()
                .map(|c| {
                    let x = self.cell(c);
                    [x.lat_index, x.lon_index]
                })
                .collect(),
            overview_cells: self.overview_window(block),
            pyramid_chunks: 0,
            sample_rows: 0,
        }
    }

    /// Sum a block's statistics (cells read in parallel, added in cell order).
    fn block_statistics(&self, block: Block) -> Result<BlockPartial, FormatError> {
        let cells = self.statistics_cells_in(block);
        let path = format!("{}/{}", self.band, statistics_array(SUMS));
        let mut sums = vec![0f64; SUMS_LEN];
        let mut rows = Vec::new();
        for part in cells.chunks(256) {
            let read: Vec<Result<CellStatistics, FormatError>> = part
                .par_iter()
                .map(|&(i, j)| {
                    let y = self.y;
                    let cell_sums: Vec<f64> = self
                        .sums
                        .retrieve_chunk(&[y, i, j, 0])
                        .map_err(FormatError::array(&path))?;
                    let sample: Vec<f32> = self
                        .sample
                        .retrieve_chunk(&[y, i, j, 0, 0])
                        .map_err(FormatError::array(&path))?;
                    debug_assert_eq!(sample.len(), SAMPLE_PIXELS * CHANNELS);
                    Ok(CellStatistics {
                        sums: cell_sums,
                        sample,
                    })
                })
                .collect();
            for (&c, stats) in part.iter().zip(read) {
                let stats = stats?;
                let n = stats.count();
                if n.is_nan() || n <= 0.0 {
                    continue;
                }
                for (a, b) in sums.iter_mut().zip(&stats.sums) {
                    *a += b;
                }
                let cell = self.cell(c);
                for (key, slot, values) in sample_keys(cell, self.year, &stats) {
                    rows.push(SampleRow {
                        key,
                        cell: [cell.lat_index, cell.lon_index],
                        slot,
                        values: values.to_vec(),
                    });
                }
                if rows.len() > 2 * YEAR_SAMPLE {
                    trim(&mut rows);
                }
            }
        }
        trim(&mut rows);
        let mut header = self.header(block);
        header.sample_rows = rows.len();
        Ok(BlockPartial { header, sums, rows })
    }

    /// Make a block's coarse overview chunks and its partial, and store the partial (last: a
    /// partial in the store means its chunks are too).
    fn make_block(&self, store: &MosaicStore, block: Block) -> Result<BlockPartial, FormatError> {
        let mut chunks = 0;
        for (to, wanted) in &self.wanted {
            let mine: Vec<CellIndex> = wanted
                .iter()
                .copied()
                .filter(|&ab| self.chunk_block(*to, ab) == block)
                .collect();
            mine.par_iter()
                .map(|&ab| {
                    self.pyramid
                        .make_chunk(self.y, *to, ab, &self.overview_cells)
                })
                .collect::<Result<Vec<()>, FormatError>>()?;
            chunks += mine.len();
        }
        let mut partial = self.block_statistics(block)?;
        partial.header.pyramid_chunks = chunks;
        store
            .store
            .put(&partial_key(&self.band, self.year, block), partial.encode())?;
        Ok(partial)
    }

    /// The stored partial of a block: `Ok(Some(Ok))` when it matches the store now,
    /// `Ok(Some(Err(why)))` when stale, `Ok(None)` when absent.
    fn stored_partial(
        &self,
        store: &MosaicStore,
        block: Block,
    ) -> Result<Option<Result<BlockPartial, String>>, FormatError> {
        let key = partial_key(&self.band, self.year, block);
        let Some(bytes) = store.store.get(&key)? else {
            return Ok(None);
        };
        let partial = BlockPartial::decode(&bytes).map_err(|message| FormatError::Partial {
            location: store.location().to_string(),
            key: key.clone(),
            message,
        })?;
        let now = self.header(block);
        let (was, then) = (&partial.header, &now);
        let why = if was.statistics_cells != then.statistics_cells {
            Some(format!(
                "{key} summed the statistics of {} cells, the store now has {} in its block ({})",
                was.statistics_cells.len(),
                then.statistics_cells.len(),
                first_difference(&was.statistics_cells, &then.statistics_cells)
            ))
        } else if was.overview_cells != then.overview_cells {
            Some(format!(
                "{key} made its overview chunks from {} cells around its block, the store now has {} ({})",
                was.overview_cells.len(),
                then.overview_cells.len(),
                first_difference(&was.overview_cells, &then.overview_cells)
            ))
        } else if (&was.band, was.year, was.block) != (&then.band, then.year, then.block) {
            Some(format!("{key} holds the partial of another block"))
        } else {
            None
        };
        Ok(Some(match why {
            Some(why) => Err(why),
            None => Ok(partial),
        }))
    }
}

fn first_difference(was: &[[u16; 2]], now: &[[u16; 2]]) -> String {
    let (a, b): (BTreeSet<_>, BTreeSet<_>) = (was.iter().collect(), now.iter().collect());
    let cell = |c: &[u16; 2]| {
        Cell {
            lat_index: c[0],
            lon_index: c[1],
        }
        .to_string()
    };
    if let Some(c) = b.difference(&a).next() {
        format!("{} built since", cell(c))
    } else if let Some(c) = a.difference(&b).next() {
        format!("{} gone since", cell(c))
    } else {
        "same cells".into()
    }
}

/// Which blocks a step makes: a share's, or all.
pub type Owns<'a> = &'a (dyn Fn(Block) -> bool + Sync);

/// Progress of a finalize step, block by block (a year's blocks take minutes at scale).
#[derive(Debug, Clone, Copy)]
pub enum BlockProgress {
    /// This many more blocks to go through.
    Found(usize),
    /// One block made or read.
    Done,
}

/// Hears of [`BlockProgress`].
pub type OnBlock<'a> = &'a (dyn Fn(BlockProgress) + Sync);

/// What finalize did for one year.
#[derive(Debug, Clone, Default)]
pub struct YearPartials {
    /// The year.
    pub year: u16,
    /// Blocks whose chunks and partial were made.
    pub made: usize,
    /// Blocks whose stored partial matched the store and was used as it is.
    pub reused: usize,
    /// Coarse overview chunks written.
    pub chunks: usize,
    /// Partials found stale (and made again), each with the reason.
    pub stale: Vec<String>,
}

/// Make the partials (and coarse chunks) of the blocks `owns` picks, for a year and the bands
/// given; a block whose stored partial matches the store is left as it is.
pub fn make_partials(
    store: &MosaicStore,
    year: u16,
    bands: &[String],
    owns: Owns,
    on_block: OnBlock,
) -> Result<YearPartials, FormatError> {
    let mut report = YearPartials {
        year,
        ..Default::default()
    };
    for band in bands {
        let Some(by) = BandYear::list(store, band, year)? else {
            continue;
        };
        let blocks: Vec<Block> = by.blocks().into_iter().filter(|&b| owns(b)).collect();
        on_block(BlockProgress::Found(blocks.len()));
        for block in blocks {
            match by.stored_partial(store, block)? {
                Some(Ok(_)) => report.reused += 1,
                stale => {
                    if let Some(Err(why)) = stale {
                        report.stale.push(why);
                    }
                    let p = by.make_block(store, block)?;
                    report.made += 1;
                    report.chunks += p.header.pyramid_chunks;
                }
            }
            on_block(BlockProgress::Done);
        }
    }
    Ok(report)
}

/// What to do with a block that has no partial matching the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Make its chunks and partial (finalize).
    Make,
    /// Sum its statistics in memory, writing nothing (a reader, or one band's build).
    Sum,
}

/// A block's partial, why its stored one was stale, and whether it was made now.
type Folded = (BlockPartial, Option<String>, bool);

/// A year's statistics folded from every band's block partials, bands in store order and
/// blocks in order; also the cells with statistics per band (what the basis records).
pub fn fold_year(
    store: &MosaicStore,
    year: u16,
    missing: Missing,
    on_block: OnBlock,
) -> Result<(YearStatistics, BTreeMap<String, usize>, YearPartials), FormatError> {
    let mut report = YearPartials {
        year,
        ..Default::default()
    };
    let mut sums = vec![0f64; SUMS_LEN];
    let mut rows: Vec<(usize, SampleRow)> = Vec::new();
    let mut cells = BTreeMap::new();
    let mut merged_cells = 0;
    for (band_pos, band) in store.bands()?.iter().enumerate() {
        let Some(by) = BandYear::list(store, band, year)? else {
            continue;
        };
        if by.statistics_cell_count() > 0 {
            cells.insert(band.clone(), by.statistics_cell_count());
        }
        let blocks = by.blocks();
        on_block(BlockProgress::Found(blocks.len()));
        // A few blocks at a time: their partials are read in parallel, folded in order.
        for group in blocks.chunks(2 * rayon::current_num_threads().max(1)) {
            let got: Vec<Result<Folded, FormatError>> = group
                .par_iter()
                .map(|&block| match by.stored_partial(store, block)? {
                    Some(Ok(p)) => Ok((p, None, false)),
                    other => {
                        let why = match other {
                            Some(Err(why)) => Some(why),
                            _ => None,
                        };
                        let p = match missing {
                            Missing::Make => by.make_block(store, block)?,
                            Missing::Sum => by.block_statistics(block)?,
                        };
                        Ok((p, why, true))
                    }
                })
                .collect();
            for g in got {
                let (p, why, made) = g?;
                on_block(BlockProgress::Done);
                if made {
                    report.made += 1;
                    report.chunks += p.header.pyramid_chunks;
                } else {
                    report.reused += 1;
                }
                report.stale.extend(why);
                merged_cells += p.header.statistics_cells.len();
                for (a, b) in sums.iter_mut().zip(&p.sums) {
                    *a += b;
                }
                rows.extend(p.rows.into_iter().map(|r| (band_pos, r)));
                if rows.len() > 2 * YEAR_SAMPLE {
                    trim_year(&mut rows);
                }
            }
        }
    }
    trim_year(&mut rows);
    let stats = YearStatistics {
        count: sums[0],
        sum: sums[1..1 + CHANNELS].to_vec(),
        outer: sums[1 + CHANNELS..1 + CHANNELS + TRIANGLE].to_vec(),
        sample: rows.into_iter().map(|(_, r)| (r.key, r.values)).collect(),
        cells: merged_cells,
    };
    Ok((stats, cells, report))
}

fn trim_year(rows: &mut Vec<(usize, SampleRow)>) {
    rows.sort_by(|a, b| {
        a.1.key
            .total_cmp(&b.1.key)
            .then(a.0.cmp(&b.0))
            .then(row_order(&a.1, &b.1))
    });
    rows.truncate(YEAR_SAMPLE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_decodes_to_what_was_encoded_and_rejects_damage() {
        let p = BlockPartial {
            header: PartialHeader {
                band: "70-80".into(),
                year: 2024,
                block: [26, 3],
                statistics_cells: vec![[1700, 200], [1701, 201]],
                overview_cells: vec![[1700, 200]],
                pyramid_chunks: 5,
                sample_rows: 2,
            },
            sums: (0..SUMS_LEN).map(|i| i as f64 * 0.5).collect(),
            rows: (0..2)
                .map(|k| SampleRow {
                    key: 0.25 * k as f64,
                    cell: [1700 + k, 200],
                    slot: k * 3,
                    values: (0..CHANNELS).map(|c| c as f32 - k as f32).collect(),
                })
                .collect(),
        };
        let bytes = p.encode();
        let back = BlockPartial::decode(&bytes).unwrap();
        assert_eq!(back.header, p.header);
        assert_eq!(back.sums, p.sums);
        assert_eq!(back.rows[1].values, p.rows[1].values);
        assert_eq!((back.rows[1].cell, back.rows[1].slot), ([1701, 200], 3));
        assert!(
            BlockPartial::decode(&bytes[..bytes.len() - 1])
                .unwrap_err()
                .contains("truncated")
        );
        assert!(BlockPartial::decode(b"MOSAICP2").is_err());
    }
}
