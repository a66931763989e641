//! Encoding one whole shard of a band array (`sharding_indexed`, index at the end) in one
//! pass: each inner chunk is copied out of the gathered shard (transposed to channel planes
//! where the band asks for it) into one reused buffer and compressed with one zstd context per
//! thread. zarrs' sharding codec gives the same bytes (a test checks it) but allocates a
//! chunk, a compression context and an output per inner chunk, which made small inner chunks
//! cost 40-50% more build time than large ones (docs/performance.md).

use std::cell::RefCell;

use crate::grid::{BandGrid, ChunkOrder, CompressionConfig};

/// The shape of one shard to encode: `rows` x `cols` pixels of `depth` elements of
/// `element_size` bytes each, in (row, col, element) order.
#[derive(Debug, Clone, Copy)]
pub struct ShardShape {
    /// Pixel rows of the shard.
    pub rows: usize,
    /// Pixel columns of the shard.
    pub cols: usize,
    /// Elements per pixel (128 channels, or 1).
    pub depth: usize,
    /// Bytes per element (1 for int8, 4 for float32).
    pub element_size: usize,
    /// Inner chunk rows.
    pub chunk_rows: usize,
    /// Inner chunk columns.
    pub chunk_cols: usize,
    /// Store each inner chunk channel-planar (the `transpose` codec, order [0, 3, 1, 2]).
    pub planar: bool,
}

impl ShardShape {
    /// The `embeddings` shard of a band grid (one cell).
    pub fn embeddings(grid: &BandGrid, channels: usize) -> ShardShape {
        ShardShape {
            rows: grid.rows_per_cell,
            cols: grid.cols_per_cell,
            depth: channels,
            element_size: 1,
            chunk_rows: grid.chunk_rows,
            chunk_cols: grid.chunk_cols,
            planar: grid.chunk_order == ChunkOrder::ChannelPlanar,
        }
    }

    /// The `scales` shard of a band grid (one cell; never transposed).
    pub fn scales(grid: &BandGrid) -> ShardShape {
        ShardShape {
            rows: grid.rows_per_cell,
            cols: grid.cols_per_cell,
            depth: 1,
            element_size: 4,
            chunk_rows: grid.chunk_rows,
            chunk_cols: grid.chunk_cols,
            planar: false,
        }
    }
}

