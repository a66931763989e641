//! `mosaic finalize`: the steps that need every band and every worker's cells, each idempotent:
//! the root metadata, the coarse overview levels of each band, the colour basis of each year.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::{Context, Result};

use tessera_mosaic::overview::{build_coarse_levels, store_colour_bases};
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
    store.write_root_metadata()?;
    let bands = store.bands()?;
    println!(
        "root of {} lists {} bands: {}",
        a.store,
        bands.len(),
        bands.join(", ")
    );
    let mut years = BTreeSet::new();
    for band in &bands {
        if !store.has_overviews(band)? {
            println!("band {band}: no overviews (built with --no-overviews)");
            continue;
        }
        let t = std::time::Instant::now();
        let pyramid = build_coarse_levels(&store, band)
            .with_context(|| format!("overviews of band {band}"))?;
        println!(
            "band {band}: {} coarse overview levels, {} chunks written in {:.1} s",
            pyramid.levels,
            pyramid.chunks,
            t.elapsed().as_secs_f64()
        );
        if let Some(layout) = store.band_layout(band)? {
            years.extend(layout.year_values());
        }
    }
    let years: Vec<u16> = years.into_iter().collect();
    for basis in store_colour_bases(&store, &years)? {
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
