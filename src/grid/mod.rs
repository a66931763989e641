//! The grid: 0.1-degree cells and their tile names, each tile's UTM georeference, the bands of
//! `bands.toml` and each band's regular lat/lon pixel grid.

mod band_grid;
mod bands;
mod bbox;
mod cell;
mod utm;

pub use band_grid::{
    BandGrid, CHANNELS, GridError, meridian_height_m, min_cols_per_cell, parallel_width_m,
};
pub use bands::{
    BandSpec, BandsConfig, BandsError, ChunkConfig, ChunkOrder, CompressionConfig, band_name,
};
pub use bbox::{BBox, BoxError, LatRange, LonRange};
pub use cell::{CELL_DEG, Cell, CellNameError, LAT_CELLS, LON_CELLS, lat_of_index};
pub use utm::{
    GeometryError, PIXEL_M, TileGeometry, UtmProjection, UtmZone, projection,
    release_thread_projections,
};
