//! Criterion benchmarks of the build's hot kernels at real tile size:
//! npy read, coordinate transform (placement), pixel gather, shard encode.
//! Run: `cargo bench --bench kernels` (figures in target/criterion).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tessera_mosaic::grid::{BandGrid, BandsConfig, Cell, TileGeometry, UtmProjection, UtmZone};
use tessera_mosaic::input::synth::{Landscape, synth_tile};
use tessera_mosaic::placement::{gather, place_cell, place_cell_exact};
use tessera_mosaic::zarr::{
    BandLayout, FORMAT_VERSION, MosaicStore, band_array_metadata, raw_bytes,
};

struct Fixture {
    grid: BandGrid,
    geometry: TileGeometry,
    proj: UtmProjection,
    embeddings: Vec<u8>,
    scales: Vec<f32>,
    npy_path: std::path::PathBuf,
    config: BandsConfig,
}

fn fixture(name: &str) -> Fixture {
    let config = BandsConfig::default();
    let cell = Cell::parse_name(name).unwrap();
    let grid =
        BandGrid::for_band(config.band_of_lat_index(cell.lat_index).unwrap(), &config).unwrap();
    let proj = UtmProjection::new(UtmZone::for_cell(cell)).unwrap();
    let geometry = TileGeometry::with_projection(cell, &proj).unwrap();
    let landscape = Landscape::new(1, 0.8, &[cell]);
    let tile = synth_tile(&landscape, &geometry, &proj, 2024).unwrap();
    let dir = std::env::temp_dir().join("mosaic-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let npy_path = dir.join(format!("{name}.npy"));
    let bytes = bytemuck::cast_slice::<i8, u8>(&tile.embeddings).to_vec();
    tessera_mosaic::input::npy::write_npy(
        &npy_path,
        tessera_mosaic::input::npy::NpyDtype::Int8,
        &[geometry.height, geometry.width, 128],
        &bytes,
    )
    .unwrap();
    Fixture {
        grid,
        geometry,
        proj,
        embeddings: bytes,
        scales: tile.scales,
        npy_path,
        config,
    }
}

fn kernels(c: &mut Criterion) {
    for (label, name) in [("70N", "grid_10.05_70.05"), ("equator", "grid_10.05_0.05")] {
        let f = fixture(name);
        let tile_bytes = f.embeddings.len() as u64;
        let mut group = c.benchmark_group(format!("kernels/{label}"));
        group.sample_size(10);

        group.throughput(Throughput::Bytes(tile_bytes));
        group.bench_function("npy_read", |b| {
            b.iter(|| tessera_mosaic::input::npy::read_npy(&f.npy_path).unwrap())
        });

        let pixels = (f.grid.rows_per_cell * f.grid.cols_per_cell) as u64;
        group.throughput(Throughput::Elements(pixels));
        group.bench_function("placement_fast", |b| {
            b.iter(|| place_cell(&f.grid, &f.geometry, &f.proj).unwrap())
        });
        group.bench_function("placement_exact_proj", |b| {
            b.iter(|| place_cell_exact(&f.grid, &f.geometry, &f.proj).unwrap())
        });

        let map = place_cell(&f.grid, &f.geometry, &f.proj).unwrap();
        group.bench_function("gather", |b| {
            b.iter(|| gather(&map, &f.embeddings, &f.scales, None, 0))
        });

        let (out, _) = gather(&map, &f.embeddings, &f.scales, None, 0);
        let layout = BandLayout {
            format_version: FORMAT_VERSION,
            grid: f.grid.clone(),
            first_year: 2024,
            years: 1,
            compression: f.config.compression.clone(),
            embeddings_fill: 0,
        };
        let meta = band_array_metadata(&layout)
            .into_iter()
            .find(|(n, _)| *n == "embeddings")
            .unwrap()
            .1;
        let array = MosaicStore::in_memory()
            .array_from_metadata("/b/embeddings", &meta)
            .unwrap();
        let (i, j) = f.grid.cell_shard(f.geometry.cell);
        let options = zarrs::array::CodecOptions::default().with_concurrent_target(1);
        group.throughput(Throughput::Bytes(out.len() as u64));
        group.bench_function("shard_encode_zstd3", |b| {
            b.iter(|| {
                array
                    .store_chunk_opt(&[0, i as u64, j as u64, 0], raw_bytes(&out), &options)
                    .unwrap()
            })
        });
        group.finish();
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
