//! `mosaic sample`: embeddings at points (CSV or GeoParquet) to Parquet or CSV.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, bail};

use tessera_mosaic::plan::human_bytes;
use tessera_mosaic::sample::{self, DEFAULT_BATCH, SampleRequest};
use tessera_mosaic::store::count_reads;
use tessera_mosaic::zarr::MosaicStore;

use super::shared::progress_bar;

/// Embeddings at points (CSV or GeoParquet) to Parquet or CSV, for training data.
#[derive(clap::Args)]
pub struct Args {
    /// The store (local folder or object-store URL).
    #[arg(long)]
    pub store: String,
    /// Points: a .csv file, or Parquet with lon/lat columns or GeoParquet point geometry.
    #[arg(long)]
    pub points: PathBuf,
    /// Years to sample, e.g. 2023,2024 (default: every year of the store).
    #[arg(long, value_delimiter = ',')]
    pub years: Option<Vec<u16>>,
    /// Write float32 embeddings * scale instead of int8 (and the scale).
    #[arg(long)]
    pub dequantize: bool,
    /// Longitude column.
    #[arg(long, default_value = "lon")]
    pub lon_col: String,
    /// Latitude column.
    #[arg(long, default_value = "lat")]
    pub lat_col: String,
    /// Points read, sampled and written at a time (bounds memory).
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    pub batch: usize,
    /// Output: Parquet, or CSV (columns e0..e127) when it ends in .csv.
    #[arg(short, long)]
    pub out: PathBuf,
}

pub fn run(a: Args) -> Result<ExitCode> {
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let started = Instant::now();
    let store = MosaicStore::open_existing(&a.store)?;
    let (counted, reads) = count_reads(&store.store);
    let request = SampleRequest {
        points: a.points,
        lon_col: a.lon_col,
        lat_col: a.lat_col,
        years: a.years,
        dequantize: a.dequantize,
        out: a.out.clone(),
        batch: a.batch,
    };
    let bar = progress_bar(0, "points");
    let summary = sample::sample(&store.with_store(counted), &request, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    let summary = summary?;
    if !summary.dropped.is_empty() {
        eprintln!(
            "columns not carried (only flat, non-INT96 columns are): {}",
            summary.dropped.join(", ")
        );
    }
    println!(
        "{} points x {} years ({}): {} sampled, {} points outside every band, {} on no data; {} inner chunks read, {} in {} requests, {:.2} s",
        summary.points,
        summary.years.len(),
        summary
            .years
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(","),
        summary.sampled,
        summary.outside,
        summary.no_data,
        summary.chunks_read,
        human_bytes(reads.bytes_read() as u64),
        reads.reads(),
        started.elapsed().as_secs_f64(),
    );
    println!("wrote {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}
