//! The output store: one Zarr v3 hierarchy with one group per band.
//!
//! Everything goes through zarrs' storage traits, so the same code writes to a local folder or
//! to an object store. Every write is a whole object: a shard, or a metadata document. On a
//! local filesystem each object is written to a unique temporary file and renamed into place,
//! so a killed build never leaves a half-written shard under a real key. Metadata documents are
//! generated here (not by zarrs) so that their bytes are deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zarrs::array::{Array, ArrayMetadata, ArrayMetadataV3};
use zarrs::filesystem::FilesystemStore;
use zarrs::storage::{
    AtomicRenameStorageTraits, Bytes, ListableStorageTraits, MaybeBytesIterator,
    OffsetBytesIterator, ReadableStorageTraits, ReadableWritableListableStorageTraits,
    StorageError, StoreKey, StoreKeys, StoreKeysPrefixes, StorePrefix, WritableStorageTraits,
    byte_range::ByteRangeIterator,
};

use crate::bands::CompressionConfig;
use crate::cell::Cell;
use crate::codec::sharding_codec;
use crate::grid::BandGrid;
use crate::tiles::CHANNELS;

/// A store handle usable from many threads.
pub type Storage = Arc<dyn ReadableWritableListableStorageTraits>;

/// Version of the layout documented in docs/format.md.
pub const FORMAT_VERSION: u32 = 1;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {location}: {source}")]
    Storage {
        location: String,
        source: StorageError,
    },
    #[error("cannot open store {location}: {message}")]
    Open { location: String, message: String },
    #[error("band {band} in {location}: {message}")]
    Band {
        location: String,
        band: String,
        message: String,
    },
    #[error("array {path}: {message}")]
    Array { path: String, message: String },
}

/// A local filesystem store whose writes are atomic: unique temporary file, fsync, rename.
#[derive(Debug)]
pub struct AtomicFilesystemStore {
    inner: FilesystemStore,
    counter: AtomicU64,
}

impl AtomicFilesystemStore {
    /// Open (creating the folder if needed) a store rooted at `path`.
    pub fn new(path: &Path) -> Result<Self, std::io::Error> {
        std::fs::create_dir_all(path)?;
        let inner = FilesystemStore::new(path).map_err(std::io::Error::other)?;
        Ok(AtomicFilesystemStore {
            inner,
            counter: AtomicU64::new(0),
        })
    }

    fn temporary_key(&self, key: &StoreKey) -> StoreKey {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let (pid, host) = (std::process::id(), host_tag());
        StoreKey::new(format!("{}.tmp.{pid}.{n}.{host}", key.as_str()))
            .expect("a valid key with a suffix is valid")
    }
}

/// A short tag of this machine's host name (8 hex digits), part of temporary names so that a
/// build cleaning up after killed processes only judges processes of its own machine when
/// several machines share one folder.
pub fn host_tag() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    // FNV-1a: stable across runs and Rust versions.
    let hash = name.trim().bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("{hash:08x}")
}

/// True for a location that is a URL other than `file://`.
pub fn is_url(location: &str) -> bool {
    location.contains("://") && !location.starts_with("file://")
}

/// True for the temporary keys [`AtomicFilesystemStore`] writes before renaming.
pub fn is_temporary_key(key: &str) -> bool {
    key.rsplit('/')
        .next()
        .is_some_and(|name| name.contains(".tmp."))
}

impl ReadableStorageTraits for AtomicFilesystemStore {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        self.inner.get_partial_many(key, byte_ranges)
    }
    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size_key(key)
    }
    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}

impl WritableStorageTraits for AtomicFilesystemStore {
    fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        let tmp = self.temporary_key(key);
        self.inner
            .set(&tmp, value)
            .and_then(|()| self.inner.rename(&tmp, key))
            .inspect_err(|_| {
                // A failed write (e.g. a full disk) leaves nothing behind.
                let _ = self.inner.erase(&tmp);
            })
    }
    fn set_partial_many(
        &self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator,
    ) -> Result<(), StorageError> {
        zarrs::storage::store_set_partial_many(self, key, offset_values)
    }
    fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.inner.erase(key)
    }
    fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        self.inner.erase_prefix(prefix)
    }
    fn supports_set_partial(&self) -> bool {
        false
    }
}

