//! `mosaic build` (write bands, resumable) and the hidden `mosaic ceiling` benchmark.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::shared::{InputArgs, exit_code, load_bands, progress_bar, report_problems, scan};
use tessera_mosaic::build::{self, BuildOptions, BuildReport};
use tessera_mosaic::grid::BandGrid;
use tessera_mosaic::plan::human_bytes;
use tessera_mosaic::store::StoreOptions;
use tessera_mosaic::zarr::MosaicStore;

/// Write bands into a Zarr store, in parallel; rerun to resume.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    /// Output store: a local folder, or an object store URL (s3://bucket/prefix, gs://, az://,
    /// or http(s):// for a WebDAV server) with credentials and endpoint from the usual
    /// environment variables, or --out-option.
    #[arg(long)]
    pub out: String,
    /// A setting of the output's object store, KEY=VALUE (object_store's keys, as
    /// --input-option: aws_endpoint, aws_region, aws_access_key_id, aws_secret_access_key,
    /// aws_allow_http, ...). Repeatable; overrides the environment for the output only.
    #[arg(long = "out-option", value_name = "KEY=VALUE", value_parser = StoreOptions::parse_pair)]
    pub out_options: Vec<(String, String)>,
    /// Build only share I of N (1-based, e.g. 2/8) of the band's cells: N processes with
    /// I = 1..N build the band together, coordinating through the store only.
    #[arg(long, value_parser = parse_worker)]
    pub worker: Option<(usize, usize)>,
    /// Band(s) to build, by name (e.g. 70-80); several are built one after the other.
    #[arg(
        long,
        value_delimiter = ',',
        required = true,
        allow_hyphen_values = true
    )]
    pub band: Vec<String>,
    /// Band configuration (default: ./bands.toml if present, else the built-in 10-degree bands).
    #[arg(long)]
    pub bands: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Only these years, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub years: Vec<u16>,
    /// Landmask folder or landmasks.parquet (a URL for a remote input). Default:
    /// ROOT/landmasks.parquet, else ROOT/global_0.1_degree_tiff_all (or beside a local ROOT).
    #[arg(long)]
    pub landmasks: Option<PathBuf>,
    /// Also write the build report (JSON) here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Build without the overview pyramid and colour statistics (no previews or map from
    /// this band; a store that has them keeps writing them).
    #[arg(long)]
    pub no_overviews: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let config = load_bands(a.bands.as_deref())?;
    let store = MosaicStore::open_with(&a.out, &StoreOptions(a.out_options.clone()))?;
    let source = a.input.source()?;
    let source = source.as_ref();
    let mut all_ok = true;
    for name in &a.band {
        let spec = config.band(name)?;
        let grid = BandGrid::for_band(spec, &config)?;
        let catalogue = scan(
            source,
            a.landmasks.clone(),
            a.years.clone(),
            Some(spec.lat_start_index()..spec.lat_end_index()),
        )?;
        let options = BuildOptions {
            threads: a.threads,
            worker: a.worker,
            compression: config.compression.clone(),
            embeddings_fill: config.embeddings_fill,
            overviews: !a.no_overviews,
        };
        let bar = progress_bar(0, &format!("build {name}: tiles"));
        let fetched_before = source.bytes_fetched();
        let report = build::build_band(source, &catalogue, &store, &grid, &options, &bar)?;
        bar.finish_and_clear();
        print_build_report(&report);
        if let (Some(before), Some(after)) = (fetched_before, source.bytes_fetched()) {
            // Fetched against the distinct bytes fetched (each source byte once): the read
            // amplification; and against the windows' raw bytes (int8 vectors, float32 scales).
            let (fetched, distinct) = (after.0 - before.0, after.1 - before.1);
            println!(
                "band {name}: fetched {} from the store, {} of it distinct ({:.3} x), for {} of source windows",
                human_bytes(fetched),
                human_bytes(distinct),
                fetched as f64 / distinct.max(1) as f64,
                human_bytes(report.bytes_read),
            );
        }
        let text = serde_json::to_string_pretty(&report)?;
        if let Some(path) = &a.report {
            let path = if a.band.len() > 1 {
                path.with_extension(format!("{name}.json"))
            } else {
                path.clone()
            };
            std::fs::write(&path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        all_ok &= report.ok();
    }
    Ok(exit_code(all_ok))
}

fn print_build_report(r: &BuildReport) {
    let mb = r.bytes_read as f64 / 1e6;
    println!(
        "band {}: {} tiles written, {} already present, {} failed, {} without data (no pixel of the cell has data); read {} in {:.1} s ({:.1} MB/s, {:.2} tiles/s); {:.4}% of pixels placed by the exact fallback",
        r.band,
        r.tiles_written,
        r.tiles_skipped,
        r.failed.len(),
        r.no_data.len(),
        human_bytes(r.bytes_read),
        r.seconds,
        mb / r.seconds.max(1e-9),
        r.tiles_written as f64 / r.seconds.max(1e-9),
        100.0 * r.exact_fallbacks as f64 / (r.pixels_placed.max(1)) as f64,
    );
    let t = &r.thread_seconds;
    tracing::info!(
        "thread time: read {:.1} s, transform {:.1} s, gather {:.1} s, encode+write {:.1} s",
        t.read,
        t.transform,
        t.gather,
        t.encode_write
    );
    report_problems(&r.input_problems);
    if !r.failed.is_empty() {
        eprintln!(
            "{} tiles failed (not written; rerun after fixing them):",
            r.failed.len()
        );
        for p in &r.failed {
            eprintln!("  {p}");
        }
    }
}

/// Benchmark helper: read a band's tiles and compress as many output bytes, no reprojection.
#[derive(clap::Args)]
pub struct CeilingArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// The band.
    #[arg(long, allow_hyphen_values = true)]
    band: String,
    /// Band configuration.
    #[arg(long)]
    bands: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run_ceiling(a: CeilingArgs) -> Result<ExitCode> {
    let config = load_bands(a.bands.as_deref())?;
    let spec = config.band(&a.band)?;
    let grid = BandGrid::for_band(spec, &config)?;
    let source = a.input.source()?;
    let source = source.as_ref();
    let catalogue = scan(
        source,
        None,
        vec![],
        Some(spec.lat_start_index()..spec.lat_end_index()),
    )?;
    let options = BuildOptions {
        threads: a.threads,
        worker: None,
        compression: config.compression.clone(),
        embeddings_fill: config.embeddings_fill,
        overviews: false,
    };
    let bar = progress_bar(0, "ceiling: tiles");
    let c = build::ceiling(source, &catalogue, &grid, &options, &bar)?;
    bar.finish_and_clear();
    if a.json {
        let mut v = serde_json::to_value(&c)?;
        v["compression"] = serde_json::to_value(&config.compression)?;
        v["input_mb_per_s"] = c.input_mb_per_s().into();
        v["decode_mb_per_s"] = c.decode_mb_per_s().into();
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "ceiling {} ({:?}, {} threads): read {:.1} s + compress {:.1} s (thread-seconds) for {} in, {} out, {} stored (stored/out {:.3}, stored/in {:.3}); decode {:.0} MB/s per thread; read+compress = {:.1} MB/s",
        a.band,
        config.compression,
        c.threads,
        c.read_seconds,
        c.compress_seconds,
        human_bytes(c.input_bytes),
        human_bytes(c.output_bytes),
        human_bytes(c.stored_bytes),
        c.stored_bytes as f64 / c.output_bytes.max(1) as f64,
        c.stored_bytes as f64 / c.input_bytes.max(1) as f64,
        c.decode_mb_per_s(),
        c.input_mb_per_s()
    );
    Ok(ExitCode::SUCCESS)
}

/// Parse `I/N` (1-based) into a 0-based share.
pub(crate) fn parse_worker(text: &str) -> Result<(usize, usize), String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}`: expected I/N, e.g. 2/8"))?;
    let (i, n): (usize, usize) = (
        i.trim()
            .parse()
            .map_err(|_| format!("`{text}`: I is not a number"))?,
        n.trim()
            .parse()
            .map_err(|_| format!("`{text}`: N is not a number"))?,
    );
    if n == 0 || i == 0 || i > n {
        return Err(format!("`{text}`: need 1 <= I <= N"));
    }
    Ok((i - 1, n))
}
