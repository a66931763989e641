//! A TESSERA tree on a local disk (or a mounted mirror): `ROOT/{year}/grid_{lon}_{lat}/`
//! `grid_{lon}_{lat}.npy` and `..._scales.npy` (or the same files flat in the year folder),
//! plus optional landmasks `grid_{lon}_{lat}.tiff` in a separate folder.
//!
//! Cataloguing reads only directory listings and `.npy` headers, in parallel; every problem is
//! recorded against its path and the scan goes on.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::catalogue::{
    Catalogue, InputTile, LANDMASK_DIR, ScanError, ScanOptions, TileProblem,
    check_embeddings_header, check_scales_header,
};
use super::dataset::DatasetRequest;
use super::geotiff;
use super::landmasks::{
    LANDMASKS_NAME, add_listed_landmasks, read_landmasks_file, scan_landmask_dir,
};
use super::manifest::{
    MANIFEST_NAME, ManifestRow, read_manifest_file, resolve_listed, tile_paths_by_rule,
};
use super::npy::{self, NpyHeader};
use super::source::TileSource;
use crate::error::chain;
use crate::grid::Cell;

/// A TESSERA tree in a local folder.
#[derive(Debug, Clone)]
pub struct LocalTree {
    root: PathBuf,
    manifest: Option<PathBuf>,
    ignore_manifest: bool,
    /// Size of each landmask a `landmasks.parquet` lists, checked when it is read.
    landmask_sizes: Arc<Mutex<HashMap<PathBuf, u64>>>,
    /// The manifest rows to use: `--dataset-version` and `--variant`, if given.
    dataset: DatasetRequest,
}

impl LocalTree {
    /// The tree under `root` (nothing is read until [`TileSource::catalogue`]).
    pub fn new(root: &Path) -> LocalTree {
        LocalTree {
            root: root.to_path_buf(),
            manifest: None,
            ignore_manifest: false,
            landmask_sizes: Arc::default(),
            dataset: DatasetRequest::default(),
        }
    }

    /// Use the manifest rows of this dataset version and variant (each `None`: the default,
    /// see [`crate::input::DatasetChoice::resolve`]).
    pub fn with_dataset(mut self, dataset: DatasetRequest) -> LocalTree {
        self.dataset = dataset;
        self
    }

    /// Catalogue by scanning the files (tiles and landmasks) even where a manifest or a
    /// `landmasks.parquet` is present (to write them).
    pub fn scanning_files(mut self) -> LocalTree {
        self.ignore_manifest = true;
        self
    }

    /// Catalogue from this manifest instead of `ROOT/manifest.parquet` or a scan.
    pub fn with_manifest(mut self, manifest: Option<PathBuf>) -> LocalTree {
        self.manifest = manifest;
        self
    }

    /// The manifest to catalogue from: the one named, or `ROOT/manifest.parquet` if present.
    fn manifest(&self) -> Option<PathBuf> {
        if self.ignore_manifest {
            return None;
        }
        self.manifest
            .clone()
            .or_else(|| Some(self.root.join(MANIFEST_NAME)).filter(|p| p.is_file()))
    }

    /// The `landmasks.parquet` to catalogue landmasks from, when none is named: in ROOT, or
    /// beside the manifest.
    fn landmasks_parquet(&self) -> Option<PathBuf> {
        if self.ignore_manifest {
            return None;
        }
        let beside_manifest = self
            .manifest
            .as_ref()
            .map(|m| m.parent().unwrap_or(Path::new(".")).join(LANDMASKS_NAME));
        std::iter::once(self.root.join(LANDMASKS_NAME))
            .chain(beside_manifest)
            .find(|p| p.is_file())
    }

    /// Add the landmasks: from the folder or `landmasks.parquet` named, else from
    /// [`Self::landmasks_parquet`], else from the landmask folder in or beside ROOT.
    fn add_landmasks(
        &self,
        catalogue: &mut Catalogue,
        options: &ScanOptions,
    ) -> Result<(), ScanError> {
        let parquet = match &options.landmasks {
            Some(p) if crate::store::is_url(&p.to_string_lossy()) => {
                return Err(ScanError::LandmaskSource {
                    location: p.display().to_string(),
                    message: "a local input takes a local landmask folder or landmasks.parquet"
                        .into(),
                });
            }
            Some(p) if p.extension().is_some_and(|e| e == "parquet") => Some(p.clone()),
            Some(dir) => {
                scan_landmask_dir(catalogue, dir);
                return Ok(());
            }
            None => self.landmasks_parquet(),
        };
        let Some(file) = parquet else {
            if let Some(dir) = landmask_dir(&self.root) {
                scan_landmask_dir(catalogue, &dir);
            }
            return Ok(());
        };
        let rows = read_landmasks_file(&file)?;
        let dir = folder_of(&file);
        let dir_abs = absolute(Path::new(&dir));
        let sizes = add_listed_landmasks(catalogue, &rows, options.lat_index_range.as_ref(), |r| {
            let by_rule = || format!("{dir}/{}.tiff", r.cell.name());
            PathBuf::from(resolve_listed(
                &r.path,
                &dir,
                &[dir.as_str(), dir_abs.as_str()],
                by_rule,
            ))
        });
        *self.landmask_sizes.lock().expect("no poisoning") = sizes.into_iter().collect();
        Ok(())
    }
}

