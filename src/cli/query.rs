//! `mosaic query`: a lat/lon box (across band edges) to .npy + JSON, or GeoTIFF.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};

use tessera_mosaic::grid::{BBox, LatRange, LonRange};
use tessera_mosaic::plan::human_bytes;
use tessera_mosaic::query::{QueryPlan, QueryRequest};
use tessera_mosaic::store::count_reads;
use tessera_mosaic::zarr::MosaicStore;

/// Extract a lat/lon box (across band edges) to .npy + JSON, or GeoTIFF.
#[derive(clap::Args)]
pub struct Args {
    /// The store.
    #[arg(long)]
    pub store: String,
    /// Latitude range LO:HI in degrees (pixel centres within it, bounds included).
    #[arg(long, allow_hyphen_values = true)]
    pub lat: LatRange,
    /// Longitude range WEST:EAST in degrees (WEST > EAST crosses the antimeridian).
    #[arg(long, allow_hyphen_values = true)]
    pub lon: LonRange,
    /// One year (default: every year of the store).
    #[arg(long)]
    pub year: Option<u16>,
    /// Write float32 embeddings * scales (NaN = no data) instead of int8 + scales.
    #[arg(long)]
    pub dequantize: bool,
    /// Output file: OUT.npy (+ OUT_scales.npy, OUT.json) or OUT.tif (GeoTIFF, one year, + OUT.json).
    #[arg(short, long)]
    pub out: PathBuf,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let request = QueryRequest {
        bbox: BBox::from_ranges(a.lat, a.lon)?,
        year: a.year,
        dequantize: a.dequantize,
    };
    let store = MosaicStore::open_existing(&a.store)?;
    let (counted, reads) = count_reads(&store.store);
    let plan = QueryPlan::new(&store.with_store(counted), &request)?;
    let ext = a
        .out
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let written = match ext.as_str() {
        "npy" => plan.write_npy(&a.out)?,
        "tif" | "tiff" => plan.write_geotiff(&a.out)?,
        _ => bail!("-o {}: use a .npy or .tif file name", a.out.display()),
    };
    println!(
        "{} years x {} rows x {} cols from {}; read {} in {} requests",
        plan.years.len(),
        plan.rows(),
        plan.cols(),
        plan.row_sources
            .iter()
            .map(|s| s.band.as_str())
            .collect::<Vec<_>>()
            .join(" + "),
        human_bytes(reads.bytes_read() as u64),
        reads.reads(),
    );
    for w in written {
        println!("wrote {}", w.display());
    }
    Ok(ExitCode::SUCCESS)
}