impl ListableStorageTraits for AtomicFilesystemStore {
    fn list(&self) -> Result<StoreKeys, StorageError> {
        self.inner.list()
    }
    fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.inner.list_prefix(prefix)
    }
    fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        self.inner.list_dir(prefix)
    }
    fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.inner.size_prefix(prefix)
    }
}

/// An opened output store.
#[derive(Clone)]
pub struct Store {
    /// The storage behind it.
    pub storage: Storage,
    /// Where it is (path or URL), for messages.
    pub location: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.location)
    }
}

/// How a band is laid out: stored in the band group's attributes under `tessera_mosaic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BandLayout {
    /// Layout version.
    pub format_version: u32,
    /// The band grid.
    pub grid: BandGrid,
    /// Year of index 0 on the year axis.
    pub first_year: u16,
    /// Length of the year axis (years first_year ..= first_year + years - 1).
    pub years: u16,
    /// Compression of the inner chunks.
    pub compression: CompressionConfig,
    /// Fill value of `embeddings`.
    pub embeddings_fill: i8,
}

impl BandLayout {
    /// Years on the axis, in order.
    pub fn year_values(&self) -> Vec<u16> {
        (0..self.years).map(|i| self.first_year + i).collect()
    }

    /// Index of a year on the axis.
    pub fn year_index(&self, year: u16) -> Option<u64> {
        (year >= self.first_year && year < self.first_year + self.years)
            .then(|| (year - self.first_year) as u64)
    }
}

fn storage_err(location: &str) -> impl Fn(StorageError) -> StoreError + '_ {
    move |source| StoreError::Storage {
        location: location.to_string(),
        source,
    }
}

impl Store {
    /// Open a local store, creating its folder if needed.
    pub fn open_local(path: &Path) -> Result<Store, StoreError> {
        let location = path.display().to_string();
        let fs = AtomicFilesystemStore::new(path).map_err(|e| StoreError::Open {
            location: location.clone(),
            message: e.to_string(),
        })?;
        Ok(Store {
            storage: Arc::new(fs),
            location,
        })
    }

    /// Open a store from a local path or an object store URL (`s3://bucket/prefix`,
    /// `gs://...`, `az://...`, `http(s)://...`); credentials and endpoint come from the usual
    /// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`,
    /// `AWS_REGION`, `AWS_ALLOW_HTTP`, ...).
    pub fn open(location: &str) -> Result<Store, StoreError> {
        if is_url(location) {
            crate::object_store::open(location)
        } else {
            Store::open_local(&PathBuf::from(location.trim_start_matches("file://")))
        }
    }

    /// True for stores that write through temporary files (local folders).
    pub fn is_local(&self) -> bool {
        !is_url(&self.location)
    }

    /// Open a store that must already exist (for readers): a clear error otherwise.
    pub fn open_existing(location: &str) -> Result<Store, StoreError> {
        let store = if is_url(location) {
            Store::open(location)?
        } else {
            let path = Path::new(location.trim_start_matches("file://"));
            if !path.join("zarr.json").exists() {
                return Err(StoreError::Open {
                    location: location.to_string(),
                    message: "no Zarr store here (zarr.json missing)".into(),
                });
            }
            Store::open_local(path)?
        };
        if !store.exists("zarr.json")? {
            return Err(StoreError::Open {
                location: location.to_string(),
                message: "no Zarr store here (zarr.json missing)".into(),
            });
        }
        Ok(store)
    }

