//! `mosaic manifest`: write TESSERA's Parquet manifest for a local tree, and `landmasks.parquet`
//! beside it when the tree has landmasks, so that a mirror can be published (and catalogued in
//! seconds) the way TESSERA publishes its bucket.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::shared::{exit_code, report_problems, scan};
use tessera_mosaic::input::{
    DatasetRequest, LANDMASKS_NAME, LandmaskRow, LocalTree, MANIFEST_NAME, ManifestRow,
    write_landmasks, write_manifest,
};

/// Write manifest.parquet (TESSERA's columns) for a local tree, and landmasks.parquet beside it
/// when the tree has landmasks.
#[derive(clap::Args)]
pub struct Args {
    /// The TESSERA root (`ROOT/{year}/grid_*/...`).
    #[arg(long)]
    pub input: PathBuf,
    /// Output file (default: ROOT/manifest.parquet). Paths in it are relative to its folder.
    #[arg(short, long)]
    pub out: Option<PathBuf>,
    /// Landmask folder (default: ROOT/global_0.1_degree_tiff_all or beside ROOT); its
    /// landmasks are listed in landmasks.parquet beside the manifest.
    #[arg(long)]
    pub landmasks: Option<PathBuf>,
    /// The `version` column: what geotessera's Registry will ask for (`v1` = 1.0, `v1.1`).
    /// Default: the dataset the input folder names (`v1`, `v1.1-cam`), else geotessera's
    /// default version, 1.1, so that `GeoTessera(registry_dir=ROOT)` reads it as it is.
    #[arg(long)]
    pub dataset_version: Option<String>,
    /// The `variant` column. Default: the version's default variant (1.0: vultr, 1.1:
    /// cambridge), which geotessera's Registry asks for when given none.
    #[arg(long)]
    pub variant: Option<String>,
}

/// `file` relative to `dir` (with `..` where it lies beside it), so that the tree and its
/// lists can move together; absolute only when they share no root.
fn relative_to(file: &Path, dir: &Path) -> String {
    let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let (f, d): (Vec<_>, Vec<_>) = (file.components().collect(), dir.components().collect());
    let common = f.iter().zip(&d).take_while(|(a, b)| a == b).count();
    if common <= 1 {
        return file.display().to_string();
    }
    let mut rel = PathBuf::new();
    for _ in common..d.len() {
        rel.push("..");
    }
    for c in &f[common..] {
        rel.push(c);
    }
    rel.display().to_string()
}

/// Size and modification time (microseconds since the epoch) of a file.
fn size_and_mtime(path: &Path) -> Result<(u64, i64)> {
    let m = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_micros() as i64);
    Ok((m.len(), mtime))
}

pub fn run(a: Args) -> Result<ExitCode> {
    // The files themselves, never a manifest or landmasks.parquet already in ROOT.
    let source = LocalTree::new(&a.input).scanning_files();
    let catalogue = scan(&source, a.landmasks.clone(), vec![], None)?;
    let out = a.out.clone().unwrap_or_else(|| a.input.join(MANIFEST_NAME));
    let input = std::fs::canonicalize(&a.input).unwrap_or_else(|_| a.input.clone());
    let dataset = DatasetRequest {
        version: a.dataset_version.clone(),
        variant: a.variant.clone(),
    }
    .resolve(&input.display().to_string());
    let dir = std::fs::canonicalize(out.parent().unwrap_or(Path::new(".")))
        .with_context(|| format!("no folder for {}", out.display()))?;
    let mut rows = Vec::new();
    let mut mtimes = Vec::new();
    for tiles in catalogue.years.values() {
        for tile in tiles.values() {
            let (grid_size, grid_mtime) = size_and_mtime(&tile.embeddings)?;
            let (scales_size, scales_mtime) = size_and_mtime(&tile.scales)?;
            rows.push(ManifestRow {
                version: Some(dataset.version.clone()),
                variant: Some(dataset.variant.clone()),
                cell: tile.cell,
                year: tile.year,
                grid_size,
                scales_size,
                grid_path: relative_to(&tile.embeddings, &dir),
                scales_path: relative_to(&tile.scales, &dir),
            });
            mtimes.push((grid_mtime, scales_mtime));
        }
    }
    write_manifest(&out, &rows, &mtimes)?;
    println!(
        "manifest {}: {} tiles in {} years, {dataset}, {} input problems (not listed in it)",
        out.display(),
        rows.len(),
        catalogue.years.len(),
        catalogue.problems.len()
    );
    let path = out.with_file_name(LANDMASKS_NAME);
    if catalogue.landmasks.is_empty() {
        // One from an earlier run would mask the tiles with landmasks the tree no longer has.
        if path.is_file() {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove the old {}", path.display()))?;
            println!(
                "landmasks {}: removed (the tree has no landmasks now)",
                path.display()
            );
        }
    } else {
        let mut rows = Vec::new();
        let mut mtimes = Vec::new();
        for (&cell, file) in &catalogue.landmasks {
            let (file_size, mtime) = size_and_mtime(file)?;
            rows.push(LandmaskRow {
                cell,
                file_size,
                path: relative_to(file, &dir),
            });
            mtimes.push(mtime);
        }
        write_landmasks(&path, &rows, &mtimes)?;
        println!("landmasks {}: {} landmasks", path.display(), rows.len());
    }
    report_problems(&catalogue.problems);
    Ok(exit_code(catalogue.problems.is_empty()))
}
