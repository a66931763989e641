//! Reading a band array one inner chunk at a time, for the commands that make many small
//! reads (`sample`, `query`): each shard's index is read once (cached), and chunks stored with
//! the plain chain (`bytes` + `zstd`, every pixel-major band) are decoded straight into the
//! caller's reused buffer with a per-thread zstd context, so a chunk costs one read and one
//! decode (zarrs' general path allocates a context and copies the chunk on the way). Other
//! chains (channel-planar chunks, blosc, uncompressed) go through zarrs. A damaged shard index
//! would point at other chunks, which decode cleanly: zarrs' cache decodes each index through
//! its `crc32c` with `CodecOptions::default()`, which checks it whatever the global config says.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use bytemuck::Pod;

use serde_json::Value;
use zarrs::array::{ArrayBytes, CodecError};
use zarrs::array::{
    ArrayError, ArrayShardedExt, ArrayShardedReadableExt, ArrayShardedReadableExtCache,
    CodecOptions,
};
use zstd::zstd_safe::DCtx;

use super::arrays::StoreArray;

thread_local! {
    /// One zstd decompression context per thread, reused for every chunk.
    static DCTX: RefCell<DCtx<'static>> = RefCell::new(DCtx::create());
}

/// Requests in flight when inner chunks come from an object store: each request mostly waits on
/// the network, so many more than the CPUs keep the link busy.
pub const REMOTE_READ_THREADS: usize = 32;

/// Run `read` (which reads inner chunks in parallel with rayon) on the CPUs for a local store,
/// and on [`REMOTE_READ_THREADS`] threads for an object store (`local` false).
pub fn on_read_threads<R: Send>(local: bool, read: impl FnOnce() -> R + Send) -> R {
    static REMOTE: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    if local {
        return read();
    }
    let pool = REMOTE.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(REMOTE_READ_THREADS)
            .thread_name(|i| format!("read-{i}"))
            .build()
            .ok()
    });
    match pool {
        Some(pool) => pool.install(read),
        None => read(),
    }
}

/// An inner chunk that could not be read, named by the shard object that holds it (a damaged
/// shard index fails every chunk of its shard, so the object is what a user must look at).
#[derive(Debug, thiserror::Error)]
#[error("cannot read inner chunk {indices:?} of {key}")]
pub struct InnerChunkError {
    /// The shard's key in the store.
    pub key: String,
    /// The inner chunk's grid indices.
    pub indices: Vec<u64>,
    #[source]
    pub source: Box<ArrayError>,
}

/// How a stored inner chunk becomes bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chain {
    /// `bytes` (little endian) then `zstd`: decoded here.
    PlainZstd,
    /// Anything else: decoded by zarrs.
    Zarrs,
}

/// The inner chunks of one sharded array.
pub struct InnerChunks {
    array: Arc<StoreArray>,
    cache: ArrayShardedReadableExtCache,
    chain: Chain,
    /// Bytes of one decoded inner chunk.
    chunk_bytes: usize,
    /// The fill value of one element, repeated for an absent chunk.
    fill: Vec<u8>,
    /// Inner chunks per shard along each dimension, to name a chunk's shard in errors.
    per_shard: Vec<u64>,
}

impl InnerChunks {
    /// Read `array` (sharded, as every band array is) chunk by chunk.
    pub fn new(array: Arc<StoreArray>) -> InnerChunks {
        let shape = array.effective_subchunk_shape().unwrap_or_else(|| {
            array
                .chunk_shape(&vec![0; array.dimensionality()])
                .expect("chunk")
        });
        let elements: u64 = shape.iter().map(|d| d.get()).product();
        let fill = array.fill_value().as_ne_bytes().to_vec();
        let per_shard = match array.chunk_shape(&vec![0; array.dimensionality()]) {
            Ok(shard) => shard
                .iter()
                .zip(&shape)
                .map(|(s, i)| s.get() / i.get())
                .collect(),
            Err(_) => vec![1; shape.len()],
        };
        InnerChunks {
            per_shard,
            cache: ArrayShardedReadableExtCache::new(&array),
            chain: chain_of(&array),
            chunk_bytes: elements as usize * fill.len(),
            fill,
            array,
        }
    }

