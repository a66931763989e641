//! The Zarr codec chains of the band arrays, as Zarr v3 metadata.

use serde_json::{Value, json};

use crate::bands::CompressionConfig;

/// The bytes-to-bytes codec metadata for a compression setting (empty for none). zstd frames
/// carry a checksum, so a corrupted chunk fails to decode instead of returning wrong values.
pub fn compression_codecs(compression: &CompressionConfig, element_size: usize) -> Vec<Value> {
    match compression {
        CompressionConfig::None => vec![],
        CompressionConfig::Zstd { level } => vec![json!({
            "name": "zstd",
            "configuration": {"level": level, "checksum": true}
        })],
        CompressionConfig::Blosc {
            cname,
            clevel,
            shuffle,
        } => vec![json!({
            "name": "blosc",
            "configuration": {
                "cname": cname,
                "clevel": clevel,
                "shuffle": shuffle,
                "typesize": element_size,
                "blocksize": 0
            }
        })],
    }
}

/// The sharding codec: whole-shard objects of `inner_chunk` chunks, each compressed, with a
/// crc32c-protected index at the end (so a truncated shard fails to decode).
pub fn sharding_codec(
    inner_chunk: &[u64],
    compression: &CompressionConfig,
    element_size: usize,
) -> Value {
    let mut inner = vec![json!({"name": "bytes", "configuration": {"endian": "little"}})];
    inner.extend(compression_codecs(compression, element_size));
    json!({
        "name": "sharding_indexed",
        "configuration": {
            "chunk_shape": inner_chunk,
            "codecs": inner,
            "index_codecs": [
                {"name": "bytes", "configuration": {"endian": "little"}},
                {"name": "crc32c"}
            ],
            "index_location": "end"
        }
    })
}

/// Metadata of a plain (unsharded) 1-D array, used to measure a codec on sample bytes.
fn plain_array_metadata(len: usize, data_type: &str, compression: &CompressionConfig) -> Value {
    let element_size = if data_type == "float32" { 4 } else { 1 };
    let mut codecs = vec![json!({"name": "bytes", "configuration": {"endian": "little"}})];
    codecs.extend(compression_codecs(compression, element_size));
    json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": [len / element_size],
        "data_type": data_type,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [len / element_size]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": if data_type == "float32" { json!("NaN") } else { json!(0) },
        "codecs": codecs
    })
}

/// Encoded size of `bytes` (of `data_type` int8 or float32) under a compression setting.
pub fn encoded_size(
    bytes: &[u8],
    data_type: &str,
    compression: &CompressionConfig,
) -> Result<usize, zarrs::array::ArrayError> {
    use zarrs::storage::{ReadableStorageTraits, store::MemoryStore};
    let store = std::sync::Arc::new(MemoryStore::new());
    let metadata: zarrs::array::ArrayMetadataV3 =
        serde_json::from_value(plain_array_metadata(bytes.len(), data_type, compression))
            .expect("valid metadata");
    let array = zarrs::array::Array::new_with_metadata(
        store.clone(),
        "/a",
        zarrs::array::ArrayMetadata::V3(metadata),
    )
    .map_err(|e| zarrs::array::ArrayError::Other(e.to_string()))?;
    let options = zarrs::array::CodecOptions::default().with_store_empty_chunks(true);
    array.store_chunk_opt(&[0], crate::store::raw_bytes(bytes), &options)?;
    Ok(store
        .size_key(&array.chunk_key(&[0]))
        .map_err(zarrs::array::ArrayError::StorageError)?
        .unwrap_or(0) as usize)
}

/// Stored / raw size of embeddings plus scales, measured by compressing the start of up to
/// three tiles of the catalogue (1.0 when there are none).
pub fn sample_compression_ratio(
    catalogue: &crate::tiles::Catalogue,
    compression: &CompressionConfig,
) -> Result<f64, std::io::Error> {
    const EMB_SAMPLE: usize = 4 << 20;
    let tiles: Vec<_> = catalogue.years.values().flat_map(|t| t.values()).collect();
    if tiles.is_empty() {
        return Ok(1.0);
    }
    let picks: Vec<_> = (0..3.min(tiles.len()))
        .map(|i| tiles[i * tiles.len() / 3.min(tiles.len())])
        .collect();
    let (mut raw, mut stored) = (0usize, 0usize);
    for tile in picks {
        for (path, dtype, sample) in [
            (&tile.embeddings, "int8", EMB_SAMPLE),
            (&tile.scales, "float32", EMB_SAMPLE / 32),
        ] {
            let bytes = read_data_prefix(path, sample)?;
            let bytes = &bytes[..bytes.len() / 4 * 4];
            if bytes.is_empty() {
                continue;
            }
            raw += bytes.len();
            stored += encoded_size(bytes, dtype, compression)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
        }
    }
    Ok(if raw == 0 {
        1.0
    } else {
        stored as f64 / raw as f64
    })
}

/// The first `max` data bytes of a `.npy` file.
fn read_data_prefix(path: &std::path::Path, max: usize) -> Result<Vec<u8>, std::io::Error> {
    use std::io::{Read, Seek, SeekFrom};
    let header = crate::npy::read_header(path)
        .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(header.data_offset as u64))?;
    let mut buf = Vec::new();
    f.take(max.min(header.data_bytes()) as u64)
        .read_to_end(&mut buf)?;
    Ok(buf)
}