    /// Read a JSON document, `None` when absent.
    pub fn get_json(&self, key: &str) -> Result<Option<Value>, StoreError> {
        let key = StoreKey::new(key).map_err(|e| StoreError::Open {
            location: self.location.clone(),
            message: e.to_string(),
        })?;
        match self
            .storage
            .get(&key)
            .map_err(storage_err(&self.location))?
        {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Open {
                    location: self.location.clone(),
                    message: format!("{key} is not valid JSON: {e}"),
                }),
        }
    }

    /// Write a JSON document (pretty, deterministic).
    pub fn put_json(&self, key: &str, value: &Value) -> Result<(), StoreError> {
        let key = StoreKey::new(key).expect("valid key");
        let mut text = serde_json::to_vec_pretty(value).expect("JSON serialises");
        text.push(b'\n');
        self.storage
            .set(&key, Bytes::from(text))
            .map_err(storage_err(&self.location))
    }

    /// Delete an object (no error when absent).
    pub fn erase(&self, key: &str) -> Result<(), StoreError> {
        let key = StoreKey::new(key).expect("valid key");
        self.storage
            .erase(&key)
            .map_err(storage_err(&self.location))
    }

    /// True when an object exists.
    pub fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let key = StoreKey::new(key).expect("valid key");
        Ok(self
            .storage
            .size_key(&key)
            .map_err(storage_err(&self.location))?
            .is_some())
    }

    /// All keys under a prefix (ending in `/`).
    pub fn list_prefix(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let prefix = StorePrefix::new(prefix).expect("valid prefix");
        Ok(self
            .storage
            .list_prefix(&prefix)
            .map_err(storage_err(&self.location))?
            .into_iter()
            .map(|k| k.as_str().to_string())
            .collect())
    }

    /// The layout of a band, `None` if the band group does not exist.
    pub fn band_layout(&self, band: &str) -> Result<Option<BandLayout>, StoreError> {
        let Some(group) = self.get_json(&format!("{band}/zarr.json"))? else {
            return Ok(None);
        };
        let layout = group
            .pointer("/attributes/tessera_mosaic")
            .cloned()
            .ok_or_else(|| self.band_error(band, "group has no tessera_mosaic attributes"))?;
        serde_json::from_value(layout)
            .map(Some)
            .map_err(|e| self.band_error(band, &format!("unreadable layout: {e}")))
    }

    /// Names of the bands in the store.
    pub fn bands(&self) -> Result<Vec<String>, StoreError> {
        let listing = self
            .storage
            .list_dir(&StorePrefix::root())
            .map_err(storage_err(&self.location))?;
        let mut names = Vec::new();
        for p in listing.prefixes() {
            let name = p.as_str().trim_end_matches('/').to_string();
            if self.exists(&format!("{name}/zarr.json"))? {
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
    ) -> Result<BTreeMap<u16, BTreeSet<Cell>>, StoreError> {
        let grid = &arrays.layout.grid;
        let band = &grid.name;
        let mut found: BTreeMap<(u16, Cell), u8> = BTreeMap::new();
        for array in ["embeddings", "scales"] {
            for key in self.list_prefix(&format!("{band}/{array}/c/"))? {
                if is_temporary_key(&key) {
                    continue;
                }
                let rest = &key[format!("{band}/{array}/c/").len()..];
                let idx: Vec<u64> = rest.split('/').filter_map(|p| p.parse().ok()).collect();
                if idx.len() < 3 {
                    continue;
                }
                let year = arrays.layout.first_year + idx[0] as u16;
                let cell = Cell {
                    lat_index: grid.lat_start_index + idx[1] as u16,
                    lon_index: idx[2] as u16,
                };
                *found.entry((year, cell)).or_default() += 1;
            }
        }
        let mut out: BTreeMap<u16, BTreeSet<Cell>> = BTreeMap::new();
        for ((year, cell), n) in found {
            if n == 2 {
                out.entry(year).or_default().insert(cell);
            }
        }
        Ok(out)
    }

    fn band_error(&self, band: &str, message: &str) -> StoreError {
        StoreError::Band {
            location: self.location.clone(),
            band: band.to_string(),
            message: message.to_string(),
        }
    }

    /// Open a band's data arrays for reading and writing.
    pub fn band_arrays(&self, band: &str) -> Result<BandArrays, StoreError> {
        let layout = self
            .band_layout(band)?
            .ok_or_else(|| self.band_error(band, "no such band in the store"))?;
        let open =
            |name: &str| -> Result<Array<dyn ReadableWritableListableStorageTraits>, StoreError> {
                let path = format!("/{band}/{name}");
                Array::open(self.storage.clone(), &path).map_err(|e| StoreError::Array {
                    path: format!("{}{path}", self.location),
                    message: e.to_string(),
                })
            };
        Ok(BandArrays {
            embeddings: open("embeddings")?,
            scales: open("scales")?,
            layout,
        })
    }

    /// Create a band's metadata, or check that the existing band has the same layout and grow
    /// its year axis to cover `years`. Returns the band's arrays.
    pub fn create_or_update_band(
        &self,
        grid: &BandGrid,
        years: &[u16],
        compression: &CompressionConfig,
        embeddings_fill: i8,
        source: &str,
    ) -> Result<BandArrays, StoreError> {
        let band = grid.name.as_str();
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
                if end == existing.first_year + existing.years {
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
        self.write_band_metadata(&wanted, source)?;
        self.band_arrays(band)
    }

    /// Write every metadata document and coordinate array of a band, then the consolidated
    /// metadata of the band group and the root.
    fn write_band_metadata(&self, layout: &BandLayout, source: &str) -> Result<(), StoreError> {
        let band = layout.grid.name.as_str();
        let arrays = band_array_metadata(layout);
        for (name, meta) in &arrays {
            self.put_json(&format!("{band}/{name}/zarr.json"), meta)?;
        }
        self.write_coordinates(layout, &arrays)?;
        let mut group = band_group_metadata(layout, source);
        let consolidated: serde_json::Map<String, Value> = arrays
            .iter()
            .map(|(n, m)| (n.to_string(), m.clone()))
            .collect();
        group["consolidated_metadata"] = json!({
            "kind": "inline",
            "must_understand": false,
            "metadata": consolidated,
        });
        self.put_json(&format!("{band}/zarr.json"), &group)?;
        self.write_root_metadata()
    }

    /// Rewrite the root group with consolidated metadata of every band.
    pub fn write_root_metadata(&self) -> Result<(), StoreError> {
        let mut all = serde_json::Map::new();
        let mut bands = Vec::new();
        for band in self.bands()? {
            let Some(mut group) = self.get_json(&format!("{band}/zarr.json"))? else {
                continue;
            };
            let children = group
                .as_object_mut()
                .and_then(|g| g.remove("consolidated_metadata"))
                .and_then(|c| c.get("metadata").cloned());
            all.insert(band.clone(), group);
            if let Some(Value::Object(children)) = children {
                for (name, meta) in children {
                    all.insert(format!("{band}/{name}"), meta);
                }
            }
            bands.push(band);
        }
        let root = json!({
            "zarr_format": 3,
            "node_type": "group",
            "attributes": {
                "title": "TESSERA embeddings in latitude bands",
                "summary": "One group per latitude band; each holds embeddings (year, lat, lon, channel) and scales on a regular EPSG:4326 grid. Open a band with xarray.open_zarr(store, group=BAND).",
                "tessera_mosaic_bands": bands,
                "tessera_mosaic_format_version": FORMAT_VERSION,
            },
            "consolidated_metadata": {"kind": "inline", "must_understand": false, "metadata": all},
        });
        self.put_json("zarr.json", &root)
    }

    fn write_coordinates(
        &self,
        layout: &BandLayout,
        arrays: &[(&'static str, Value)],
    ) -> Result<(), StoreError> {
        let band = &layout.grid.name;
        let grid = &layout.grid;
        for (name, meta) in arrays {
            let bytes: Vec<u8> = match *name {
                "lat" => (0..grid.rows())
                    .flat_map(|r| grid.row_lat(r).to_le_bytes())
                    .collect(),
                "lon" => (0..grid.cols())
                    .flat_map(|c| grid.col_lon(c).to_le_bytes())
                    .collect(),
                "year" => layout
                    .year_values()
                    .iter()
                    .flat_map(|y| (*y as i32).to_le_bytes())
                    .collect(),
                "channel" => (0..CHANNELS as i32).flat_map(|c| c.to_le_bytes()).collect(),
                "spatial_ref" => 0i32.to_le_bytes().to_vec(),
                _ => continue,
            };
            let path = format!("/{band}/{name}");
            let array = array_from_metadata(self.storage.clone(), &path, meta)?;
            let chunk_bytes = meta["chunk_grid"]["configuration"]["chunk_shape"]
                .as_array()
                .and_then(|s| s.first())
                .and_then(Value::as_u64)
                .map_or(bytes.len(), |n| {
                    n as usize
                        * if *name == "lat" || *name == "lon" {
                            8
                        } else {
                            4
                        }
                });
            let options = zarrs::array::CodecOptions::default().with_store_empty_chunks(true);
            for (i, chunk) in bytes.chunks(chunk_bytes.max(1)).enumerate() {
                let indices: Vec<u64> = if *name == "spatial_ref" {
                    vec![]
                } else {
                    vec![i as u64]
                };
                let shape = array
                    .chunk_shape_usize(&indices)
                    .map_err(|e| StoreError::Array {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                let elem = if *name == "lat" || *name == "lon" {
                    8
                } else {
                    4
                };
                let mut data = chunk.to_vec();
                data.resize(shape.iter().product::<usize>().max(1) * elem, 0);
                array
                    .store_chunk_opt(&indices, raw_bytes(&data), &options)
                    .map_err(|e| StoreError::Array {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
            }
        }
        Ok(())
    }
}

/// Raw little-endian bytes of a chunk, whatever the array's data type.
pub fn raw_bytes(bytes: &[u8]) -> zarrs::array::ArrayBytes<'_> {
    zarrs::array::ArrayBytes::new_flen(std::borrow::Cow::Borrowed(bytes))
}

/// Create a zarrs array handle from metadata JSON (without writing the metadata).
pub fn array_from_metadata(
    storage: Storage,
    path: &str,
    meta: &Value,
) -> Result<Array<dyn ReadableWritableListableStorageTraits>, StoreError> {
    let err = |m: String| StoreError::Array {
        path: path.to_string(),
        message: m,
    };
    let v3: ArrayMetadataV3 =
        serde_json::from_value(meta.clone()).map_err(|e| err(e.to_string()))?;
    Array::new_with_metadata(storage, path, ArrayMetadata::V3(v3)).map_err(|e| err(e.to_string()))
}

/// The data and coordinate arrays of an opened band.
pub struct BandArrays {
    /// int8 (year, lat, lon, channel).
    pub embeddings: Array<dyn ReadableWritableListableStorageTraits>,
    /// float32 (year, lat, lon).
    pub scales: Array<dyn ReadableWritableListableStorageTraits>,
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

/// WKT2 of EPSG:4326 (as PROJ prints it), for `spatial_ref`.
pub const WGS84_WKT: &str = r#"GEOGCRS["WGS 84",ENSEMBLE["World Geodetic System 1984 ensemble",MEMBER["World Geodetic System 1984 (Transit)"],MEMBER["World Geodetic System 1984 (G730)"],MEMBER["World Geodetic System 1984 (G873)"],MEMBER["World Geodetic System 1984 (G1150)"],MEMBER["World Geodetic System 1984 (G1674)"],MEMBER["World Geodetic System 1984 (G1762)"],MEMBER["World Geodetic System 1984 (G2139)"],MEMBER["World Geodetic System 1984 (G2296)"],ELLIPSOID["WGS 84",6378137,298.257223563,LENGTHUNIT["metre",1]],ENSEMBLEACCURACY[2.0]],PRIMEM["Greenwich",0,ANGLEUNIT["degree",0.0174532925199433]],CS[ellipsoidal,2],AXIS["geodetic latitude (Lat)",north,ORDER[1],ANGLEUNIT["degree",0.0174532925199433]],AXIS["geodetic longitude (Lon)",east,ORDER[2],ANGLEUNIT["degree",0.0174532925199433]],USAGE[SCOPE["Horizontal component of 3D system."],AREA["World."],BBOX[-90,-180,90,180]],ID["EPSG",4326]]"#;

fn plain_array(
    shape: Vec<u64>,
    chunk: Vec<u64>,
    dtype: &str,
    fill: Value,
    dims: Vec<&str>,
    attrs: Value,
) -> Value {
    json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": shape,
        "data_type": dtype,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunk}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill,
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "attributes": attrs,
        "dimension_names": dims,
    })
}

/// Metadata of every array of a band group, by name.
pub fn band_array_metadata(layout: &BandLayout) -> Vec<(&'static str, Value)> {
    let g = &layout.grid;
    let years = layout.years as u64;
    let shard = g.shard_shape();
    let chunk = g.chunk_shape();
    let data_attrs = |long_name: &str, comment: &str| {
        json!({
            "long_name": long_name,
            "comment": comment,
            "grid_mapping": "spatial_ref",
            "coordinates": "spatial_ref",
        })
    };
    let embeddings = json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": g.embeddings_shape(years as usize),
        "data_type": "int8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": shard}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": layout.embeddings_fill,
        "codecs": [sharding_codec(&chunk, &layout.compression, 1)],
        "attributes": data_attrs(
            "TESSERA embedding, int8 quantised",
            "Dequantise as embeddings * scales. Pixels without data hold the fill value here and NaN in scales."
        ),
        "dimension_names": ["year", "lat", "lon", "channel"],
    });
    let scales = json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": [years, g.rows() as u64, g.cols() as u64],
        "data_type": "float32",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": &shard[..3]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": "NaN",
        "codecs": [sharding_codec(&chunk[..3], &layout.compression, 4)],
        "attributes": data_attrs(
            "TESSERA embedding scale",
            "Per-pixel scale of the int8 embeddings. NaN marks every pixel without data (no tile, outside the tile, water, or an invalid source scale)."
        ),
        "dimension_names": ["year", "lat", "lon"],
    });
    let rows = g.rows() as u64;
    let cols = g.cols() as u64;
    let lat = plain_array(
        vec![rows],
        vec![rows],
        "float64",
        json!("NaN"),
        vec!["lat"],
        json!({
            "standard_name": "latitude",
            "long_name": "latitude of pixel centre",
            "units": "degrees_north",
            "axis": "Y",
        }),
    );
    let lon = plain_array(
        vec![cols],
        vec![cols / 36],
        "float64",
        json!("NaN"),
        vec!["lon"],
        json!({
            "standard_name": "longitude",
            "long_name": "longitude of pixel centre",
            "units": "degrees_east",
            "axis": "X",
        }),
    );
    let year = plain_array(
        vec![years],
        vec![years],
        "int32",
        json!(0),
        vec!["year"],
        json!({
            "long_name": "year of the annual embedding",
        }),
    );
    let channel = plain_array(
        vec![CHANNELS as u64],
        vec![CHANNELS as u64],
        "int32",
        json!(0),
        vec!["channel"],
        json!({
            "long_name": "embedding channel",
        }),
    );
    let spatial_ref = plain_array(
        vec![],
        vec![],
        "int32",
        json!(0),
        vec![],
        json!({
            "crs_wkt": WGS84_WKT,
            "spatial_ref": WGS84_WKT,
            "grid_mapping_name": "latitude_longitude",
            "semi_major_axis": 6378137.0,
            "inverse_flattening": 298.257223563,
            "longitude_of_prime_meridian": 0.0,
            "reference_ellipsoid_name": "WGS 84",
            "geographic_crs_name": "WGS 84",
            "horizontal_datum_name": "World Geodetic System 1984",
            "prime_meridian_name": "Greenwich",
        }),
    );
    vec![
        ("channel", channel),
        ("embeddings", embeddings),
        ("lat", lat),
        ("lon", lon),
        ("scales", scales),
        ("spatial_ref", spatial_ref),
        ("year", year),
    ]
}

