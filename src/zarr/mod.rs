//! The Zarr format of the output: the layout and its key names, the metadata documents, the
//! codec chains, and [`MosaicStore`], which reads and writes bands through a
//! [`crate::store::Store`].

mod arrays;
mod codecs;
mod inner_chunks;
mod layout;
mod metadata;
mod mosaic_store;
mod overview_layout;

pub use arrays::{Coordinate, StoreArray};
pub use codecs::{compression_codecs, encoded_size, raw_bytes, sharding_codec, transpose_codec};
pub use inner_chunks::{InnerChunkError, InnerChunks, REMOTE_READ_THREADS, on_read_threads};
pub use layout::{
    BandLayout, COUNTS_FILL, EMBEDDINGS, FORMAT_VERSION, ROOT_METADATA_KEY, S2_OBS_COUNT, SCALES,
    array_metadata_key, array_path, failures_key, failures_prefix, group_key, is_data_shard_key,
    parse_shard_key, shard_prefix,
};
pub use metadata::{
    PROJ_CONVENTION_UUID, SPATIAL_CONVENTION_UUID, WGS84_WKT, band_array_metadata,
    band_group_metadata, band_transform, counts_array_metadata, geozarr_attributes,
    root_group_metadata, zarr_conventions,
};
pub use mosaic_store::{BandArrays, FormatError, MosaicStore};
pub use overview_layout::{
    BLOCK_CELLS, COLOUR_STATISTICS, FIRST_LEVEL, MULTISCALES_CONVENTION_UUID, OVERVIEWS,
    OverviewLevel, SAMPLE, SAMPLE_PIXELS, STATISTICS_LEVEL, SUMS, SUMS_LEN, colour_basis_key,
    level_array, nearest_index, overview_levels, partial_key, statistics_array,
};
