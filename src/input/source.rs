//! [`TileSource`]: the one way to find and read tiles. Build, verify, the ceiling and the
//! planner see tiles only through it, so a new kind of input (an object store with a
//! manifest, say) is one more implementation, not a change to them.

use std::path::Path;

use super::catalogue::{Catalogue, InputTile, ScalesLayout, ScanError, ScanOptions, TileProblem};
use super::geotiff::U8Raster;
use super::npy::{NpyDtype, NpyHeader};
use crate::grid::{CHANNELS, TileGeometry};

/// How far a landmask's georeference may lie from the rule's: 1 cm.
pub const LANDMASK_TOLERANCE_M: f64 = 0.01;

/// Read a cell's landmask and check it against the tile's georeference (the rule): the same
/// size, the same CRS and the same transform within 1 cm. Any disagreement is a problem
/// naming the file and both georeferences; the tile is not built from a misplaced mask.
pub fn read_landmask_for(
    source: &dyn TileSource,
    path: &Path,
    geometry: &TileGeometry,
) -> Result<Vec<u8>, TileProblem> {
    let mask = source
        .read_landmask(path)
        .map_err(|p| TileProblem::new(&p.path, format!("unreadable landmask: {}", p.reason)))?;
    if (mask.height, mask.width) != (geometry.height, geometry.width) {
        return Err(TileProblem::new(
            path,
            format!(
                "landmask is {} x {} but the tile is {} x {}",
                mask.height, mask.width, geometry.height, geometry.width
            ),
        ));
    }
    let rule = format!(
        "EPSG:{} origin ({:.3}, {:.3}) pixel 10 x 10 m",
        geometry.epsg(),
        geometry.origin_e,
        geometry.origin_n
    );
    let Some(t) = mask.transform else {
        return Err(TileProblem::new(
            path,
            format!(
                "landmask has no north-up georeference (ModelPixelScale, ModelTiepoint, EPSG GeoKey); the rule gives {rule}"
            ),
        ));
    };
    let near = |a: f64, b: f64, tolerance: f64| (a - b).abs() <= tolerance;
    let extent = geometry.height.max(geometry.width) as f64;
    let agrees = t.epsg == geometry.epsg()
        && near(t.x0, geometry.origin_e, LANDMASK_TOLERANCE_M)
        && near(t.y0, geometry.origin_n, LANDMASK_TOLERANCE_M)
        && near(t.dx * extent, 10.0 * extent, LANDMASK_TOLERANCE_M)
        && near(t.dy * extent, 10.0 * extent, LANDMASK_TOLERANCE_M);
    if !agrees {
        return Err(TileProblem::new(
            path,
            format!(
                "landmask georeference EPSG:{} origin ({:.3}, {:.3}) pixel {} x {} m disagrees with the tile's, {rule} (tolerance 1 cm)",
                t.epsg, t.x0, t.y0, t.dx, t.dy
            ),
        ));
    }
    Ok(mask.data)
}

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

    /// Read a landmask GeoTIFF: its size, one byte per pixel (0 = water) and georeference.
    /// Use [`read_landmask_for`], which checks it against the tile.
    fn read_landmask(&self, path: &Path) -> Result<U8Raster, TileProblem>;

    /// The first `max` data bytes of a tile's `.npy` file, to measure compression cheaply.
    fn read_data_prefix(&self, path: &Path, max: usize) -> Result<Vec<u8>, TileProblem>;

    /// A hint: these tiles will be read next, in this order, by about `window` / 2 threads; a
    /// source whose reads wait on a network starts up to `window` files ahead. Local files
    /// need no hint.
    fn prefetch(&self, _tiles: &[&InputTile], _window: usize) {}

    /// Bytes fetched so far and the bytes of the distinct ranges among them, for a source that
    /// reads parts of larger objects (the zone store), where a byte may be fetched twice;
    /// `None` where each tile is read whole, once.
    fn bytes_fetched(&self) -> Option<(u64, u64)> {
        None
    }

    /// True when every catalogued tile has per-pixel optical observation counts
    /// ([`TileSource::read_counts`]); known after [`TileSource::catalogue`].
    fn has_counts(&self) -> bool {
        false
    }

    /// A tile's optical observation counts, one per pixel in the order of its scales, where the
    /// source has them (TESSERA's global store); `None` for `.npy` tiles.
    fn read_counts(&self, _tile: &InputTile) -> Result<Option<Vec<u16>>, TileProblem> {
        Ok(None)
    }

    /// True when a tile whose scales are all NaN is ground without data (the zone store's sea
    /// inside a stored shard), to be skipped; false where it is a broken file (a `.npy` tile).
    fn all_nan_is_no_data(&self) -> bool {
        false
    }
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
