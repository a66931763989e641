//! tessera-mosaic: restructure TESSERA embedding tiles (one UTM tile per 0.1-degree cell) into
//! analysis-ready Zarr, one lat/lon array per latitude band.
//!
//! Modules in the order the data travels (docs/architecture.md draws the route):
//! - [`input`]: where tiles come from ([`input::TileSource`]; the local tree), the `.npy` and
//!   GeoTIFF formats, synthetic trees.
//! - [`grid`]: cells, each tile's UTM georeference, `bands.toml`, each band's lat/lon grid.
//! - [`plan`]: which tiles go to which band, shapes and costs.
//! - [`placement`]: which source pixel each output pixel copies; the no-data rule; the gather.
//! - [`build`]: the parallel, resumable band writer and its outputs ([`build::ShardSink`]),
//!   its failure record, and finalize (the steps after every worker).
//! - [`overview`]: the overview pyramid and colour statistics written beside the arrays, and
//!   the colour basis of each year.
//! - [`zarr`]: the output format: layout, key names, metadata documents, codecs.
//! - [`store`]: where bytes go (local folders, object stores); imports nothing of the crate.
//! - The commands that read a built store, one module each: [`verify`], [`query`],
//!   [`sample`], [`preview`] (every picture), [`status`], [`stac`] (catalog and map).
//! - [`error`]: how an error and its causes are written into records and messages.
//! - [`hash`]: the one deterministic hash (synthetic content, verify's samples).

pub mod build;
pub mod error;
pub mod grid;
pub mod hash;
pub mod input;
pub mod overview;
pub mod placement;
pub mod plan;
pub mod preview;
pub mod query;
pub mod sample;
pub mod stac;
pub mod status;
pub mod store;
pub mod verify;
pub mod zarr;
