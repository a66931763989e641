//! The overviews and colour statistics of a (cell, year), made while its gathered block is in
//! memory: the per-cell pyramid levels and the statistics, each one whole object per (cell,
//! year), so a rerun or another worker never reads, modifies and writes one back.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::sink::{BuiltCells, GatheredTile, ShardSink, SinkError, SinkFailure};
use crate::grid::{BandGrid, Cell};
use crate::overview::{CellStatistics, cell_levels};
use crate::store::BackgroundWrites;
use crate::zarr::{
    BandLayout, COLOUR_STATISTICS, EMBEDDINGS, FormatError, MosaicStore, OVERVIEWS, OverviewLevel,
    SAMPLE, SCALES, STATISTICS_LEVEL, SUMS, StoreArray, level_array, overview_levels, raw_bytes,
    statistics_array,
};

/// (year, cell row, cell column) of a per-cell overview or statistics object's key.
fn chunk_of(key: &str) -> Option<(u64, u64, u64)> {
    if !(key.contains(&format!("/{OVERVIEWS}/")) || key.contains(&format!("/{COLOUR_STATISTICS}/")))
    {
        return None;
    }
    let (_, rest) = key.split_once("/c/")?;
    let mut parts = rest.split('/').map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// The band's overview levels written per cell, and its colour statistics. Their objects are
/// written by a background thread (as the band arrays' shards are), so that the small
/// objects' fsyncs overlap the next tile's work.
pub struct OverviewSink {
    store: MosaicStore,
    background: Arc<BackgroundWrites>,
    layout: BandLayout,
    levels: Vec<(OverviewLevel, StoreArray, StoreArray)>,
    sums: StoreArray,
    sample: StoreArray,
}

impl OverviewSink {
    /// The sink of a band whose overview metadata exists, with `queue` objects at most waiting
    /// to be written.
    pub fn new(store: &MosaicStore, band: &str, queue: usize) -> Result<Self, FormatError> {
        let (writing, background) =
            BackgroundWrites::wrap(&store.store, 1, queue, |key| chunk_of(key).is_some());
        let layout = store.band_layout(band)?.ok_or_else(|| FormatError::Band {
            location: store.location().to_string(),
            band: band.to_string(),
            message: "no such band in the store".into(),
        })?;
        let open = |path: String| {
            let path = format!("/{band}/{path}");
            store.with_store(writing.clone()).open_array(&path)
        };
        let mut levels = Vec::new();
        for level in overview_levels(&layout.grid)
            .into_iter()
            .filter(|l| l.per_cell())
        {
            levels.push((
                level,
                open(level_array(level.level, EMBEDDINGS))?,
                open(level_array(level.level, SCALES))?,
            ));
        }
        Ok(OverviewSink {
            sums: open(statistics_array(SUMS))?,
            sample: open(statistics_array(SAMPLE))?,
            store: store.clone(),
            background,
            layout,
            levels,
        })
    }

    fn grid(&self) -> &BandGrid {
        &self.layout.grid
    }
}

impl ShardSink for OverviewSink {
    /// The (cell, year)s with every per-cell object: each level's and the statistics'.
    fn built(&self) -> Result<BuiltCells, FormatError> {
        let mut arrays: Vec<&StoreArray> = vec![&self.sums, &self.sample];
        for (_, e, s) in &self.levels {
            arrays.push(e);
            arrays.push(s);
        }
        let keys: Vec<String> = arrays
            .iter()
            .map(|a| a.path().as_str().trim_start_matches('/').to_string())
            .collect();
        self.store.tiles_in_all(&keys, &self.layout)
    }

    fn put(&self, tile: &GatheredTile) -> Result<(), SinkError> {
        let y = self.layout.year_index(tile.year).expect("year on the axis");
        let (i, j) = self.grid().cell_shard(tile.cell);
        let (i, j) = (i as u64, j as u64);
        let options = zarrs::array::CodecOptions::default()
            .with_store_empty_chunks(true)
            .with_concurrent_target(1);
        let levels = cell_levels(self.grid(), tile.embeddings, tile.scales);
        for (made, (_, emb, scales)) in levels.iter().zip(&self.levels) {
            emb.store_chunk_opt(&[y, i, j, 0], raw_bytes(&made.embeddings), &options)
                .map_err(|e| SinkError::Overviews(Box::new(e)))?;
            scales
                .store_chunk_opt(&[y, i, j], made.scales.as_slice(), &options)
                .map_err(|e| SinkError::Overviews(Box::new(e)))?;
        }
        let at = levels
            .iter()
            .find(|l| l.level.level == STATISTICS_LEVEL)
            .or(levels.last())
            .expect("at least one per-cell level");
        let stats = CellStatistics::of_pixels(tile.cell, tile.year, &at.embeddings, &at.scales);
        self.sums
            .store_chunk_opt(&[y, i, j, 0], stats.sums.as_slice(), &options)
            .map_err(|e| SinkError::Overviews(Box::new(e)))?;
        self.sample
            .store_chunk_opt(&[y, i, j, 0, 0], stats.sample.as_slice(), &options)
            .map_err(|e| SinkError::Overviews(Box::new(e)))
    }

    fn finish(&self) -> Vec<SinkFailure> {
        let mut failed: BTreeMap<(u16, Cell), String> = BTreeMap::new();
        for (key, error) in self.background.finish() {
            let Some((y, i, j)) = chunk_of(&key) else {
                continue;
            };
            let cell = Cell {
                lat_index: self.grid().lat_start_index + i as u16,
                lon_index: j as u16,
            };
            failed
                .entry((self.layout.first_year + y as u16, cell))
                .or_insert_with(|| format!("writing the overviews failed ({key}): {error}"));
        }
        failed
            .into_iter()
            .map(|((year, cell), reason)| SinkFailure { cell, year, reason })
            .collect()
    }
}
