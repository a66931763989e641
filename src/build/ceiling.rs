//! The ceiling: what the hardware allows for a band's tiles, as a benchmark yardstick. It reads
//! every tile and compresses the very bytes a build compresses, with no store; reprojection,
//! gathering and writing are what a build adds on top.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use super::band::{BuildError, BuildOptions, prepare_cell};
use super::report::PhaseClock;
use super::resume::CellWork;
use super::threads::{thread_pool, with_tile_buffers};
use crate::grid::{BandGrid, Cell, TileGeometry};
use crate::input::{Catalogue, InputTile, TileSource, read_tile};
use crate::placement::gather_into;
use crate::zarr::{BandLayout, FORMAT_VERSION, MosaicStore, band_array_metadata, raw_bytes};

/// The result of [`ceiling`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ceiling {
    /// Input bytes of the tiles.
    pub input_bytes: u64,
    /// Output (shard) bytes compressed.
    pub output_bytes: u64,
    /// Compressed bytes.
    pub stored_bytes: u64,
    /// Thread-seconds reading input files.
    pub read_seconds: f64,
    /// Thread-seconds compressing the output.
    pub compress_seconds: f64,
    /// Thread-seconds decompressing the embeddings shards again (what a reader pays).
    pub decompress_seconds: f64,
    /// Threads used.
    pub threads: usize,
}

impl Ceiling {
    /// Output MB/s of embeddings one thread decompresses.
    pub fn decode_mb_per_s(&self) -> f64 {
        self.output_bytes as f64 / 1e6 / self.decompress_seconds.max(1e-9)
    }

    /// Input MB/s the threads could reach doing only the reads and the compression.
    pub fn input_mb_per_s(&self) -> f64 {
        let wall = (self.read_seconds + self.compress_seconds) / self.threads as f64;
        self.input_bytes as f64 / 1e6 / wall.max(1e-9)
    }
}

/// What the hardware allows for a band's tiles: the time to read every input file plus the
/// time to compress the very output bytes a build compresses (the gathered shards, computed
/// outside the timed parts) with the band's codec, into memory. Reprojection, gathering and
/// writing are what a build adds on top.
pub fn ceiling(
    source: &dyn TileSource,
    catalogue: &Catalogue,
    grid: &BandGrid,
    options: &BuildOptions,
    progress: &indicatif::ProgressBar,
) -> Result<Ceiling, BuildError> {
    let layout = BandLayout {
        format_version: FORMAT_VERSION,
        grid: grid.clone(),
        first_year: 0,
        years: 1,
        compression: options.compression.clone(),
        embeddings_fill: options.embeddings_fill,
    };
    // The band's two arrays over a store that is never written: only their codec chains run.
    let metadata = band_array_metadata(&layout);
    let memory = MosaicStore::in_memory();
    let arrays = ["embeddings", "scales"].map(|name| {
        let meta = &metadata.iter().find(|(n, _)| *n == name).expect("array").1;
        memory
            .array_from_metadata(&format!("/b/{name}"), meta)
            .expect("valid metadata")
    });
    let codec = zarrs::array::CodecOptions::default()
        .with_store_empty_chunks(true)
        .with_concurrent_target(1);
    // The shard codec chain itself, as `store_chunk` runs it, with no store.
    use zarrs::array::ArrayToBytesCodecTraits;
    let encode = |array: &zarrs::array::Array<_>, shard: &[u64], bytes: &[u8]| {
        let shape = array.chunk_shape(shard).expect("shard in grid");
        array
            .codecs()
            .encode(
                raw_bytes(bytes),
                &shape,
                array.data_type(),
                array.fill_value(),
                &codec,
            )
            .map(|encoded| (encoded.into_owned(), shape))
    };
    let cells: Vec<(Cell, TileGeometry, Vec<&InputTile>)> = catalogue
        .geometry
        .iter()
        .filter(|(c, _)| grid.contains(**c))
        .map(|(c, g)| (*c, *g, catalogue.tiles_of_cell(*c).collect()))
        .collect();
    progress.set_length(cells.iter().map(|c| c.2.len() as u64).sum());
    let (threads, pool) = thread_pool(options.threads)?;
    let clock = PhaseClock::default();
    let (input, output, stored) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    pool.install(|| {
        cells.par_iter().for_each(|(cell, geometry, tiles)| {
            let w = CellWork {
                cell: *cell,
                geometry: *geometry,
                tiles: tiles.clone(),
                landmask: None,
            };
            let Ok((map, _)) = prepare_cell(source, grid, &w) else {
                return;
            };
            let (i, j) = grid.cell_shard(*cell);
            let emb_shard = [0, i as u64, j as u64, 0];
            for tile in tiles {
                with_tile_buffers(|buffers| {
                    let t = Instant::now();
                    let Ok(scales) = read_tile(source, tile, &mut buffers.input) else {
                        return;
                    };
                    PhaseClock::add(&clock.read, t);
                    let out_scales = gather_into(
                        &map,
                        &buffers.input,
                        &scales,
                        None,
                        options.embeddings_fill,
                        &mut buffers.output,
                    );
                    let out = &buffers.output;
                    let scales_bytes: Vec<u8> =
                        out_scales.iter().flat_map(|v| v.to_le_bytes()).collect();
                    let t = Instant::now();
                    let Ok((encoded, shape)) = encode(&arrays[0], &emb_shard, out) else {
                        return;
                    };
                    let scales_len = encode(&arrays[1], &emb_shard[..3], &scales_bytes)
                        .map_or(0, |(e, _)| e.len());
                    PhaseClock::add(&clock.encode_write, t);
                    stored.fetch_add((encoded.len() + scales_len) as u64, Ordering::Relaxed);
                    // Decoding the embeddings again, as a reader does (kept in the gather slot).
                    let t = Instant::now();
                    let decoded = arrays[0].codecs().decode(
                        encoded.into(),
                        &shape,
                        arrays[0].data_type(),
                        arrays[0].fill_value(),
                        &codec,
                    );
                    PhaseClock::add(&clock.gather, t);
                    debug_assert!(decoded.is_ok());
                    input.fetch_add(tile.bytes, Ordering::Relaxed);
                    output.fetch_add((out.len() + out_scales.len() * 4) as u64, Ordering::Relaxed);
                    progress.inc(1);
                });
            }
        });
    });
    let t = clock.seconds();
    Ok(Ceiling {
        input_bytes: input.into_inner(),
        output_bytes: output.into_inner(),
        stored_bytes: stored.into_inner(),
        read_seconds: t.read,
        compress_seconds: t.encode_write,
        decompress_seconds: t.gather,
        threads,
    })
}
