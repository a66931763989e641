//! `mosaic status`: per band and year, cells built, failed and (with --input) missing.

use std::process::ExitCode;

use anyhow::Result;

use super::shared::{scan, tile_source};
use tessera_mosaic::input::DatasetRequest;
use tessera_mosaic::status;
use tessera_mosaic::store::{RequestLimits, StoreOptions};
use tessera_mosaic::zarr::MosaicStore;

/// Per band and year: cells built, failed and (with --input) missing.
#[derive(clap::Args)]
pub struct Args {
    /// The store.
    #[arg(long)]
    pub store: String,
    /// The TESSERA root, to count input tiles not built yet.
    #[arg(long)]
    pub input: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let store = MosaicStore::open_existing(&a.store)?;
    let catalogue = match &a.input {
        Some(root) => {
            let source = tile_source(
                root,
                None,
                RequestLimits::default(),
                DatasetRequest::default(),
                StoreOptions::default(),
                None,
                // The catalogue decodes no chunk.
                0,
            )?;
            Some(scan(source.as_ref(), None, vec![], None)?)
        }
        None => None,
    };
    let bands = status::status(&store, catalogue.as_ref())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&bands)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<10} {:>6} {:>8} {:>8} {:>8}",
        "band", "year", "built", "failed", "missing"
    );
    for b in &bands {
        for y in &b.years {
            let missing = y.missing.map_or("-".to_string(), |m| m.to_string());
            println!(
                "{:<10} {:>6} {:>8} {:>8} {:>8}",
                b.band, y.year, y.built, y.failed, missing
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
