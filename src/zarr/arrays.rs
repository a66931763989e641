//! The one place zarrs arrays of a store are opened and coordinates written, so every failure
//! names the store and the array, and no caller reaches into the store's storage.

use serde_json::Value;
use zarrs::array::{Array, ArrayMetadata, ArrayMetadataV3, CodecOptions};
use zarrs::storage::ReadableWritableListableStorageTraits;

use super::codecs::raw_bytes;
use super::mosaic_store::{FormatError, MosaicStore};
use crate::store::Store;

/// A zarrs array of the store, readable and writable.
pub type StoreArray = Array<dyn ReadableWritableListableStorageTraits>;

/// The values of a 1-D (or 0-D) coordinate array, typed so its element size follows.
#[derive(Debug, Clone, PartialEq)]
pub enum Coordinate {
    /// float64 (lat, lon).
    F64(Vec<f64>),
    /// int32 (year, channel, spatial_ref).
    I32(Vec<i32>),
}

impl Coordinate {
    /// Bytes of one element.
    pub fn element_size(&self) -> usize {
        match self {
            Coordinate::F64(_) => size_of::<f64>(),
            Coordinate::I32(_) => size_of::<i32>(),
        }
    }

    /// The values as little-endian bytes, as the arrays store them.
    pub fn to_le_bytes(&self) -> Vec<u8> {
        match self {
            Coordinate::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Coordinate::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

impl MosaicStore {
    /// Open the array at `path` (e.g. `/70-80/embeddings`) from its stored metadata.
    pub fn open_array(&self, path: &str) -> Result<StoreArray, FormatError> {
        Array::open(self.store.storage.clone(), path).map_err(self.array_error(path))
    }

    /// An array handle from metadata JSON, without reading or writing the metadata.
    pub fn array_from_metadata(&self, path: &str, meta: &Value) -> Result<StoreArray, FormatError> {
        let v3: ArrayMetadataV3 =
            serde_json::from_value(meta.clone()).map_err(self.array_error(path))?;
        Array::new_with_metadata(self.store.storage.clone(), path, ArrayMetadata::V3(v3))
            .map_err(self.array_error(path))
    }

    /// Write a coordinate array's chunks (its metadata `meta` already stored or about to be);
    /// the last chunk is padded with zeros to the chunk shape.
    pub fn write_coordinate(
        &self,
        path: &str,
        meta: &Value,
        values: &Coordinate,
    ) -> Result<(), FormatError> {
        let array = self.array_from_metadata(path, meta)?;
        let bytes = values.to_le_bytes();
        let elem = values.element_size();
        let chunk_bytes = meta["chunk_grid"]["configuration"]["chunk_shape"]
            .as_array()
            .and_then(|s| s.first())
            .and_then(Value::as_u64)
            .map_or(bytes.len(), |n| n as usize * elem);
        let zero_dimensional = array.shape().is_empty();
        let options = CodecOptions::default().with_store_empty_chunks(true);
        for (i, chunk) in bytes.chunks(chunk_bytes.max(1)).enumerate() {
            let indices: Vec<u64> = if zero_dimensional {
                vec![]
            } else {
                vec![i as u64]
            };
            let shape = array
                .chunk_shape_usize(&indices)
                .map_err(self.array_error(path))?;
            let mut data = chunk.to_vec();
            data.resize(shape.iter().product::<usize>().max(1) * elem, 0);
            array
                .store_chunk_opt(&indices, raw_bytes(&data), &options)
                .map_err(self.array_error(path))?;
        }
        Ok(())
    }

    /// A store in memory, never persisted: for running codec chains with no store behind.
    pub fn in_memory() -> MosaicStore {
        MosaicStore {
            store: Store {
                storage: std::sync::Arc::new(zarrs::storage::store::MemoryStore::new()),
                location: "memory:".into(),
            },
        }
    }

    /// The error of the array at `path`, named with the store's location; the name is written
    /// only when there is an error.
    fn array_error<'a, E: std::error::Error + Send + Sync + 'static>(
        &'a self,
        path: &'a str,
    ) -> impl FnOnce(E) -> FormatError + 'a {
        move |e| FormatError::array(format!("{}{path}", self.store.location))(e)
    }
}
