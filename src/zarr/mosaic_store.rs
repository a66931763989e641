//! [`MosaicStore`]: a store read and written as tessera-mosaic's output: the bands it holds,
//! their layout and arrays, which cells are built, and the metadata documents kept consistent
//! (band groups, coordinates, the root's consolidated metadata).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};

use super::arrays::{Coordinate, StoreArray};
use super::layout::{
    BandLayout, EMBEDDINGS, FORMAT_VERSION, ROOT_METADATA_KEY, S2_OBS_COUNT, SCALES,
    array_metadata_key, array_path, group_key, parse_chunk_key,
};
use super::metadata::{
    band_array_metadata, band_group_metadata, counts_array_metadata, root_group_metadata,
};
use super::overview_layout::{
    OVERVIEWS, level_array, level_coordinate, overview_levels, overview_metadata,
};
use crate::grid::{BandGrid, CHANNELS, Cell, CompressionConfig};
use crate::store::{Store, StoreError, is_temporary_key};

/// Errors of the output format: the store, a band's layout, or an array.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("band {band} in {location}: {message}")]
    Band {
        location: String,
        band: String,
        message: String,
    },
    #[error("record {key} is malformed")]
    Record {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("finalize partial {location}/{key}: {message}")]
    Partial {
        location: String,
        key: String,
        message: String,
    },
    #[error("array {path}")]
    Array {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl FormatError {
    /// A failure of the array at `path` (store location included), keeping its cause.
    /// The path becomes text only on the error path (these wrap every chunk read).
    pub fn array<E: std::error::Error + Send + Sync + 'static>(
        path: impl Into<String>,
    ) -> impl FnOnce(E) -> FormatError {
        move |e| FormatError::Array {
            path: path.into(),
            source: Box::new(e),
        }
    }
}

/// A store holding (or about to hold) tessera-mosaic bands.
#[derive(Clone, Debug)]
pub struct MosaicStore {
    /// Where the bytes go.
    pub store: Store,
}

impl MosaicStore {
    /// Open (or create) the output store at a path or URL.
    pub fn open(location: &str) -> Result<MosaicStore, FormatError> {
        Ok(MosaicStore {
            store: Store::open(location)?,
        })
    }

    /// [`MosaicStore::open`] with settings for this location (`--out-option`).
    pub fn open_with(
        location: &str,
        options: &crate::store::StoreOptions,
    ) -> Result<MosaicStore, FormatError> {
        Ok(MosaicStore {
            store: Store::open_with(location, options)?,
        })
    }

    /// Open a store that must already exist (for readers): a clear error otherwise.
    pub fn open_existing(location: &str) -> Result<MosaicStore, FormatError> {
        Ok(MosaicStore {
            store: Store::open_existing(location, ROOT_METADATA_KEY)?,
        })
    }

    /// The same store seen through other storage (an adapter wrapping this one).
    pub fn with_store(&self, store: Store) -> MosaicStore {
        MosaicStore { store }
    }

    /// Where the store is, for messages.
    pub fn location(&self) -> &str {
        &self.store.location
    }

    /// The layout of a band, `None` if the band group does not exist.
    pub fn band_layout(&self, band: &str) -> Result<Option<BandLayout>, FormatError> {
        let Some(group) = self.store.get_json(&group_key(band))? else {
            return Ok(None);
        };
        let layout = group
            .pointer("/attributes/tessera_mosaic")
            .cloned()
            .ok_or_else(|| self.band_error(band, "group has no tessera_mosaic attributes"))?;
        let layout: BandLayout = serde_json::from_value(layout)
            .map_err(|e| self.band_error(band, &format!("unreadable layout: {e}")))?;
        // Version 1 (pixel-major chunks, no `chunk_order`) reads as pixel-major; a newer
        // version may mean something this build does not know.
        if layout.format_version > FORMAT_VERSION {
            return Err(self.band_error(
                band,
                &format!(
                    "layout format_version {} is newer than this tessera-mosaic reads (up to {FORMAT_VERSION})",
                    layout.format_version
                ),
            ));
        }
        Ok(Some(layout))
    }