impl TileSource for LocalTree {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn catalogue(&self, options: &ScanOptions) -> Result<Catalogue, ScanError> {
        let mut catalogue = match self.manifest() {
            None => scan(&self.root, options)?,
            Some(manifest) => {
                let rows = read_manifest_file(&manifest)?;
                let dir = folder_of(&manifest);
                let (root, root_abs) = (display(&self.root), absolute(&self.root));
                let choice = self.dataset.resolve(&root_abs);
                let locate = |r: &ManifestRow| {
                    let (e, s) = tile_paths_by_rule(&root, r.year, r.cell);
                    let roots = [root.as_str(), root_abs.as_str()];
                    (
                        PathBuf::from(resolve_listed(&r.grid_path, &dir, &roots, || e)),
                        PathBuf::from(resolve_listed(&r.scales_path, &dir, &roots, || s)),
                    )
                };
                Catalogue::from_manifest(
                    &self.root,
                    &display(&manifest),
                    &rows,
                    &choice,
                    locate,
                    options,
                )?
            }
        };
        self.add_landmasks(&mut catalogue, options)?;
        catalogue.problems.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(catalogue)
    }

    fn read_embeddings(
        &self,
        tile: &InputTile,
        buf: &mut Vec<u8>,
    ) -> Result<NpyHeader, TileProblem> {
        regular_file(&tile.embeddings)?;
        npy::read_npy_into(&tile.embeddings, buf)
            .map_err(|e| TileProblem::new(&tile.embeddings, chain(&e)))
    }

    fn read_scales(&self, tile: &InputTile) -> Result<(NpyHeader, Vec<u8>), TileProblem> {
        regular_file(&tile.scales)?;
        npy::read_npy(&tile.scales).map_err(|e| TileProblem::new(&tile.scales, chain(&e)))
    }

    fn read_landmask(&self, path: &Path) -> Result<geotiff::U8Raster, TileProblem> {
        regular_file(path)?;
        let listed = self
            .landmask_sizes
            .lock()
            .expect("no poisoning")
            .get(path)
            .copied();
        if let Some(expected) = listed {
            let size = std::fs::metadata(path).map_or(0, |m| m.len());
            if size != expected {
                return Err(TileProblem::new(
                    path,
                    format!("the file has {size} bytes, but {LANDMASKS_NAME} gives {expected}"),
                ));
            }
        }
        let file = std::fs::File::open(path)
            .map_err(|e| TileProblem::new(path, format!("cannot read: {e}")))?;
        geotiff::read_u8_raster(std::io::BufReader::new(file))
            .map_err(|e| TileProblem::new(path, chain(&e)))
    }

    fn read_data_prefix(&self, path: &Path, max: usize) -> Result<Vec<u8>, TileProblem> {
        use std::io::{Read, Seek, SeekFrom};
        let fail = |e: String| TileProblem::new(path, e);
        regular_file(path)?;
        let header = npy::read_header(path).map_err(|e| fail(chain(&e)))?;
        let mut f = std::fs::File::open(path).map_err(|e| fail(chain(&e)))?;
        f.seek(SeekFrom::Start(header.data_offset as u64))
            .map_err(|e| fail(chain(&e)))?;
        let mut buf = Vec::new();
        f.take(max.min(header.data_bytes()) as u64)
            .read_to_end(&mut buf)
            .map_err(|e| fail(chain(&e)))?;
        Ok(buf)
    }
}

/// A path as text.
fn display(path: &Path) -> String {
    path.display().to_string()
}

/// The absolute form of a path (as given when it cannot be resolved).
fn absolute(path: &Path) -> String {
    std::fs::canonicalize(path).map_or_else(|_| display(path), |p| display(&p))
}

/// The folder of a file, as text (`.` for a bare file name).
fn folder_of(file: &Path) -> String {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => display(p),
        _ => ".".to_string(),
    }
}

/// Refuse anything but a regular file (after following links): opening a FIFO blocks forever,
/// and a device never ends.
fn regular_file(path: &Path) -> Result<(), TileProblem> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(m) if m.is_dir() => Err(TileProblem::new(path, "is a directory, expected a file")),
        Ok(_) => Err(TileProblem::new(
            path,
            "is not a regular file (a FIFO, socket or device): refused, it could block forever",
        )),
        Err(e) => Err(TileProblem::new(path, format!("cannot read: {e}"))),
    }
}

/// Scan a TESSERA tree. Reads only directory listings and `.npy` headers.
fn scan(root: &Path, options: &ScanOptions) -> Result<Catalogue, ScanError> {
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
    Ok(catalogue)
}

/// The landmask folder in or beside ROOT: `ROOT/global_0.1_degree_tiff_all` or its sibling.
fn landmask_dir(root: &Path) -> Option<PathBuf> {
    [root.join(LANDMASK_DIR), root.with_file_name(LANDMASK_DIR)]
        .into_iter()
        .find(|p| p.is_dir())
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
                vec![TileProblem::new(dir, format!("cannot read: {e}"))],
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
                        Err(TileProblem::new(path, format!("bad tile name: {e}"))),
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
                    problems.push(TileProblem::new(
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
            problems.push(TileProblem::new(
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
        return Err(TileProblem::new(
            dir,
            "expected a tile folder, found a file",
        ));
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
            return Err(TileProblem::new(
                path,
                "is a directory, expected a .npy file",
            ));
        }
        if std::fs::symlink_metadata(path).is_err() {
            return Err(TileProblem::new(path, "missing"));
        }
        regular_file(path)?;
        npy::read_header(path).map_err(|e| TileProblem::new(path, format!("cannot read: {e}")))
    };
    let eh = header(&embeddings)?;
    let (height, width) = check_embeddings_header(&embeddings, &eh)?;
    let sh = header(&scales)?;
    let scales_layout = check_scales_header(&scales, &sh, height, width)?;
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
