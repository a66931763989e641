//! tessera-mosaic: restructure TESSERA embedding tiles (one UTM tile per 0.1-degree cell) into
//! analysis-ready Zarr, one lat/lon array per latitude band.
//!
//! Modules, in pipeline order:
//! - [`cell`]: the 0.1-degree cell and its `grid_{lon}_{lat}` name.
//! - [`npy`], [`geotiff`]: the input file formats.
//! - [`tiles`]: scanning a TESSERA tree into a catalogue of input tiles.
//! - [`geometry`]: each tile's UTM CRS, origin and size (PROJ).
//! - [`bands`]: `bands.toml`. [`grid`]: the lat/lon grid of a band.
//! - [`plan`]: which tiles go where, shapes and costs.
//! - [`synth`]: realistic synthetic input.
//! - [`codec`]: the Zarr codec chains.

pub mod bands;
pub mod cell;
pub mod codec;
pub mod geometry;
pub mod geotiff;
pub mod grid;
pub mod npy;
pub mod object_store;
pub mod placement;
pub mod plan;
pub mod preview;
pub mod query;
pub mod stac;
pub mod status;
pub mod store;
pub mod synth;
pub mod tiles;
pub mod verify;
pub mod writer;
