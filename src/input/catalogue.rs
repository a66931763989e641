//! The catalogue: every usable tile of an input, per year and cell, with the problems found
//! on the way. Whatever the source (a local tree today), planning, building and verifying work
//! from this.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::grid::{Cell, GeometryError, TileGeometry};

/// Folder name TESSERA uses for its landmasks.
pub const LANDMASK_DIR: &str = "global_0.1_degree_tiff_all";

/// How a tile's scales are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ScalesLayout {
    /// (H, W): one scale per pixel (the usual case).
    PerPixel,
    /// (H, W, 128): one scale per pixel and channel (a few published files); the writer uses
    /// the first channel's scale, which these files repeat across channels.
    PerChannel,
}

/// One tile of one year: its files and what their headers say.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputTile {
    /// Year of the embedding.
    pub year: u16,
    /// The cell it covers.
    pub cell: Cell,
    /// The int8 embeddings file.
    pub embeddings: PathBuf,
    /// The float32 scales file.
    pub scales: PathBuf,
    /// Layout of the scales file.
    pub scales_layout: ScalesLayout,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Size of the two files in bytes.
    pub bytes: u64,
}

/// A problem found with one input path. Problems never stop a scan or a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TileProblem {
    /// The file or folder at fault.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for TileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// Everything found under an input root.
#[derive(Debug, Default)]
pub struct Catalogue {
    /// The scanned root.
    pub root: PathBuf,
    /// Valid tiles per year, per cell.
    pub years: BTreeMap<u16, BTreeMap<Cell, InputTile>>,
    /// Tile geometry of every cell that has a tile in some year.
    pub geometry: BTreeMap<Cell, TileGeometry>,
    /// Landmask file per cell, where present.
    pub landmasks: BTreeMap<Cell, PathBuf>,
    /// Everything that could not be used, with the reason.
    pub problems: Vec<TileProblem>,
}

/// Options for [`Catalogue::scan`].
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Landmask folder; `None` looks for `ROOT/global_0.1_degree_tiff_all` and then beside ROOT.
    pub landmasks: Option<PathBuf>,
    /// Keep only these years (all when empty).
    pub years: Vec<u16>,
    /// Keep only cells whose latitude index is in this range (all when `None`).
    pub lat_index_range: Option<std::ops::Range<u16>>,
    /// Ticked once per tile folder examined.
    pub progress: Option<indicatif::ProgressBar>,
}

/// Errors that stop a scan before it starts (an unreadable root).
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read input root {path}: {source}")]
    Root {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl std::error::Error for TileProblem {}

impl TileProblem {
    /// A problem with `path`.
    pub fn new(path: &Path, reason: impl Into<String>) -> TileProblem {
        TileProblem {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

impl Catalogue {
    /// Compute each cell's geometry once and drop tiles whose size disagrees with it.
    pub(crate) fn check_geometry(&mut self) {
        let cells: Vec<Cell> = {
            let mut all: Vec<Cell> = self
                .years
                .values()
                .flat_map(|t| t.keys().copied())
                .collect();
            all.sort();
            all.dedup();
            all
        };
        let geometry: Vec<(Cell, Result<TileGeometry, GeometryError>)> = cells
            .par_iter()
            .map(|&c| (c, TileGeometry::for_cell(c)))
            .collect();
        for (cell, g) in geometry {
            match g {
                Ok(g) => {
                    self.geometry.insert(cell, g);
                }
                Err(e) => {
                    for tiles in self.years.values_mut() {
                        if let Some(t) = tiles.remove(&cell) {
                            self.problems
                                .push(TileProblem::new(&t.embeddings, e.to_string()));
                        }
                    }
                }
            }
        }
        for tiles in self.years.values_mut() {
            tiles.retain(|cell, t| {
                let g = &self.geometry[cell];
                if (t.height, t.width) == (g.height, g.width) {
                    true
                } else {
                    self.problems.push(TileProblem::new(
                        &t.embeddings,
                        format!(
                            "tile is {} x {} but the georeference rule gives {} x {} (EPSG:{})",
                            t.height,
                            t.width,
                            g.height,
                            g.width,
                            g.epsg()
                        ),
                    ));
                    false
                }
            });
        }
        self.geometry
            .retain(|cell, _| self.years.values().any(|t| t.contains_key(cell)));
    }

    /// Years present, ascending.
    pub fn year_list(&self) -> Vec<u16> {
        self.years.keys().copied().collect()
    }

    /// Number of valid tiles over all years.
    pub fn tile_count(&self) -> usize {
        self.years.values().map(|t| t.len()).sum()
    }

    /// All tiles of a cell, over the years.
    pub fn tiles_of_cell(&self, cell: Cell) -> impl Iterator<Item = &InputTile> {
        self.years.values().filter_map(move |t| t.get(&cell))
    }
}