    /// Names of the bands in the store.
    pub fn bands(&self) -> Result<Vec<String>, FormatError> {
        let mut names = Vec::new();
        for name in self.store.top_level_prefixes()? {
            if self.store.exists(&group_key(&name))? {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Cells of a band with both shards (embeddings and scales) present, per year: the built
    /// tiles. Temporary objects are ignored.
    pub fn built_cells(
        &self,
        arrays: &BandArrays,
    ) -> Result<BTreeMap<u16, BTreeSet<Cell>>, FormatError> {
        let band = &arrays.layout.grid.name;
        self.tiles_in_all(
            &[format!("{band}/{EMBEDDINGS}"), format!("{band}/{SCALES}")],
            &arrays.layout,
        )
    }

    /// The (year, cell)s of which every array at `array_keys` (paths without the leading `/`,
    /// chunked one (year, cell) per chunk as the band arrays are) has its chunk, per year.
    /// Temporary objects are ignored.
    pub fn tiles_in_all(
        &self,
        array_keys: &[String],
        layout: &BandLayout,
    ) -> Result<BTreeMap<u16, BTreeSet<Cell>>, FormatError> {
        let mut found: BTreeMap<(u16, Cell), usize> = BTreeMap::new();
        for array_key in array_keys {
            let mut here = BTreeSet::new();
            for key in self.store.list_prefix(&format!("{array_key}/c/"))? {
                if is_temporary_key(&key) {
                    continue;
                }
                if let Some(idx) = parse_chunk_key(&key, array_key).filter(|i| i.len() >= 3) {
                    here.insert(layout.shard_tile(&idx));
                }
            }
            for tile in here {
                *found.entry(tile).or_default() += 1;
            }
        }
        let mut out: BTreeMap<u16, BTreeSet<Cell>> = BTreeMap::new();
        for ((year, cell), n) in found {
            if n == array_keys.len() {
                out.entry(year).or_default().insert(cell);
            }
        }
        Ok(out)
    }

    fn band_error(&self, band: &str, message: &str) -> FormatError {
        FormatError::Band {
            location: self.store.location.clone(),
            band: band.to_string(),
            message: message.to_string(),
        }
    }

    /// Open a band's data arrays for reading and writing.
    pub fn band_arrays(&self, band: &str) -> Result<BandArrays, FormatError> {
        let layout = self
            .band_layout(band)?
            .ok_or_else(|| self.band_error(band, "no such band in the store"))?;
        Ok(BandArrays {
            embeddings: Arc::new(self.open_array(&array_path(band, EMBEDDINGS))?),
            scales: Arc::new(self.open_array(&array_path(band, SCALES))?),
            counts: if self.has_counts(band)? {
                Some(Arc::new(self.open_array(&array_path(band, S2_OBS_COUNT))?))
            } else {
                None
            },
            layout,
        })
    }

    /// Create a band's metadata, or check that the existing band has the same layout and grow
    /// its year axis to cover `years`. Returns the band's arrays. `overviews` and `counts` add
    /// the pyramid and `s2_obs_count`; a band that has them keeps them.
    #[allow(clippy::too_many_arguments)]
    pub fn create_or_update_band(
        &self,
        grid: &BandGrid,
        years: &[u16],
        compression: &CompressionConfig,
        embeddings_fill: i8,
        source: &str,
        overviews: bool,
        counts: bool,
    ) -> Result<BandArrays, FormatError> {
        let band = grid.name.as_str();
        let overviews = overviews || self.has_overviews(band)?;
        let counts = counts || self.has_counts(band)?;
        let (first, last) = match (years.iter().min(), years.iter().max()) {
            (Some(a), Some(b)) => (*a, *b),
            _ => return Err(self.band_error(band, "no years to build")),
        };
        let wanted = match self.band_layout(band)? {
            Some(existing) => {
                if existing.grid != *grid {
                    return Err(self.band_error(band, &format!(
                        "the store was built with grid {:?}; the current band configuration gives {:?}. Use the same bands.toml, or a new store",
                        existing.grid, grid
                    )));
                }
                if existing.compression != *compression
                    || existing.embeddings_fill != embeddings_fill
                {
                    return Err(self.band_error(band, &format!(
                        "the store uses compression {:?} and fill {}; the configuration asks for {:?} and {}",
                        existing.compression, existing.embeddings_fill, compression, embeddings_fill
                    )));
                }
                if first < existing.first_year {
                    return Err(self.band_error(band, &format!(
                        "year {first} is before the store's first year {}; the year axis can only grow forward. Build earlier years into a new store",
                        existing.first_year
                    )));
                }
                let end = (existing.first_year + existing.years).max(last + 1);
                if end == existing.first_year + existing.years
                    && overviews == self.has_overviews(band)?
                    && counts == self.has_counts(band)?
                {
                    return self.band_arrays(band);
                }
                BandLayout {
                    years: end - existing.first_year,
                    ..existing
                }
            }
            None => BandLayout {
                format_version: FORMAT_VERSION,
                grid: grid.clone(),
                first_year: first,
                years: last - first + 1,
                compression: compression.clone(),
                embeddings_fill,
            },
        };
        self.write_band_metadata(&wanted, source, overviews, counts)?;
        self.band_arrays(band)
    }

    /// True when the band has `s2_obs_count` (built from an input with observation counts).
    pub fn has_counts(&self, band: &str) -> Result<bool, FormatError> {
        Ok(self.store.exists(&array_metadata_key(band, S2_OBS_COUNT))?)
    }

    /// True when the band has an overview pyramid (built without `--no-overviews`).
    pub fn has_overviews(&self, band: &str) -> Result<bool, FormatError> {
        Ok(self
            .store
            .exists(&group_key(&format!("{band}/{OVERVIEWS}")))?)
    }

    /// Write every metadata document and coordinate array of a band, then the consolidated
    /// metadata of the band group and the root.
    fn write_band_metadata(
        &self,
        layout: &BandLayout,
        source: &str,
        overviews: bool,
        counts: bool,
    ) -> Result<(), FormatError> {
        let band = layout.grid.name.as_str();
        let mut arrays = band_array_metadata(layout);
        if counts {
            arrays.push((S2_OBS_COUNT, counts_array_metadata(layout)));
            arrays.sort_by_key(|(n, _)| *n);
        }
        for (name, meta) in &arrays {
            self.store.put_json(&array_metadata_key(band, name), meta)?;
        }
        self.write_coordinates(layout, &arrays)?;
        let mut consolidated: serde_json::Map<String, Value> = arrays
            .iter()
            .map(|(n, m)| (n.to_string(), m.clone()))
            .collect();
        if overviews {
            consolidated.extend(self.write_overview_metadata(layout)?);
        }
        let mut group = band_group_metadata(layout, source);
        group["consolidated_metadata"] = json!({
            "kind": "inline",
            "must_understand": false,
            "metadata": consolidated,
        });
        self.store.put_json(&group_key(band), &group)?;
        self.write_root_metadata()
    }

    /// Rewrite the root group with the consolidated metadata of every band.
    ///
    /// Builds of other bands (other processes, other machines) may add or grow band groups at
    /// any moment, and the root is one object that each of them rewrites. So after writing,
    /// the root is computed again from the bands as they are now and rewritten until the two
    /// agree: the last writer always writes a root that holds every band it could see after its
    /// own write, so the root converges once the builds stop. `mosaic finalize` runs the same
    /// step on its own.
    pub fn write_root_metadata(&self) -> Result<(), FormatError> {
        const MAX_ROUNDS: usize = 10;
        let mut written = None;
        for _ in 0..MAX_ROUNDS {
            let root = self.root_metadata()?;
            if written.as_ref() == Some(&root) {
                return Ok(());
            }
            self.store.put_json(ROOT_METADATA_KEY, &root)?;
            written = Some(root);
        }
        Ok(())
    }

    /// The root group document for the bands the store holds now.
    fn root_metadata(&self) -> Result<Value, FormatError> {
        let mut groups = Vec::new();
        for band in self.bands()? {
            if let Some(group) = self.store.get_json(&group_key(&band))? {
                groups.push((band, group));
            }
        }
        Ok(root_group_metadata(groups))
    }

    /// Write the metadata documents and coordinates of a band's overviews and statistics; the
    /// overview group (written last, so that its presence means the rest is there) carries
    /// its own consolidated metadata. Returns every document by path under the band.
    fn write_overview_metadata(
        &self,
        layout: &BandLayout,
    ) -> Result<serde_json::Map<String, Value>, FormatError> {
        let band = layout.grid.name.as_str();
        let docs = overview_metadata(layout);
        for (path, meta) in docs.iter().filter(|(p, _)| p != OVERVIEWS) {
            self.store
                .put_json(&group_key(&format!("{band}/{path}")), meta)?;
        }
        for level in overview_levels(&layout.grid) {
            for name in ["lat", "lon", "year"] {
                let meta = &docs
                    .iter()
                    .find(|(p, _)| *p == level_array(level.level, name))
                    .expect("documented")
                    .1;
                let path = format!("/{band}/{}", level_array(level.level, name));
                self.write_coordinate(&path, meta, &level_coordinate(layout, &level, name))?;
            }
        }
        let mut group = docs
            .iter()
            .find(|(p, _)| p == OVERVIEWS)
            .expect("the pyramid group")
            .1
            .clone();
        let prefix = format!("{OVERVIEWS}/");
        let children: serde_json::Map<String, Value> = docs
            .iter()
            .filter_map(|(p, m)| Some((p.strip_prefix(&prefix)?.to_string(), m.clone())))
            .collect();
        group["consolidated_metadata"] =
            json!({"kind": "inline", "must_understand": false, "metadata": children});
        self.store
            .put_json(&group_key(&format!("{band}/{OVERVIEWS}")), &group)?;
        Ok(docs.into_iter().collect())
    }

    fn write_coordinates(
        &self,
        layout: &BandLayout,
        arrays: &[(&'static str, Value)],
    ) -> Result<(), FormatError> {
        let grid = &layout.grid;
        for (name, meta) in arrays {
            let values = match *name {
                "lat" => Coordinate::F64((0..grid.rows()).map(|r| grid.row_lat(r)).collect()),
                "lon" => Coordinate::F64((0..grid.cols()).map(|c| grid.col_lon(c)).collect()),
                "year" => Coordinate::I32(layout.year_values().iter().map(|&y| y as i32).collect()),
                "channel" => Coordinate::I32((0..CHANNELS as i32).collect()),
                "spatial_ref" => Coordinate::I32(vec![0]),
                _ => continue,
            };
            self.write_coordinate(&array_path(&grid.name, name), meta, &values)?;
        }
        Ok(())
    }
}

/// The data and coordinate arrays of an opened band.
pub struct BandArrays {
    /// int8 (year, lat, lon, channel); shared with the readers of its inner chunks.
    pub embeddings: Arc<StoreArray>,
    /// float32 (year, lat, lon).
    pub scales: Arc<StoreArray>,
    /// uint16 (year, lat, lon) observation counts, in a band built from an input with them.
    pub counts: Option<Arc<StoreArray>>,
    /// The band's layout.
    pub layout: BandLayout,
}

impl BandArrays {
    /// Shard (chunk grid) indices of a cell and year in `embeddings` (scales: the first three).
    pub fn shard_indices(&self, cell: Cell, year: u16) -> Option<[u64; 4]> {
        let y = self.layout.year_index(year)?;
        let (i, j) = self.layout.grid.cell_shard(cell);
        Some([y, i as u64, j as u64, 0])
    }

    /// Store keys of the two shards of a cell and year.
    pub fn shard_keys(&self, cell: Cell, year: u16) -> Option<(String, String)> {
        let idx = self.shard_indices(cell, year)?;
        Some((
            self.embeddings.chunk_key(&idx).as_str().to_string(),
            self.scales.chunk_key(&idx[..3]).as_str().to_string(),
        ))
    }
}
