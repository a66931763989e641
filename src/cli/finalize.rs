//! `mosaic finalize`: rewrite the store's root metadata from the bands it holds (idempotent).

use std::process::ExitCode;

use anyhow::Result;

use tessera_mosaic::zarr::MosaicStore;

/// Rewrite the root's consolidated metadata from the band groups in the store.
#[derive(clap::Args)]
pub struct Args {
    /// The store.
    #[arg(long)]
    pub store: String,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let store = MosaicStore::open_existing(&a.store)?;
    store.write_root_metadata()?;
    let bands = store.bands()?;
    println!(
        "root of {} lists {} bands: {}",
        a.store,
        bands.len(),
        bands.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
