//! `mosaic verify`: check a built band against its input, independently of the writer.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::shared::{InputArgs, exit_code, progress_bar, report_problems, scan};
use tessera_mosaic::store::StoreOptions;
use tessera_mosaic::verify::{self, Coverage};
use tessera_mosaic::zarr::MosaicStore;

/// Check a built band against its input, independently of the writer.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    /// The store.
    #[arg(long)]
    pub store: String,
    /// A setting of the store's object store, KEY=VALUE (as `build --out-option`).
    #[arg(long = "store-option", value_name = "KEY=VALUE", value_parser = StoreOptions::parse_pair)]
    pub store_options: Vec<(String, String)>,
    /// The band to check.
    #[arg(long, allow_hyphen_values = true)]
    pub band: String,
    /// Random output pixels to check per tile.
    #[arg(long, default_value_t = 2000, conflicts_with = "full")]
    pub sample: usize,
    /// Check every output pixel.
    #[arg(long)]
    pub full: bool,
    /// Only these years, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub years: Vec<u16>,
    /// Landmask folder or landmasks.parquet (a URL for a remote input). Default:
    /// ROOT/landmasks.parquet, else ROOT/global_0.1_degree_tiff_all (or beside a local ROOT).
    #[arg(long)]
    pub landmasks: Option<PathBuf>,
    /// Also write the summary as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let store = MosaicStore::open_with(&a.store, &StoreOptions(a.store_options.clone()))?;
    let layout = store
        .band_layout(&a.band)?
        .with_context(|| format!("band {} is not in {}", a.band, a.store))?;
    let source = a.input.source()?;
    let source = source.as_ref();
    let catalogue = scan(
        source,
        a.landmasks.clone(),
        a.years.clone(),
        Some(layout.grid.lat_start_index..layout.grid.lat_end_index),
    )?;
    let coverage = if a.full {
        Coverage::Full
    } else {
        Coverage::Sample(a.sample)
    };
    let bar = progress_bar(0, &format!("verify {}: tiles", a.band));
    let s = verify::verify_band(source, &catalogue, &store, &a.band, coverage, &bar)?;
    bar.finish_and_clear();
    println!(
        "band {}: {} tiles, {} pixels checked ({} with data): {} mismatches, {} tiles missing, {} unexpected shards, {} unreadable, {} without data (no pixel of the cell has data, not written)",
        s.band,
        s.tiles_checked,
        s.pixels_checked,
        s.data_pixels,
        s.mismatch_count,
        s.missing_tiles.len(),
        s.unexpected_shards.len(),
        s.errors.len(),
        s.no_data_tiles.len()
    );
    for m in &s.mismatches {
        println!(
            "  mismatch {} {} row {} col {} (lat {:.7}, lon {:.7}): {}",
            m.year, m.tile, m.row, m.col, m.lat, m.lon, m.detail
        );
    }
    for t in &s.missing_tiles {
        println!("  missing from the store: {t}");
    }
    for k in &s.unexpected_shards {
        println!("  shard without an input tile: {k}");
    }
    for e in &s.errors {
        println!("  error: {e}");
    }
    report_problems(&catalogue.problems);
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&s)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "{}",
        if s.ok() {
            "OK: the band matches its input"
        } else {
            "FAILED"
        }
    );
    Ok(exit_code(s.ok()))
}
