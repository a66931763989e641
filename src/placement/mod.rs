//! Placement: which source pixel every output pixel copies (exact nearest neighbour), the
//! no-data rule, and the gather kernel that copies the chosen pixels into an output shard.

mod gather;
mod map;
mod nodata;

pub use gather::{gather, gather_beside, gather_into};
pub use map::{NO_SOURCE, PlacementMap, cell_pixel_centres, place_cell, place_cell_exact};
pub use nodata::{has_data, scale_is_valid};
