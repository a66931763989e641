//! The steps that need every band and every worker's cells, each idempotent: the root
//! metadata, the coarse overview levels of each band, the colour basis of each year. `mosaic
//! finalize --worker I/N` makes one share's blocks (coarse chunks and statistics partials,
//! `overview::partials`); `mosaic finalize` then folds the partials into the bases, making any
//! block no share made (or whose partial is stale), so without shares it does everything. A
//! whole-band build runs the band's part (its blocks, and the bases of its years) when it ends.

use std::collections::BTreeSet;

use super::share::in_worker_share;
use crate::grid::Cell;
use crate::overview::{
    Block, ColourBasis, Missing, OnBlock, YearPartials, make_partials, store_colour_basis,
};
use crate::zarr::{FormatError, MosaicStore};

/// What finalize did to a store.
#[derive(Debug, Clone)]
pub struct FinalizeReport {
    /// The bands the root now lists.
    pub bands: Vec<String>,
    /// Bands built with `--no-overviews`: nothing to make.
    pub no_overviews: Vec<String>,
    /// Each year's blocks, in year order.
    pub years: Vec<YearPartials>,
    /// The colour bases stored, by year.
    pub bases: Vec<ColourBasis>,
}

/// Bands with overviews, bands without, and the years of the former.
type OverviewBands = (Vec<String>, Vec<String>, Vec<u16>);

fn overview_bands(store: &MosaicStore) -> Result<OverviewBands, FormatError> {
    let (mut with, mut without, mut years) = (Vec::new(), Vec::new(), BTreeSet::new());
    for band in store.bands()? {
        if !store.has_overviews(&band)? {
            without.push(band);
            continue;
        }
        if let Some(layout) = store.band_layout(&band)? {
            years.extend(layout.year_values());
        }
        with.push(band);
    }
    Ok((with, without, years.into_iter().collect()))
}

/// The share rule of `--worker I/N` (0-based `i`) applied to blocks, as the build applies it
/// to cells.
pub fn block_in_share(block: Block, worker: (usize, usize)) -> bool {
    let id = Cell {
        lat_index: block.0,
        lon_index: block.1,
    };
    in_worker_share(id, Some(worker))
}

/// Finalize a whole store: rewrite the root's consolidated metadata, then per year fold every
/// band's block partials into the colour basis, making the blocks (coarse overview chunks and
/// partial) that have no partial matching the store. `on_year` hears of each year as it is
/// done, `on_block` of each block. Running it again changes nothing.
pub fn finalize_store(
    store: &MosaicStore,
    mut on_year: impl FnMut(&YearPartials),
    on_block: OnBlock,
) -> Result<FinalizeReport, FormatError> {
    store.write_root_metadata()?;
    let bands = store.bands()?;
    let (_, no_overviews, years) = overview_bands(store)?;
    let mut report = FinalizeReport {
        bands,
        no_overviews,
        years: Vec::new(),
        bases: Vec::new(),
    };
    for year in years {
        let (basis, partials) = store_colour_basis(store, year, Missing::Make, on_block)?;
        on_year(&partials);
        report.years.push(partials);
        report.bases.extend(basis);
    }
    Ok(report)
}

/// One share of finalize (`worker = (i, n)`, 0-based `i`): the coarse overview chunks and the
/// statistics partial of each block the share rule gives it, in every band and year. Blocks
/// whose partial already matches the store are skipped, so a rerun resumes.
pub fn finalize_share(
    store: &MosaicStore,
    worker: (usize, usize),
    mut on_year: impl FnMut(&YearPartials),
    on_block: OnBlock,
) -> Result<Vec<YearPartials>, FormatError> {
    let (bands, _, years) = overview_bands(store)?;
    let mut out = Vec::new();
    for year in years {
        let owns = |b| block_in_share(b, worker);
        let partials = make_partials(store, year, &bands, &owns, on_block)?;
        on_year(&partials);
        out.push(partials);
    }
    Ok(out)
}

/// The part of finalize one band's build can do on its own when it has written every cell:
/// the band's blocks (coarse levels and partials) for every year of its axis, and the colour
/// bases of `years` (from every band's partials, summing in memory where another band has
/// none).
pub fn finalize_band(store: &MosaicStore, band: &str, years: &[u16]) -> Result<(), FormatError> {
    if let Some(layout) = store.band_layout(band)? {
        for year in layout.year_values() {
            make_partials(store, year, &[band.to_string()], &|_| true, &|_| {})?;
        }
    }
    for &year in years {
        store_colour_basis(store, year, Missing::Sum, &|_| {})?;
    }
    Ok(())
}
