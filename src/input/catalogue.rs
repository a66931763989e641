//! The catalogue: every usable tile of an input, per year and cell, with the problems found
//! on the way. Whatever the source (a local tree today), planning, building and verifying work
//! from this.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use super::dataset::DatasetChoice;
use super::manifest::{ManifestError, ManifestRow};
use super::npy::{NpyDtype, NpyHeader};
use crate::error::chain;
use crate::grid::{CHANNELS, Cell, GeometryError, TileGeometry};

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
    /// The dataset version and variant whose manifest rows were used (`None`: no manifest).
    pub dataset: Option<DatasetChoice>,
    /// The order in which the source prefers its cells read (ascending), where it has one: the
    /// zone store groups cells by zone and row so that neighbours share decoded chunks. Empty:
    /// the cells' own order.
    pub read_order: BTreeMap<Cell, u64>,
}

/// Options for [`Catalogue::scan`].
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Landmask folder, or a `landmasks.parquet` (for a remote input, either may be a URL);
    /// `None` looks for `ROOT/landmasks.parquet` (or beside the manifest), then for the folder
    /// `ROOT/global_0.1_degree_tiff_all` (and, for a local tree, beside ROOT).
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
    #[error("cannot list input {location}: {message}")]
    Remote { location: String, message: String },
    #[error(transparent)]
    Manifest(#[from] super::manifest::ManifestError),
    #[error(transparent)]
    Landmasks(#[from] super::landmasks::LandmasksError),
    #[error("landmasks {location}: {message}")]
    LandmaskSource { location: String, message: String },
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
                                .push(TileProblem::new(&t.embeddings, chain(&e)));
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

/// Check an embeddings header: int8, (H, W, 128). Returns (H, W).
pub(crate) fn check_embeddings_header(
    path: &Path,
    header: &NpyHeader,
) -> Result<(usize, usize), TileProblem> {
    if header.dtype != NpyDtype::Int8 {
        return Err(TileProblem::new(
            path,
            format!("dtype is {:?}, expected int8", header.dtype),
        ));
    }
    match header.shape[..] {
        [height, width, channels] if channels == CHANNELS && height > 0 && width > 0 => {
            Ok((height, width))
        }
        _ => Err(TileProblem::new(
            path,
            format!("shape {:?} is not (H, W, {CHANNELS})", header.shape),
        )),
    }
}

/// Check a scales header against its tile's (H, W): float32, (H, W) or (H, W, 128).
pub(crate) fn check_scales_header(
    path: &Path,
    header: &NpyHeader,
    height: usize,
    width: usize,
) -> Result<ScalesLayout, TileProblem> {
    if header.dtype != NpyDtype::Float32 {
        return Err(TileProblem::new(
            path,
            format!("dtype is {:?}, expected float32", header.dtype),
        ));
    }
    if header.shape == [height, width] {
        Ok(ScalesLayout::PerPixel)
    } else if header.shape == [height, width, CHANNELS] {
        Ok(ScalesLayout::PerChannel)
    } else {
        Err(TileProblem::new(
            path,
            format!(
                "shape {:?} does not match the tile's ({height}, {width})",
                header.shape
            ),
        ))
    }
}

/// True when `size` bytes can be a `.npy` file of `data` bytes: the rest is a header of a size
/// numpy writes (a multiple of 16, at most 64 KiB). A wrong shape is off by whole rows.
fn npy_size_fits(size: u64, data: u64) -> bool {
    size.checked_sub(data)
        .is_some_and(|header| (16..=65536).contains(&header) && header % 16 == 0)
}

impl Catalogue {
    /// A catalogue from a manifest's rows (those of the chosen dataset version and variant),
    /// opening no file: each tile's shape comes from the georeference rule and is checked
    /// against the sizes the manifest gives (a mismatch is a problem for that tile). `locate`
    /// gives a row's two files. A manifest with rows but none of the chosen dataset is an
    /// error naming what it holds; two chosen rows for one tile and year are a problem naming
    /// both rows, and neither is used.
    pub fn from_manifest(
        root: &Path,
        location: &str,
        rows: &[ManifestRow],
        choice: &DatasetChoice,
        locate: impl Fn(&ManifestRow) -> (PathBuf, PathBuf) + Sync,
        options: &ScanOptions,
    ) -> Result<Catalogue, ManifestError> {
        let mut catalogue = Catalogue {
            root: root.to_path_buf(),
            dataset: Some(choice.clone()),
            ..Default::default()
        };
        let chosen: Vec<(usize, &ManifestRow)> = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| choice.matches(r.version.as_deref(), r.variant.as_deref()))
            .collect();
        if chosen.is_empty() && !rows.is_empty() {
            let mut present: BTreeMap<(String, String), usize> = BTreeMap::new();
            for r in rows {
                let said = |v: &Option<String>| v.clone().unwrap_or_default();
                *present
                    .entry((said(&r.version), said(&r.variant)))
                    .or_default() += 1;
            }
            let present = present
                .into_iter()
                .map(|((v, var), n)| format!("version {v:?}, variant {var:?}: {n} rows"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ManifestError::NoRowsForDataset {
                location: location.to_string(),
                choice: choice.clone(),
                present,
            });
        }
        let keep = |r: &&(usize, &ManifestRow)| {
            let r = r.1;
            (options.years.is_empty() || options.years.contains(&r.year))
                && options
                    .lat_index_range
                    .as_ref()
                    .is_none_or(|range| range.contains(&r.cell.lat_index))
        };
        let rows: Vec<(usize, &ManifestRow)> = chosen.iter().filter(keep).copied().collect();
        let mut cells: Vec<Cell> = rows.iter().map(|r| r.1.cell).collect();
        cells.sort();
        cells.dedup();
        let geometry: BTreeMap<Cell, Result<TileGeometry, GeometryError>> = cells
            .par_iter()
            .map(|&c| (c, TileGeometry::for_cell(c)))
            .collect();
        let mut seen: BTreeMap<(u16, Cell), usize> = BTreeMap::new();
        let mut duplicates = BTreeMap::new();
        for (index, r) in rows {
            if let Some(p) = &options.progress {
                p.inc(1);
            }
            let (embeddings, scales) = locate(r);
            let g = match &geometry[&r.cell] {
                Ok(g) => *g,
                Err(e) => {
                    catalogue
                        .problems
                        .push(TileProblem::new(&embeddings, chain(&e)));
                    continue;
                }
            };
            let pixels = (g.height * g.width) as u64;
            if !npy_size_fits(r.grid_size, pixels * CHANNELS as u64) {
                catalogue.problems.push(TileProblem::new(
                    &embeddings,
                    format!(
                        "the manifest gives {} bytes, but the georeference rule makes the tile {} x {} x {CHANNELS} int8 (EPSG:{})",
                        r.grid_size, g.height, g.width, g.epsg()
                    ),
                ));
                continue;
            }
            let scales_layout = if npy_size_fits(r.scales_size, pixels * 4) {
                ScalesLayout::PerPixel
            } else if npy_size_fits(r.scales_size, pixels * 4 * CHANNELS as u64) {
                ScalesLayout::PerChannel
            } else {
                catalogue.problems.push(TileProblem::new(
                    &scales,
                    format!(
                        "the manifest gives {} bytes, but scales of a {} x {} tile are float32 ({}, {}) or ({}, {}, {CHANNELS})",
                        r.scales_size, g.height, g.width, g.height, g.width, g.height, g.width
                    ),
                ));
                continue;
            };
            if let Some(&first) = seen.get(&(r.year, r.cell)) {
                catalogue.problems.push(TileProblem::new(
                    &embeddings,
                    format!(
                        "duplicate tile: {} of {} is in rows {first} and {index} of manifest {location} (both {} {}); neither is used",
                        r.cell, r.year, choice.version, choice.variant
                    ),
                ));
                duplicates.insert((r.year, r.cell), first);
                continue;
            }
            seen.insert((r.year, r.cell), index);
            catalogue.geometry.insert(r.cell, g);
            catalogue.years.entry(r.year).or_default().insert(
                r.cell,
                InputTile {
                    year: r.year,
                    cell: r.cell,
                    embeddings,
                    scales,
                    scales_layout,
                    height: g.height,
                    width: g.width,
                    bytes: r.grid_size + r.scales_size,
                },
            );
        }
        for ((year, cell), first) in duplicates {
            if let Some(t) = catalogue.years.get_mut(&year).and_then(|t| t.remove(&cell)) {
                catalogue.problems.push(TileProblem::new(
                    &t.embeddings,
                    format!(
                        "duplicate tile: {cell} of {year} (row {first} of manifest {location}) is listed again; neither is used"
                    ),
                ));
            }
        }
        catalogue
            .geometry
            .retain(|cell, _| catalogue.years.values().any(|t| t.contains_key(cell)));
        catalogue.problems.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(catalogue)
    }
}
