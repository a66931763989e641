//! `mosaic finalize`: the steps that need every band and every worker's cells
//! (`build::finalize_store`), with a line per band as it is done.

use std::process::ExitCode;

use anyhow::Result;

use tessera_mosaic::build::{BandFinalized, finalize_store};
use tessera_mosaic::zarr::MosaicStore;

/// Rewrite the root's consolidated metadata, make the coarse overview levels of every band
/// from its per-cell levels and store the colour basis of every year. Run it once all builds
/// (all bands, all workers) are done; running it again changes nothing.
#[derive(clap::Args)]
pub struct Args {
    /// The store.
    #[arg(long)]
    pub store: String,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let store = MosaicStore::open_existing(&a.store)?;
    let bands = store.bands()?;
    println!(
        "root of {} lists {} bands: {}",
        a.store,
        bands.len(),
        bands.join(", ")
    );
    let report = finalize_store(&store, |step| match step {
        BandFinalized::NoOverviews { band } => {
            println!("band {band}: no overviews (built with --no-overviews)")
        }
        BandFinalized::Pyramid {
            band,
            report,
            seconds,
        } => println!(
            "band {band}: {} coarse overview levels, {} chunks written in {seconds:.1} s",
            report.levels, report.chunks
        ),
    })?;
    for basis in &report.bases {
        println!(
            "colours of {}: from {:.0} pixels in {} cells of {} bands; variance along the three components {:.3}, {:.3}, {:.3}",
            basis.year,
            basis.pixels,
            basis.cells.values().sum::<usize>(),
            basis.cells.len(),
            basis.variances[0],
            basis.variances[1],
            basis.variances[2]
        );
    }
    Ok(ExitCode::SUCCESS)
}
