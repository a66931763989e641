//! The user tools that read a built store: `verify` (against the input, independently of the
//! writer), `query` (a lat/lon box to files), `preview` (pictures), `status` (what is built),
//! `sample` (embeddings at points) and `stac` (a catalog and a map); `picture` draws any box
//! from the overview pyramids.

pub mod picture;
pub mod preview;
pub mod query;
pub mod sample;
pub mod stac;
pub mod status;
pub mod verify;
