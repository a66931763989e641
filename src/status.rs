//! `mosaic status`: per band and year, how many cells are built, failed and (given the input)
//! still missing — read from the store itself, so it works for any worker or machine.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::build::FailureRecord;
use crate::grid::Cell;
use crate::input::Catalogue;
use crate::zarr::{FormatError, MosaicStore};

/// Counts of one band in one year.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct YearStatus {
    /// Year.
    pub year: u16,
    /// Cells with both shards written.
    pub built: usize,
    /// Cells whose last build failed and that are not built.
    pub failed: usize,
    /// Input tiles neither built nor failed (only known with the input).
    pub missing: Option<usize>,
}

/// Status of one band.
#[derive(Debug, Clone, Serialize)]
pub struct BandStatus {
    /// Band name.
    pub band: String,
    /// Per year, ascending.
    pub years: Vec<YearStatus>,
}

/// Tiles of a band by year, as recorded by its builds (all workers): (failed, no data).
type Recorded = BTreeMap<u16, BTreeSet<String>>;

/// Failed and no-data tiles recorded by the builds of a band (all workers), by year.
fn recorded_failures(store: &MosaicStore, band: &str) -> Result<(Recorded, Recorded), FormatError> {
    let (mut failed, mut no_data) = (Recorded::new(), Recorded::new());
    for record in FailureRecord::read_band(store, band)? {
        for f in record.failed {
            failed.entry(f.year).or_default().insert(f.tile);
        }
        for t in record.no_data {
            no_data.entry(t.year).or_default().insert(t.tile);
        }
    }
    Ok((failed, no_data))
}

/// Status of every band of a store (and of the input's tiles, when given).
pub fn status(
    store: &MosaicStore,
    input: Option<&Catalogue>,
) -> Result<Vec<BandStatus>, FormatError> {
    let mut bands = Vec::new();
    for band in store.bands()? {
        let arrays = store.band_arrays(&band)?;
        let built = store.built_cells(&arrays)?;
        let (failures, no_data) = recorded_failures(store, &band)?;
        let grid = &arrays.layout.grid;
        let years = arrays
            .layout
            .year_values()
            .into_iter()
            .map(|year| {
                let empty = BTreeSet::new();
                let built_cells = built.get(&year).unwrap_or(&empty);
                let failed: BTreeSet<&String> = failures
                    .get(&year)
                    .map(|f| {
                        f.iter()
                            .filter(|name| {
                                Cell::parse_name(name).is_ok_and(|c| !built_cells.contains(&c))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                // A tile the build found without data (zone store sea) is not missing.
                let no_data = no_data.get(&year);
                let missing = input.map(|catalogue| {
                    catalogue.years.get(&year).map_or(0, |tiles| {
                        tiles
                            .keys()
                            .filter(|c| {
                                grid.contains(**c)
                                    && !built_cells.contains(c)
                                    && !failed.contains(&c.name())
                                    && !no_data.is_some_and(|n| n.contains(&c.name()))
                            })
                            .count()
                    })
                });
                YearStatus {
                    year,
                    built: built_cells.len(),
                    failed: failed.len(),
                    missing,
                }
            })
            .collect();
        bands.push(BandStatus { band, years });
    }
    Ok(bands)
}