    /// Bytes of one decoded inner chunk.
    pub fn chunk_bytes(&self) -> usize {
        self.chunk_bytes
    }

    /// Decode the inner chunk at `indices` (inner-chunk grid indices) into `out`, which holds
    /// the chunk's elements in C order afterwards (`T` is the array's element type); an absent
    /// chunk gives the fill value. Returns whether the chunk was stored. `out` keeps its
    /// allocation from call to call.
    pub fn read_into<T: Pod>(
        &self,
        indices: &[u64],
        out: &mut Vec<T>,
    ) -> Result<bool, InnerChunkError> {
        self.read_chunk(indices, out)
            .map_err(|source| InnerChunkError {
                key: self.shard_key(indices),
                indices: indices.to_vec(),
                source: Box::new(source),
            })
    }

    /// The key of the shard that holds the inner chunk at `indices`.
    fn shard_key(&self, indices: &[u64]) -> String {
        let shard: Vec<u64> = indices
            .iter()
            .zip(&self.per_shard)
            .map(|(i, n)| i / n)
            .collect();
        self.array.chunk_key(&shard).to_string()
    }

    fn read_chunk<T: Pod>(&self, indices: &[u64], out: &mut Vec<T>) -> Result<bool, ArrayError> {
        assert_eq!(size_of::<T>(), self.fill.len(), "element type of the array");
        out.resize(self.chunk_bytes / size_of::<T>(), T::zeroed());
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(out.as_mut_slice());
        match self.chain {
            Chain::PlainZstd => {
                // An inner chunk of fill values is not stored: its index entry is (2^64 - 1,
                // 2^64 - 1), which zarrs 0.23's `retrieve_encoded_subchunk` would try to read.
                let range = self.array.subchunk_byte_range(&self.cache, indices)?;
                let stored = range.is_some_and(|r| r.start(0) != u64::MAX);
                let encoded = match stored {
                    true => self.array.retrieve_encoded_subchunk(&self.cache, indices)?,
                    false => None,
                };
                let Some(encoded) = encoded else {
                    self.fill(bytes);
                    return Ok(false);
                };
                let decoded = DCTX
                    .with_borrow_mut(|dctx| dctx.decompress(bytes, &encoded))
                    .map_err(|code| {
                        let name = zstd::zstd_safe::get_error_name(code);
                        codec_error(format!("zstd: {name} (inner chunk {indices:?})"))
                    })?;
                if decoded != self.chunk_bytes {
                    return Err(codec_error(format!(
                        "inner chunk {indices:?} decodes to {decoded} bytes, expected {}",
                        self.chunk_bytes
                    )));
                }
                Ok(true)
            }
            Chain::Zarrs => {
                let present = self
                    .array
                    .subchunk_byte_range(&self.cache, indices)
                    .map(|r| r.is_some_and(|r| r.start(0) != u64::MAX))
                    .unwrap_or(true);
                let decoded: ArrayBytes<'static> = self.array.retrieve_subchunk_opt(
                    &self.cache,
                    indices,
                    &CodecOptions::default(),
                )?;
                bytes.copy_from_slice(&decoded.into_fixed()?);
                Ok(present)
            }
        }
    }

    /// Forget the cached shard indexes (they hold one index per shard seen).
    pub fn clear_cache(&self) {
        self.cache.clear();
    }

    /// Shard indexes cached.
    pub fn cached_shards(&self) -> usize {
        self.cache.len()
    }

    fn fill(&self, bytes: &mut [u8]) {
        for element in bytes.chunks_exact_mut(self.fill.len()) {
            element.copy_from_slice(&self.fill);
        }
    }
}

fn codec_error(message: String) -> ArrayError {
    ArrayError::CodecError(CodecError::Other(message))
}