/// The band group's metadata: CF, ACDD 1.3 and GeoZarr `proj:` attributes plus our layout.
pub fn band_group_metadata(layout: &BandLayout, source: &str) -> Value {
    let g = &layout.grid;
    let last_year = layout.first_year + layout.years - 1;
    json!({
        "zarr_format": 3,
        "node_type": "group",
        "attributes": {
            "Conventions": "CF-1.10, ACDD-1.3",
            "title": format!("TESSERA embeddings, latitude band {}", g.name),
            "summary": format!(
                "Annual 128-channel TESSERA embeddings between latitudes {} and {}, reprojected by nearest neighbour (bit-exact copies of source pixels) from per-cell UTM tiles onto a regular EPSG:4326 grid with {} rows and {} columns per 0.1-degree cell.",
                g.lat_min(), g.lat_max(), g.rows_per_cell, g.cols_per_cell
            ),
            "keywords": "TESSERA, embeddings, foundation model, remote sensing",
            "geospatial_lat_min": g.lat_min(),
            "geospatial_lat_max": g.lat_max(),
            "geospatial_lon_min": -180.0,
            "geospatial_lon_max": 180.0,
            "geospatial_lat_units": "degrees_north",
            "geospatial_lon_units": "degrees_east",
            "geospatial_lat_resolution": g.lat_step(),
            "geospatial_lon_resolution": g.lon_step(),
            "time_coverage_start": format!("{}-01-01", layout.first_year),
            "time_coverage_end": format!("{last_year}-12-31"),
            "source": source,
            "history": format!("built by tessera-mosaic {} (format {})", env!("CARGO_PKG_VERSION"), layout.format_version),
            "processing_level": "nearest-neighbour mosaic of TESSERA tiles",
            "proj:code": "EPSG:4326",
            "tessera_mosaic": layout,
        },
    })
}

