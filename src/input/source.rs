//! [`TileSource`]: the one way to find and read tiles. Build, verify, the ceiling and the
//! planner see tiles only through it, so a new kind of input (an object store with a
//! manifest, say) is one more implementation, not a change to them.

use std::path::Path;

use super::catalogue::{Catalogue, InputTile, ScalesLayout, ScanError, ScanOptions, TileProblem};
use super::npy::{NpyDtype, NpyHeader};
use crate::grid::CHANNELS;

/// Where tiles come from: describe, catalogue, and read a tile's files.
pub trait TileSource: Send + Sync {
    /// Where the tiles are (a folder or URL), for messages and the store's `source` attribute.
    fn describe(&self) -> String;

    /// Every usable tile (headers only; nothing is decoded), with the problems found.
    fn catalogue(&self, options: &ScanOptions) -> Result<Catalogue, ScanError>;

    /// Read a tile's embeddings `.npy` data into `buf` (reused from tile to tile).
    fn read_embeddings(
        &self,
        tile: &InputTile,
        buf: &mut Vec<u8>,
    ) -> Result<NpyHeader, TileProblem>;

    /// Read a tile's scales `.npy`: its header and raw little-endian data.
    fn read_scales(&self, tile: &InputTile) -> Result<(NpyHeader, Vec<u8>), TileProblem>;

    /// Read a landmask GeoTIFF: (width, height, one byte per pixel, 0 = water).
    fn read_landmask(&self, path: &Path) -> Result<(usize, usize, Vec<u8>), TileProblem>;

    /// The first `max` data bytes of a tile's `.npy` file, to measure compression cheaply.
    fn read_data_prefix(&self, path: &Path, max: usize) -> Result<Vec<u8>, TileProblem>;

    /// A hint: these tiles will be read next, in this order, by about `window` / 2 threads; a
    /// source whose reads wait on a network starts up to `window` files ahead. Local files
    /// need no hint.
    fn prefetch(&self, _tiles: &[&InputTile], _window: usize) {}
}

/// Read one tile's embeddings into `embeddings` and its scales as f32 (one per pixel), checking
/// both headers against the catalogue: a file that changed since the scan is a problem.
pub fn read_tile(
    source: &dyn TileSource,
    tile: &InputTile,
    embeddings: &mut Vec<u8>,
) -> Result<Vec<f32>, TileProblem> {
    let (h, w) = (tile.height, tile.width);
    let eh = source.read_embeddings(tile, embeddings)?;
    if eh.dtype != NpyDtype::Int8 || eh.shape != [h, w, CHANNELS] {
        return Err(TileProblem::new(
            &tile.embeddings,
            format!("changed since the scan: now {:?} {:?}", eh.dtype, eh.shape),
        ));
    }
    let (sh, raw) = source.read_scales(tile)?;
    let per_channel = match tile.scales_layout {
        ScalesLayout::PerPixel => 1,
        ScalesLayout::PerChannel => CHANNELS,
    };
    if sh.dtype != NpyDtype::Float32 || sh.len() != h * w * per_channel {
        return Err(TileProblem::new(
            &tile.scales,
            format!("changed since the scan: now {:?} {:?}", sh.dtype, sh.shape),
        ));
    }
    Ok(raw
        .chunks_exact(4 * per_channel)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}
