//! The input side: a TESSERA tree scanned into a catalogue of tiles per year.
//!
//! Layout: `ROOT/{year}/grid_{lon}_{lat}/grid_{lon}_{lat}.npy` and `..._scales.npy`, plus
//! optional landmasks `grid_{lon}_{lat}.tiff` in a separate folder. Only headers are read.
//! Every problem is recorded against its path and the scan goes on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::cell::Cell;
use crate::geometry::{GeometryError, TileGeometry};
use crate::npy::{self, NpyDtype};

/// Number of embedding channels in every tile.
pub const CHANNELS: usize = 128;

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

fn problem(path: &Path, reason: impl Into<String>) -> TileProblem {
    TileProblem {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl Catalogue {
    /// Scan a TESSERA tree. Reads only directory listings and `.npy` headers.
    pub fn scan(root: &Path, options: &ScanOptions) -> Result<Catalogue, ScanError> {
        let entries = std::fs::read_dir(root).map_err(|source| ScanError::Root {
            path: root.to_path_buf(),
            source,
        })?;
        let mut catalogue = Catalogue {
            root: root.to_path_buf(),
            ..Default::default()
        };
        let mut year_dirs = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.len() == 4 && name.bytes().all(|b| b.is_ascii_digit()) {
                let year: u16 = name.parse().expect("four digits");
                if options.years.is_empty() || options.years.contains(&year) {
                    year_dirs.push((year, entry.path()));
                }
            }
        }
        year_dirs.sort();

        for (year, dir) in year_dirs {
            let (tiles, problems) = scan_year(year, &dir, options);
            catalogue.problems.extend(problems);
            catalogue.years.insert(year, tiles);
        }

        catalogue.check_geometry();
        let landmask_dir = options.landmasks.clone().or_else(|| {
            [root.join(LANDMASK_DIR), root.with_file_name(LANDMASK_DIR)]
                .into_iter()
                .find(|p| p.is_dir())
        });
        if let Some(dir) = landmask_dir {
            catalogue.scan_landmasks(&dir);
        }
        catalogue.problems.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(catalogue)
    }

    /// Compute each cell's geometry once and drop tiles whose size disagrees with it.
    fn check_geometry(&mut self) {
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
                            self.problems.push(problem(&t.embeddings, e.to_string()));
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
                    self.problems.push(problem(
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

    fn scan_landmasks(&mut self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            self.problems
                .push(problem(dir, "landmask folder cannot be read"));
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name
                .strip_suffix(".tiff")
                .or_else(|| name.strip_suffix(".tif"))
            else {
                continue;
            };
            match Cell::parse_name(stem) {
                Ok(cell) => {
                    self.landmasks.insert(cell, path);
                }
                Err(e) => self
                    .problems
                    .push(problem(&path, format!("bad landmask name: {e}"))),
            }
        }
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

/// Scan one year folder in parallel over its tile folders.
fn scan_year(
    year: u16,
    dir: &Path,
    options: &ScanOptions,
) -> (BTreeMap<Cell, InputTile>, Vec<TileProblem>) {
    let entries: Vec<_> = match std::fs::read_dir(dir) {
        Ok(e) => e.flatten().map(|e| e.path()).collect(),
        Err(e) => {
            return (
                BTreeMap::new(),
                vec![problem(dir, format!("cannot read: {e}"))],
            );
        }
    };
    // Tile folders `grid_X/`, and flat files `grid_X.npy` directly in the year folder.
    let results: Vec<Option<(Cell, Result<InputTile, TileProblem>)>> = entries
        .par_iter()
        .map(|path| {
            let name = path.file_name()?.to_string_lossy().into_owned();
            if name.starts_with('.') {
                return None;
            }
            let flat = !path.is_dir() && name.ends_with(".npy");
            let stem = if flat {
                if name.ends_with("_scales.npy") {
                    return None;
                }
                name.strip_suffix(".npy").expect("checked")
            } else {
                name.as_str()
            };
            let cell = match Cell::parse_name(stem) {
                Ok(c) => c,
                Err(e) => {
                    return Some((
                        Cell {
                            lat_index: u16::MAX,
                            lon_index: 0,
                        },
                        Err(problem(path, format!("bad tile name: {e}"))),
                    ));
                }
            };
            if let Some(range) = &options.lat_index_range
                && !range.contains(&cell.lat_index)
            {
                return None;
            }
            let tile = if flat {
                read_tile_files(
                    year,
                    cell,
                    path.clone(),
                    dir.join(format!("{stem}_scales.npy")),
                )
            } else {
                read_tile(year, cell, path)
            };
            if let Some(p) = &options.progress {
                p.inc(1);
            }
            Some((cell, tile))
        })
        .collect();
    let mut tiles = BTreeMap::new();
    let mut problems = Vec::new();
    let mut seen: BTreeMap<Cell, PathBuf> = BTreeMap::new();
    let mut duplicates = std::collections::BTreeSet::new();
    for (cell, r) in results.into_iter().flatten() {
        match r {
            Ok(t) => {
                if let Some(first) = seen.get(&cell) {
                    problems.push(problem(
                        &t.embeddings,
                        format!(
                            "duplicate tile: {cell} is also at {}; neither is used",
                            first.display()
                        ),
                    ));
                    duplicates.insert(cell);
                } else {
                    seen.insert(cell, t.embeddings.clone());
                    tiles.insert(cell, t);
                }
            }
            Err(p) => problems.push(p),
        }
    }
    for cell in duplicates {
        if let Some(t) = tiles.remove(&cell) {
            problems.push(problem(
                &t.embeddings,
                format!("duplicate tile: {cell} appears twice in {year}; neither is used"),
            ));
        }
    }
    (tiles, problems)
}

/// Check one tile folder's two headers.
fn read_tile(year: u16, cell: Cell, dir: &Path) -> Result<InputTile, TileProblem> {
    if !dir.is_dir() {
        return Err(problem(dir, "expected a tile folder, found a file"));
    }
    let name = cell.name();
    read_tile_files(
        year,
        cell,
        dir.join(format!("{name}.npy")),
        dir.join(format!("{name}_scales.npy")),
    )
}

/// Check a tile's embeddings and scales headers.
fn read_tile_files(
    year: u16,
    cell: Cell,
    embeddings: PathBuf,
    scales: PathBuf,
) -> Result<InputTile, TileProblem> {
    let header = |path: &Path| {
        if path.is_dir() {
            return Err(problem(path, "is a directory, expected a .npy file"));
        }
        if std::fs::symlink_metadata(path).is_err() {
            return Err(problem(path, "missing"));
        }
        npy::read_header(path).map_err(|e| problem(path, format!("cannot read: {e}")))
    };
    let eh = header(&embeddings)?;
    if eh.dtype != NpyDtype::Int8 {
        return Err(problem(
            &embeddings,
            format!("dtype is {:?}, expected int8", eh.dtype),
        ));
    }
    let [height, width, channels] = eh.shape[..] else {
        return Err(problem(
            &embeddings,
            format!("shape {:?} is not (H, W, {CHANNELS})", eh.shape),
        ));
    };
    if channels != CHANNELS || height == 0 || width == 0 {
        return Err(problem(
            &embeddings,
            format!("shape {:?} is not (H, W, {CHANNELS})", eh.shape),
        ));
    }
    let sh = header(&scales)?;
    if sh.dtype != NpyDtype::Float32 {
        return Err(problem(
            &scales,
            format!("dtype is {:?}, expected float32", sh.dtype),
        ));
    }
    let scales_layout = if sh.shape == [height, width] {
        ScalesLayout::PerPixel
    } else if sh.shape == [height, width, CHANNELS] {
        ScalesLayout::PerChannel
    } else {
        return Err(problem(
            &scales,
            format!(
                "shape {:?} does not match the tile's ({height}, {width})",
                sh.shape
            ),
        ));
    };
    let bytes = (eh.data_offset + eh.data_bytes() + sh.data_offset + sh.data_bytes()) as u64;
    Ok(InputTile {
        year,
        cell,
        embeddings,
        scales,
        scales_layout,
        height,
        width,
        bytes,
    })
}