/// The chain inside the sharding codec: plain when it is `bytes` (little endian, on a
/// little-endian machine) followed by `zstd` alone.
fn chain_of(array: &StoreArray) -> Chain {
    let Ok(meta) = serde_json::to_value(array.metadata()) else {
        return Chain::Zarrs;
    };
    let inner = meta["codecs"]
        .as_array()
        .filter(|codecs| codecs.len() == 1 && codecs[0]["name"] == "sharding_indexed")
        .and_then(|codecs| codecs[0]["configuration"]["codecs"].as_array());
    let names: Vec<&str> = inner
        .map(|codecs| codecs.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    let little = |c: &Value| {
        c["configuration"]["endian"]
            .as_str()
            .is_none_or(|e| e == "little")
    };
    let bytes_little = inner.is_some_and(|codecs| codecs.first().is_some_and(little));
    if names == ["bytes", "zstd"] && bytes_little && cfg!(target_endian = "little") {
        Chain::PlainZstd
    } else {
        Chain::Zarrs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zarr::MosaicStore;
    use serde_json::json;
    use zarrs::array::ArraySubset;

    /// A (1, 8, 12, 4) int8 array of (1, 8, 12, 4) shards and (1, 4, 4, 4) inner chunks, with
    /// `inner` as the chain inside the shard; fill 7.
    fn array(store: &MosaicStore, name: &str, inner: serde_json::Value) -> Arc<StoreArray> {
        let meta = json!({
            "zarr_format": 3, "node_type": "array", "shape": [1, 8, 12, 4], "data_type": "int8",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1, 8, 12, 4]}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 7,
            "codecs": [{"name": "sharding_indexed", "configuration": {
                "chunk_shape": [1, 4, 4, 4], "codecs": inner,
                "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
                "index_location": "end"}}]
        });
        Arc::new(store.array_from_metadata(name, &meta).expect("metadata"))
    }

    /// An array at `/{name}` of `array`'s shape with the plain chain (bytes, zstd), every value
    /// written (`i % 13`), and its one shard's key and bytes as stored.
    fn stored_plain_shard(
        store: &MosaicStore,
        name: &str,
    ) -> (Arc<StoreArray>, zarrs::storage::StoreKey, Vec<u8>) {
        let bytes = json!({"name": "bytes", "configuration": {"endian": "little"}});
        let zstd = json!({"name": "zstd", "configuration": {"level": 3, "checksum": true}});
        let array = array(store, &format!("/{name}"), json!([bytes, zstd]));
        let values: Vec<i8> = (0..8 * 12 * 4).map(|i| (i % 13) as i8).collect();
        array
            .store_array_subset(&array.subset_all(), values)
            .unwrap();
        let key = zarrs::storage::StoreKey::new(format!("{name}/c/0/0/0/0")).unwrap();
        let shard = store
            .store
            .storage
            .get(&key)
            .unwrap()
            .expect("shard")
            .to_vec();
        (array, key, shard)
    }

    #[test]
    fn inner_chunks_read_as_zarrs_reads_them() {
        let store = MosaicStore::in_memory();
        let bytes = json!({"name": "bytes", "configuration": {"endian": "little"}});
        let zstd = json!({"name": "zstd", "configuration": {"level": 3, "checksum": true}});
        let transpose = json!({"name": "transpose", "configuration": {"order": [0, 3, 1, 2]}});
        let chains = [
            ("/plain", json!([bytes, zstd]), Chain::PlainZstd),
            ("/planar", json!([transpose, bytes, zstd]), Chain::Zarrs),
            ("/raw", json!([bytes]), Chain::Zarrs),
        ];
        for (name, inner, chain) in chains {
            let array = array(&store, name, inner);
            assert_eq!(chain_of(&array), chain, "{name}");
            let reader = InnerChunks::new(array.clone());
            // Before anything is stored: the whole shard is absent.
            let mut out: Vec<i8> = vec![1; 3];
            assert!(!reader.read_into(&[0, 1, 2, 0], &mut out).unwrap());
            assert_eq!(out, vec![7i8; 64], "{name}: absent shard");
            // Every inner chunk distinct, except (0, 1, 1) which holds only the fill value and
            // is therefore not stored inside the shard.
            let values: Vec<i8> = (0..8 * 12 * 4)
                .map(|i| {
                    let (r, c) = (i / 48, i / 4 % 12);
                    if r / 4 == 1 && c / 4 == 1 {
                        7
                    } else {
                        (i % 251) as i8
                    }
                })
                .collect();
            array
                .store_array_subset(&array.subset_all(), values)
                .expect("store");
            let reader = InnerChunks::new(array.clone());
            for (cr, cc) in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)] {
                let expected: Vec<i8> = array
                    .retrieve_array_subset(&ArraySubset::new_with_ranges(&[
                        0..1,
                        cr * 4..cr * 4 + 4,
                        cc * 4..cc * 4 + 4,
                        0..4,
                    ]))
                    .unwrap();
                let stored = reader.read_into(&[0, cr, cc, 0], &mut out).unwrap();
                assert_eq!(out, expected, "{name}: inner chunk ({cr}, {cc})");
                assert_eq!(stored, (cr, cc) != (1, 1), "{name}: ({cr}, {cc}) stored");
            }
        }
    }

    #[test]
    fn a_corrupted_inner_chunk_fails_to_decode() {
        let store = MosaicStore::in_memory();
        let (array, key, mut shard) = stored_plain_shard(&store, "c");
        // Flip one byte in the middle of the first inner chunk's frame, found through the index
        // (zarrs may lay the chunks out in any order).
        let storage = store.store.storage.clone();
        let index = shard.len() - 4 - 6 * 16;
        let entry = |k: usize| u64::from_le_bytes(shard[k..k + 8].try_into().unwrap()) as usize;
        let (offset, size) = (entry(index), entry(index + 8));
        shard[offset + size / 2] ^= 0x40;
        storage.set(&key, shard.into()).unwrap();
        let reader = InnerChunks::new(array);
        let mut out: Vec<i8> = Vec::new();
        assert!(reader.read_into(&[0, 0, 0, 0], &mut out).is_err());
    }

    /// CRC-32C (Castagnoli, reflected), bit by bit: the index codec's checksum, computed here
    /// rather than by the crate zarrs uses.
    fn crc32c(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// The shard index alone damaged: two stored entries swapped, chunks untouched. With the
    /// crc32c recomputed (a forged index) the read succeeds with the other chunk's values,
    /// so only the checksum stands between a damaged index and wrong numbers; with the stored
    /// crc32c kept the read is refused, naming the shard.
    #[test]
    fn a_damaged_shard_index_is_refused_naming_the_shard() {
        let store = MosaicStore::in_memory();
        let (array, key, good) = stored_plain_shard(&store, "d");
        let storage = store.store.storage.clone();
        // 6 inner chunks, (offset, size) each as u64, then the crc32c of those 96 bytes.
        let index = good.len() - 4 - 6 * 16;
        let mut swapped = good.clone();
        swapped[index..index + 16].copy_from_slice(&good[index + 16..index + 32]);
        swapped[index + 16..index + 32].copy_from_slice(&good[index..index + 16]);
        let read = |shard: &[u8]| {
            storage.set(&key, shard.to_vec().into()).unwrap();
            let reader = InnerChunks::new(array.clone());
            let mut out: Vec<i8> = Vec::new();
            reader.read_into(&[0, 0, 0, 0], &mut out).map(|_| out)
        };
        let expected = read(&good).expect("the good shard reads");
        let mut forged = swapped.clone();
        let crc = crc32c(&forged[index..index + 96]).to_le_bytes();
        forged[index + 96..].copy_from_slice(&crc);
        let wrong = read(&forged).expect("a forged index decodes");
        assert_ne!(
            wrong, expected,
            "the swap points chunk (0, 0) at other values"
        );
        let err = read(&swapped).expect_err("a damaged index is refused");
        let cause = std::error::Error::source(&err).map(|e| e.to_string());
        let text = format!("{err}: {cause:?}");
        assert!(text.contains("d/c/0/0/0/0"), "{text}");
        assert!(text.contains("checksum"), "{text}");
    }
}
