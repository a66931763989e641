//! `mosaic stac`: a static STAC catalog of a store (a collection per year, an item per band
//! with its exact footprint) and a static map beside it.

mod catalog;
mod footprint;
mod map;
mod tiles;

pub use catalog::{
    AssetHref, BandCoverage, CATALOG_ID, DATACUBE_EXTENSION, PROJECTION_EXTENSION, STAC_VERSION,
    StacError, StacOptions, StacSummary, ZARR_MEDIA_TYPE, collection_id, cube_dimensions,
    cube_variables, item_id, read_coverage, relative_href, write_stac,
};
pub use footprint::{footprint_geojson, footprint_indices};
pub use map::{
    BASEMAP_FILES, COVERAGE_RGBA, FZSTD_FILES, LEAFLET_FILES, MapOptions, coverage_image,
    leaflet_dist, relative_url,
};
pub use tiles::{
    MAX_ZOOM_SLACK, MapSummary, TILE_SIZE, YearTiles, cell_tiles, native_max_zoom, tile_bbox,
    tile_span, tiles_of_cells,
};

/// The cell whose south-west corner is (`lon`, `lat`), for the tests of these modules.
#[cfg(test)]
fn cell_at_corner(lon: f64, lat: f64) -> crate::grid::Cell {
    crate::grid::Cell::containing(lon + 0.05, lat + 0.05).unwrap()
}