/// A storage adapter counting the bytes and requests read through it (writes pass through).
pub struct ReadCounter {
    inner: Storage,
    /// Bytes read so far.
    pub bytes: AtomicU64,
    /// Read requests (byte ranges) so far.
    pub requests: AtomicU64,
}

impl ReadCounter {
    /// Wrap a store so that reads through the returned store are counted.
    pub fn wrap(store: &Store) -> (Store, Arc<ReadCounter>) {
        let counter = Arc::new(ReadCounter {
            inner: store.storage.clone(),
            bytes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        });
        (
            Store {
                storage: counter.clone(),
                location: store.location.clone(),
            },
            counter,
        )
    }
}

impl ReadableStorageTraits for ReadCounter {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        let ranges: Vec<_> = byte_ranges.collect();
        self.requests
            .fetch_add(ranges.len() as u64, Ordering::Relaxed);
        let Some(parts) = self
            .inner
            .get_partial_many(key, Box::new(ranges.into_iter()))?
        else {
            return Ok(None);
        };
        let parts: Vec<Result<Bytes, StorageError>> = parts.collect();
        let n: usize = parts.iter().flatten().map(|b| b.len()).sum();
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(Some(Box::new(parts.into_iter())))
    }
    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size_key(key)
    }
    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}

impl WritableStorageTraits for ReadCounter {
    fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        self.inner.set(key, value)
    }
    fn set_partial_many(
        &self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator,
    ) -> Result<(), StorageError> {
        self.inner.set_partial_many(key, offset_values)
    }
    fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.inner.erase(key)
    }
    fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        self.inner.erase_prefix(prefix)
    }
    fn supports_set_partial(&self) -> bool {
        self.inner.supports_set_partial()
    }
}