thread_local! {
    /// This thread's zstd context (with its level) and chunk and output buffers, reused.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

#[derive(Default)]
struct Scratch {
    zstd: Option<(i32, zstd::bulk::Compressor<'static>)>,
    chunk: Vec<u8>,
    compressed: Vec<u8>,
}

/// Copy inner chunk (`ci`, `cj`) of a shard out of `data` into `out` (cleared first), in the
/// order it is stored: pixel-major, or channel planes.
fn extract_chunk(data: &[u8], s: &ShardShape, ci: usize, cj: usize, out: &mut Vec<u8>) {
    let pixel = s.depth * s.element_size;
    let (cr, cc) = (s.chunk_rows, s.chunk_cols);
    out.clear();
    out.resize(cr * cc * pixel, 0);
    if s.planar && s.element_size == 1 && s.depth > 1 {
        let plane = cr * cc;
        for r in 0..cr {
            let row = &data[((ci * cr + r) * s.cols + cj * cc) * pixel..][..cc * pixel];
            for (c, px) in row.chunks_exact(pixel).enumerate() {
                let at = r * cc + c;
                for (k, &v) in px.iter().enumerate() {
                    out[k * plane + at] = v;
                }
            }
        }
    } else {
        for r in 0..cr {
            let src = &data[((ci * cr + r) * s.cols + cj * cc) * pixel..][..cc * pixel];
            out[r * cc * pixel..][..cc * pixel].copy_from_slice(src);
        }
    }
}

/// Encode a whole shard as `sharding_indexed` with the band's inner codecs, or `None` for a
/// compression this encoder does not do itself (blosc: the caller uses zarrs' codec chain).
/// Every inner chunk is stored, in C order, followed by the index (offset and length of each,
/// u64 little endian) and its crc32c.
pub fn encode_shard(
    data: &[u8],
    s: &ShardShape,
    compression: &CompressionConfig,
) -> Option<std::io::Result<Vec<u8>>> {
    let level = match compression {
        CompressionConfig::Zstd { level } => Some(*level),
        CompressionConfig::None => None,
        CompressionConfig::Blosc { .. } => return None,
    };
    assert_eq!(data.len(), s.rows * s.cols * s.depth * s.element_size);
    let (ni, nj) = (s.rows / s.chunk_rows, s.cols / s.chunk_cols);
    Some(SCRATCH.with(|scratch| {
        let scratch = &mut *scratch.borrow_mut();
        if let Some(level) = level
            && scratch.zstd.as_ref().map(|z| z.0) != Some(level)
        {
            let mut compressor = zstd::bulk::Compressor::new(level)?;
            compressor.include_checksum(true)?;
            scratch.zstd = Some((level, compressor));
        }
        let mut shard = Vec::with_capacity(data.len() / 2);
        let mut index = Vec::with_capacity(ni * nj * 16 + 4);
        for ci in 0..ni {
            for cj in 0..nj {
                extract_chunk(data, s, ci, cj, &mut scratch.chunk);
                let start = shard.len() as u64;
                match (&mut scratch.zstd, level) {
                    (Some((_, compressor)), Some(_)) => {
                        let out = &mut scratch.compressed;
                        out.clear();
                        out.reserve(zstd::zstd_safe::compress_bound(scratch.chunk.len()));
                        compressor.compress_to_buffer(&scratch.chunk, out)?;
                        shard.extend_from_slice(out);
                    }
                    _ => shard.extend_from_slice(&scratch.chunk),
                }
                index.extend_from_slice(&start.to_le_bytes());
                index.extend_from_slice(&(shard.len() as u64 - start).to_le_bytes());
            }
        }
        let crc = crc32c::crc32c(&index);
        shard.extend_from_slice(&index);
        shard.extend_from_slice(&crc.to_le_bytes());
        Ok(shard)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zarr::{BandLayout, FORMAT_VERSION, MosaicStore, band_array_metadata, raw_bytes};
    use zarrs::storage::ReadableStorageTraits;

    fn grid(order: ChunkOrder) -> BandGrid {
        BandGrid {
            name: "70-80".into(),
            lat_start_index: 1600,
            lat_end_index: 1700,
            rows_per_cell: 6,
            cols_per_cell: 8,
            chunk_rows: 3,
            chunk_cols: 4,
            chunk_order: order,
        }
    }

    /// The one-pass encoder gives zarrs' own bytes for the band's metadata, in every chunk
    /// order and compression it handles, and zarrs decodes them back to the input.
    #[test]
    fn shards_equal_zarrs_encoding_and_decode_back() {
        let channels = 128;
        let emb: Vec<u8> = (0..6 * 8 * channels)
            .map(|i| ((i * 7919) % 251 % (1 + i % 13)) as u8)
            .collect();
        let scales: Vec<f32> = (0..6 * 8).map(|i| i as f32 * 0.25).collect();
        for order in [ChunkOrder::PixelMajor, ChunkOrder::ChannelPlanar] {
            for compression in [
                CompressionConfig::None,
                CompressionConfig::Zstd { level: 3 },
            ] {
                let g = grid(order);
                let layout = BandLayout {
                    format_version: FORMAT_VERSION,
                    grid: g.clone(),
                    first_year: 2024,
                    years: 1,
                    compression: compression.clone(),
                    embeddings_fill: 0,
                };
                let store = MosaicStore::in_memory();
                let meta = band_array_metadata(&layout);
                let doc = |n: &str| &meta.iter().find(|(m, _)| *m == n).unwrap().1;
                let options = zarrs::array::CodecOptions::default().with_store_empty_chunks(true);
                let scale_bytes: &[u8] = bytemuck::cast_slice(&scales);
                for (name, idx, bytes, shape) in [
                    (
                        "embeddings",
                        &[0, 0, 0, 0][..],
                        &emb[..],
                        ShardShape::embeddings(&g, channels),
                    ),
                    (
                        "scales",
                        &[0, 0, 0][..],
                        scale_bytes,
                        ShardShape::scales(&g),
                    ),
                ] {
                    let array = store
                        .array_from_metadata(&format!("/b/{name}"), doc(name))
                        .unwrap();
                    array
                        .store_chunk_opt(idx, raw_bytes(bytes), &options)
                        .unwrap();
                    let theirs = store
                        .store
                        .storage
                        .get(&array.chunk_key(idx))
                        .unwrap()
                        .unwrap();
                    let ours = encode_shard(bytes, &shape, &compression).unwrap().unwrap();
                    assert_eq!(&ours[..], &theirs[..], "{name} {order:?} {compression:?}");
                    let back: Vec<u8> = if name == "embeddings" {
                        let v: Vec<i8> = array.retrieve_chunk(idx).unwrap();
                        bytemuck::cast_slice(&v).to_vec()
                    } else {
                        let v: Vec<f32> = array.retrieve_chunk(idx).unwrap();
                        bytemuck::cast_slice(&v).to_vec()
                    };
                    assert_eq!(&back[..], bytes, "{name} {order:?} {compression:?}");
                }
            }
        }
    }
}
