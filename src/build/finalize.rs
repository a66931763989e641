//! The steps that need every band and every worker's cells, each idempotent: the root
//! metadata, the coarse overview levels of each band, the colour basis of each year. `mosaic
//! finalize` runs them on a whole store after workers; a whole-band build runs the band's part
//! (its coarse levels and the colour bases of its years) when it ends.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::overview::{ColourBasis, PyramidReport, build_coarse_levels, store_colour_bases};
use crate::zarr::{FormatError, MosaicStore};

/// What finalize did to one band.
#[derive(Debug, Clone)]
pub enum BandFinalized {
    /// Built with `--no-overviews`: nothing to make.
    NoOverviews { band: String },
    /// Its coarse overview levels made.
    Pyramid {
        band: String,
        report: PyramidReport,
        seconds: f64,
    },
}

/// What finalize did to a store.
#[derive(Debug, Clone)]
pub struct FinalizeReport {
    /// The bands the root now lists.
    pub bands: Vec<String>,
    /// Each band's step, in band order.
    pub steps: Vec<BandFinalized>,
    /// The colour bases stored, by year.
    pub bases: Vec<ColourBasis>,
}

/// Finalize a whole store: rewrite the root's consolidated metadata, make every band's coarse
/// overview levels (`on_band` hears of each band as it is done: a band can take minutes) and
/// store the colour basis of every year. Running it again changes nothing.
pub fn finalize_store(
    store: &MosaicStore,
    mut on_band: impl FnMut(&BandFinalized),
) -> Result<FinalizeReport, FormatError> {
    store.write_root_metadata()?;
    let bands = store.bands()?;
    let mut steps = Vec::new();
    let mut years = BTreeSet::new();
    for band in &bands {
        let step = if store.has_overviews(band)? {
            let t = Instant::now();
            let report = build_coarse_levels(store, band)?;
            if let Some(layout) = store.band_layout(band)? {
                years.extend(layout.year_values());
            }
            BandFinalized::Pyramid {
                band: band.clone(),
                report,
                seconds: t.elapsed().as_secs_f64(),
            }
        } else {
            BandFinalized::NoOverviews { band: band.clone() }
        };
        on_band(&step);
        steps.push(step);
    }
    let years: Vec<u16> = years.into_iter().collect();
    let bases = store_colour_bases(store, &years)?;
    Ok(FinalizeReport {
        bands,
        steps,
        bases,
    })
}

/// The part of finalize one band's build can do on its own when it has written every cell:
/// the band's coarse levels and the colour bases of `years` (from every band's statistics).
pub fn finalize_band(
    store: &MosaicStore,
    band: &str,
    years: &[u16],
) -> Result<PyramidReport, FormatError> {
    let report = build_coarse_levels(store, band)?;
    store_colour_bases(store, years)?;
    Ok(report)
}
