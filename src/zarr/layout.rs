//! The output layout: what a band records about itself, and every key name of the store
//! (groups, arrays, shards, failure records), built and parsed in this one place.
//! docs/format.md describes the same layout for readers.

use serde::{Deserialize, Serialize};

use crate::grid::{BandGrid, Cell, CompressionConfig};

/// Version of the layout documented in docs/format.md. Version 2 added `grid.chunk_order`
/// (channel-planar inner chunks through the `transpose` codec); a version 1 layout has none and
/// is pixel-major, and reads and extends as before.
pub const FORMAT_VERSION: u32 = 2;

/// The root group's metadata document.
pub const ROOT_METADATA_KEY: &str = "zarr.json";

/// The int8 embeddings array of a band: (year, lat, lon, channel).
pub const EMBEDDINGS: &str = "embeddings";

/// The float32 scales array of a band: (year, lat, lon).
pub const SCALES: &str = "scales";

/// The uint16 optical observation counts of a band, (year, lat, lon): written only from an
/// input that has them (TESSERA's global store), under the source's own name.
pub const S2_OBS_COUNT: &str = "s2_obs_count";

/// Fill of `s2_obs_count`: no data. Not 0, which is a count.
pub const COUNTS_FILL: u16 = u16::MAX;

/// A band group's metadata document.
pub fn group_key(band: &str) -> String {
    format!("{band}/zarr.json")
}

/// An array's metadata document.
pub fn array_metadata_key(band: &str, array: &str) -> String {
    format!("{band}/{array}/zarr.json")
}

/// An array's node path, as zarrs names it.
pub fn array_path(band: &str, array: &str) -> String {
    format!("/{band}/{array}")
}

/// Prefix of every shard (chunk) object of an array.
pub fn shard_prefix(band: &str, array: &str) -> String {
    format!("{band}/{array}/c/")
}

/// The chunk-grid indices of a shard key of `band`/`array`, `None` for any other key.
pub fn parse_shard_key(key: &str, band: &str, array: &str) -> Option<Vec<u64>> {
    parse_chunk_key(key, &format!("{band}/{array}"))
}

/// The chunk-grid indices of a chunk key of the array at `array_key` (its path without the
/// leading `/`, e.g. `70-80/overviews/2/scales`), `None` for any other key.
pub fn parse_chunk_key(key: &str, array_key: &str) -> Option<Vec<u64>> {
    let rest = key.strip_prefix(array_key)?.strip_prefix("/c/")?;
    rest.split('/').map(|p| p.parse().ok()).collect()
}

/// True for the shard objects of a band's data arrays (the large writes of a build), not
/// those of its overviews.
pub fn is_data_shard_key(key: &str) -> bool {
    let mut parts = key.split('/').skip(1);
    matches!(parts.next(), Some(EMBEDDINGS | SCALES | S2_OBS_COUNT)) && parts.next() == Some("c")
}

/// Prefix of a band's failure records (one per build or worker).
pub fn failures_prefix(band: &str) -> String {
    format!("_mosaic/failures/{band}/")
}

/// A failure record: `_mosaic/failures/{band}/{all|worker-I-of-N}.json`, where `worker` is
/// `I/N` as on the command line.
pub fn failures_key(band: &str, worker: Option<&str>) -> String {
    let who = worker.map_or("all".to_string(), |w| {
        format!("worker-{}", w.replace('/', "-of-"))
    });
    format!("{}{who}.json", failures_prefix(band))
}

/// How a band is laid out: stored in the band group's attributes under `tessera_mosaic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BandLayout {
    /// Layout version.
    pub format_version: u32,
    /// The band grid.
    pub grid: BandGrid,
    /// Year of index 0 on the year axis.
    pub first_year: u16,
    /// Length of the year axis (years first_year ..= first_year + years - 1).
    pub years: u16,
    /// Compression of the inner chunks.
    pub compression: CompressionConfig,
    /// Fill value of `embeddings`.
    pub embeddings_fill: i8,
}

impl BandLayout {
    /// Years on the axis, in order.
    pub fn year_values(&self) -> Vec<u16> {
        (0..self.years).map(|i| self.first_year + i).collect()
    }

    /// The year and cell of a shard, from its chunk-grid indices (year, cell row, cell column).
    pub fn shard_tile(&self, idx: &[u64]) -> (u16, Cell) {
        let year = self.first_year + idx[0] as u16;
        let cell = Cell {
            lat_index: self.grid.lat_start_index + idx[1] as u16,
            lon_index: idx[2] as u16,
        };
        (year, cell)
    }

    /// Index of a year on the axis.
    pub fn year_index(&self, year: u16) -> Option<u64> {
        (year >= self.first_year && year < self.first_year + self.years)
            .then(|| (year - self.first_year) as u64)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_keys_parse_back_to_their_indices() {
        assert_eq!(
            parse_shard_key("70-80/embeddings/c/1/3/250/0", "70-80", EMBEDDINGS),
            Some(vec![1, 3, 250, 0])
        );
        assert_eq!(
            parse_shard_key("70-80/scales/c/0/1/2", "70-80", EMBEDDINGS),
            None
        );
        assert_eq!(
            parse_shard_key("70-80/scales/c/0/1/2.tmp.9.0.ab", "70-80", SCALES),
            None
        );
        assert!(is_data_shard_key("70-80/scales/c/0/1/2"));
        assert!(!is_data_shard_key("70-80/lat/c/0"));
        assert!(!is_data_shard_key("70-80/overviews/2/scales/c/0/1/2"));
        assert_eq!(
            failures_key("70-80", Some("2/8")),
            "_mosaic/failures/70-80/worker-2-of-8.json"
        );
        assert_eq!(
            failures_key("70-80", None),
            "_mosaic/failures/70-80/all.json"
        );
    }
}
