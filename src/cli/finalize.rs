//! `mosaic finalize`: the steps that need every band and every worker's cells
//! (`build::finalize_store`), or one share of them (`build::finalize_share`), with a line per
//! year as it is done.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;

use tessera_mosaic::build::{finalize_share, finalize_store};
use tessera_mosaic::overview::{BlockProgress, YearPartials};
use tessera_mosaic::zarr::MosaicStore;

use super::build::parse_worker;
use super::shared::progress_bar;

/// Rewrite the root's consolidated metadata, make the coarse overview levels of every band
/// from its per-cell levels and store the colour basis of every year. Run it once all builds
/// (all bands, all workers) are done; running it again changes nothing. With `--worker I/N`,
/// make only share I's blocks of 64 x 64 cells (coarse chunks and partial sums, any order, any
/// N); a final `finalize` without `--worker` then reads one partial per block.
#[derive(clap::Args)]
pub struct Args {
    /// The store.
    #[arg(long)]
    pub store: String,
    /// Make share I of N (1-based) of the blocks, e.g. `--worker 3/16`; the final step is a
    /// `finalize` without it.
    #[arg(long, value_parser = parse_worker)]
    pub worker: Option<(usize, usize)>,
}

fn print_year(p: &YearPartials, t: &Instant) {
    for why in &p.stale {
        eprintln!("stale partial, made again: {why}");
    }
    println!(
        "year {}: {} blocks made ({} coarse overview chunks), {} partials read as they were, {} stale; {:.1} s",
        p.year,
        p.made,
        p.chunks,
        p.reused,
        p.stale.len(),
        t.elapsed().as_secs_f64()
    );
}

pub fn run(a: Args) -> Result<ExitCode> {
    let store = MosaicStore::open_existing(&a.store)?;
    let t = Instant::now();
    let bar = progress_bar(0, "blocks");
    let on_block = |p: BlockProgress| match p {
        BlockProgress::Found(n) => bar.inc_length(n as u64),
        BlockProgress::Done => bar.inc(1),
    };
    let on_year = |p: &YearPartials| bar.suspend(|| print_year(p, &t));
    if let Some((i, n)) = a.worker {
        println!("share {}/{n} of the blocks of {}", i + 1, a.store);
        finalize_share(&store, (i, n), on_year, &on_block)?;
        bar.finish_and_clear();
        return Ok(ExitCode::SUCCESS);
    }
    let report = finalize_store(&store, on_year, &on_block)?;
    bar.finish_and_clear();
    println!(
        "root of {} lists {} bands: {}",
        a.store,
        report.bands.len(),
        report.bands.join(", ")
    );
    for band in &report.no_overviews {
        println!("band {band}: no overviews (built with --no-overviews)");
    }
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
