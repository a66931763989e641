//! `mosaic preview`, and every picture the crate draws: a lon/lat box in the year's colours
//! from the overview pyramids (`pyramid`, also the map's tiles), a band without overviews
//! sampled per cell and coloured by its own principal components (`sampled`), and which cells
//! are present (`coverage`, also the map's coverage layer). All draw an [`Image`] of a
//! [`BBox`](crate::grid::BBox).

mod coverage;
mod error;
mod image;
mod pyramid;
mod sampled;

pub use coverage::{cell_image, render_coverage};
pub use error::PreviewError;
pub use image::Image;
pub use pyramid::{CellPixels, ChunkRead, Picture, Pyramids, latest_year, render_box};
pub use sampled::{band_cells_bbox, pca_rgb, render_embeddings};
