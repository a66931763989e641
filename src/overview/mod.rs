//! What a build adds to see the data: the overview pyramid (each level a nearest-neighbour
//! copy of the one below, so every overview pixel is a source pixel) and the colour statistics
//! from which one colour basis per year is computed for every picture of that year.
//!
//! The layout (levels, keys, metadata) is part of the output format, in [`crate::zarr`]; this
//! module computes what goes in it: [`downsample`] makes a cell's levels, [`statistics`] sums
//! and samples its pixels, [`basis`] turns a year's statistics into colours, and [`pyramid`]
//! makes the coarse multi-cell levels from the finer ones (`mosaic finalize`), [`partials`]
//! splits that step and the statistics' sums into fixed blocks for `finalize --worker`.

pub mod basis;
pub mod downsample;
pub mod partials;
pub mod pyramid;
pub mod statistics;

pub use basis::{ColourBasis, colour_basis, principal_components, store_colour_basis};
pub use downsample::{CellLevel, cell_levels, downsample_cell};
pub use partials::{
    Block, BlockProgress, Missing, OnBlock, YearPartials, block_of, forget_partials, make_partials,
};
pub use statistics::{CellStatistics, YearStatistics};
