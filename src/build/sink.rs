//! Where the writer puts a built (cell, year): a [`ShardSink`]. The writer gathers each tile
//! into the output's row order once and pushes it to every sink; the band arrays are the first
//! sink. A new output (overviews, statistics) is a new sink, set up beside the band arrays in
//! [`super::build_band`], with no change to the writer's loop.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::grid::Cell;
use crate::store::BackgroundWrites;
use crate::zarr::{
    BandArrays, EMBEDDINGS, FormatError, MosaicStore, S2_OBS_COUNT, SCALES, is_data_shard_key,
    parse_shard_key, raw_bytes,
};

/// One (cell, year) gathered into the output's row order (row 0 = south), ready to store.
pub struct GatheredTile<'a> {
    /// The cell.
    pub cell: Cell,
    /// The year.
    pub year: u16,
    /// int8 embeddings as bytes: rows x cols x channels of the cell.
    pub embeddings: &'a [u8],
    /// float32 scales, NaN where there is no data.
    pub scales: &'a [f32],
    /// uint16 optical observation counts (fill where there is no data), from an input that has
    /// them.
    pub counts: Option<&'a [u16]>,
}

/// A write that failed after [`ShardSink::put`] returned (a background write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkFailure {
    /// The cell.
    pub cell: Cell,
    /// The year.
    pub year: u16,
    /// What went wrong.
    pub reason: String,
}

/// Why a sink could not store a tile.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("writing the shard failed")]
    Shard(#[source] Box<zarrs::array::ArrayError>),
    #[error("writing the overviews failed")]
    Overviews(#[source] Box<zarrs::array::ArrayError>),
}

/// Cells stored, per year.
pub type BuiltCells = BTreeMap<u16, BTreeSet<Cell>>;

/// An output of the build.
pub trait ShardSink: Sync {
    /// The (cell, year)s this output already holds: a rerun skips a tile every sink holds.
    fn built(&self) -> Result<BuiltCells, FormatError>;

    /// Store one gathered tile (whole objects only; may queue the write).
    fn put(&self, tile: &GatheredTile) -> Result<(), SinkError>;

    /// Wait for queued writes and return the tiles whose writes failed.
    fn finish(&self) -> Vec<SinkFailure>;
}

/// The band's `embeddings` and `scales` arrays (and `s2_obs_count` from an input with counts):
/// one whole-shard write each per (cell, year), handed to background threads so that
/// compression overlaps the disk's fsyncs.
pub struct BandArraysSink {
    store: MosaicStore,
    arrays: BandArrays,
    background: Arc<BackgroundWrites>,
    /// This build writes `s2_obs_count`: a tile is built only once its counts shard is there.
    counts: bool,
}

impl BandArraysSink {
    /// The sink of an existing band of `store`, with `queue` shards at most waiting to be
    /// written; `counts`: the input has observation counts (written where the band has the
    /// array).
    pub fn new(
        store: &MosaicStore,
        band: &str,
        queue: usize,
        counts: bool,
    ) -> Result<Self, FormatError> {
        let (writing, background) =
            BackgroundWrites::wrap(&store.store, 2, queue, is_data_shard_key);
        let arrays = store.with_store(writing).band_arrays(band)?;
        Ok(BandArraysSink {
            store: store.clone(),
            counts: counts && arrays.counts.is_some(),
            arrays,
            background,
        })
    }
}

impl ShardSink for BandArraysSink {
    fn built(&self) -> Result<BuiltCells, FormatError> {
        if !self.counts {
            return self.store.built_cells(&self.arrays);
        }
        let band = &self.arrays.layout.grid.name;
        self.store.tiles_in_all(
            &[EMBEDDINGS, SCALES, S2_OBS_COUNT].map(|a| format!("{band}/{a}")),
            &self.arrays.layout,
        )
    }

    fn put(&self, tile: &GatheredTile) -> Result<(), SinkError> {
        let idx = self
            .arrays
            .shard_indices(tile.cell, tile.year)
            .expect("year on the axis");
        let options = zarrs::array::CodecOptions::default()
            .with_store_empty_chunks(true)
            .with_concurrent_target(1);
        self.arrays
            .embeddings
            .store_chunk_opt(&idx, raw_bytes(tile.embeddings), &options)
            .map_err(|e| SinkError::Shard(Box::new(e)))?;
        self.arrays
            .scales
            .store_chunk_opt(&idx[..3], tile.scales, &options)
            .map_err(|e| SinkError::Shard(Box::new(e)))?;
        if let (Some(array), Some(counts), true) = (&self.arrays.counts, tile.counts, self.counts) {
            array
                .store_chunk_opt(&idx[..3], counts, &options)
                .map_err(|e| SinkError::Shard(Box::new(e)))?;
        }
        Ok(())
    }

    fn finish(&self) -> Vec<SinkFailure> {
        let errors = self.background.finish();
        let layout = &self.arrays.layout;
        let band = layout.grid.name.as_str();
        // One failure per tile, the embeddings shard's error first.
        let mut failed: BTreeMap<(u16, Cell), String> = BTreeMap::new();
        for array in [EMBEDDINGS, SCALES, S2_OBS_COUNT] {
            for (key, error) in &errors {
                let Some(idx) = parse_shard_key(key, band, array).filter(|i| i.len() >= 3) else {
                    continue;
                };
                let (year, cell) = layout.shard_tile(&idx);
                failed
                    .entry((year, cell))
                    .or_insert_with(|| format!("writing the shard failed: {error}"));
            }
        }
        failed
            .into_iter()
            .map(|((year, cell), reason)| SinkFailure { cell, year, reason })
            .collect()
    }
}