impl ListableStorageTraits for ReadCounter {
    fn list(&self) -> Result<StoreKeys, StorageError> {
        self.inner.list()
    }
    fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.inner.list_prefix(prefix)
    }
    fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        self.inner.list_dir(prefix)
    }
    fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.inner.size_prefix(prefix)
    }
}

/// A storage adapter that hands shard writes to background threads, so compression on the
/// worker threads overlaps with the disk (or network) and its fsyncs. Other writes (metadata)
/// pass through synchronously.
///
/// At most `capacity` shards wait in the queue (bounded memory); [`BackgroundWrites::finish`]
/// waits for every queued write and returns the ones that failed. A shard that was queued but
/// never written (the process was killed) is simply absent, so a rerun redoes its tile.
pub struct BackgroundWrites {
    inner: Storage,
    queue: std::sync::Mutex<Option<std::sync::mpsc::SyncSender<(StoreKey, Bytes)>>>,
    writers: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
    errors: Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl BackgroundWrites {
    /// Wrap a store: shard writes go through `writers` threads with `capacity` queued shards.
    pub fn wrap(store: &Store, writers: usize, capacity: usize) -> (Store, Arc<BackgroundWrites>) {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(StoreKey, Bytes)>(capacity);
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
        let handles = (0..writers.max(1))
            .map(|i| {
                let (rx, errors, inner) = (rx.clone(), errors.clone(), store.storage.clone());
                std::thread::Builder::new()
                    .name(format!("mosaic-writer-{i}"))
                    .spawn(move || {
                        loop {
                            let job = rx.lock().expect("no poisoning").recv();
                            let Ok((key, value)) = job else { break };
                            if let Err(e) = inner.set(&key, value) {
                                errors
                                    .lock()
                                    .expect("no poisoning")
                                    .push((key.as_str().to_string(), e.to_string()));
                            }
                        }
                    })
                    .expect("a writer thread")
            })
            .collect();
        let bg = Arc::new(BackgroundWrites {
            inner: store.storage.clone(),
            queue: std::sync::Mutex::new(Some(tx)),
            writers: std::sync::Mutex::new(handles),
            errors,
        });
        (
            Store {
                storage: bg.clone(),
                location: store.location.clone(),
            },
            bg,
        )
    }

    /// Wait for every queued write; return the keys that failed, with the error.
    pub fn finish(&self) -> Vec<(String, String)> {
        drop(self.queue.lock().expect("no poisoning").take());
        for h in self.writers.lock().expect("no poisoning").drain(..) {
            let _ = h.join();
        }
        std::mem::take(&mut *self.errors.lock().expect("no poisoning"))
    }

    fn is_shard(key: &StoreKey) -> bool {
        let k = key.as_str();
        k.contains("/embeddings/c/") || k.contains("/scales/c/")
    }
}

impl ReadableStorageTraits for BackgroundWrites {
    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        self.inner.get_partial_many(key, byte_ranges)
    }
    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size_key(key)
    }
    fn supports_get_partial(&self) -> bool {
        self.inner.supports_get_partial()
    }
}

impl WritableStorageTraits for BackgroundWrites {
    fn set(&self, key: &StoreKey, value: Bytes) -> Result<(), StorageError> {
        if !Self::is_shard(key) {
            return self.inner.set(key, value);
        }
        let sender = self.queue.lock().expect("no poisoning").clone();
        match sender {
            Some(tx) => tx
                .send((key.clone(), value))
                .map_err(|_| StorageError::Other("the background writers stopped".into())),
            None => self.inner.set(key, value),
        }
    }
    fn set_partial_many(
        &self,
        key: &StoreKey,
        offset_values: OffsetBytesIterator,
    ) -> Result<(), StorageError> {
        self.inner.set_partial_many(key, offset_values)
    }
    fn erase(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.inner.erase(key)
    }
    fn erase_prefix(&self, prefix: &StorePrefix) -> Result<(), StorageError> {
        self.inner.erase_prefix(prefix)
    }
    fn supports_set_partial(&self) -> bool {
        false
    }
}

impl ListableStorageTraits for BackgroundWrites {
    fn list(&self) -> Result<StoreKeys, StorageError> {
        self.inner.list()
    }
    fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        self.inner.list_prefix(prefix)
    }
    fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        self.inner.list_dir(prefix)
    }
    fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        self.inner.size_prefix(prefix)
    }
}
