//! `mosaic`: the command-line interface of tessera-mosaic.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tracing::{info, warn};

use tessera_mosaic::bands::BandsConfig;
use tessera_mosaic::cell::Cell;
use tessera_mosaic::grid::BandGrid;
use tessera_mosaic::plan::{self, human_bytes};
use tessera_mosaic::preview::{self, BBox};
use tessera_mosaic::query::{self, QueryPlan, QueryRequest};
use tessera_mosaic::status;
use tessera_mosaic::store::{ReadCounter, Store};
use tessera_mosaic::synth::{self, SynthOptions};
use tessera_mosaic::tiles::{Catalogue, ScanOptions};
use tessera_mosaic::verify::{self, Coverage};
use tessera_mosaic::writer::{self, BuildOptions, BuildReport};

/// Restructure TESSERA embedding tiles into analysis-ready Zarr, one lat/lon array per band.
#[derive(Parser)]
#[command(name = "mosaic", version, about, long_about = None)]
struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a synthetic TESSERA tree with the real tile geometry and realistic content.
    Synth(SynthArgs),
    /// Scan tiles, group them into bands, and report shapes and costs.
    Plan(PlanArgs),
    /// Write bands into a Zarr store, in parallel; rerun to resume.
    Build(BuildArgs),
    /// Check a built band against its input, independently of the writer.
    Verify(VerifyArgs),
    /// Extract a lat/lon box (across band edges) to .npy + JSON, or GeoTIFF.
    Query(QueryArgs),
    /// Render a band as a PNG: PCA of the embeddings to RGB, or a coverage map.
    Preview(PreviewArgs),
    /// Write a static STAC catalog of a store and an HTML map beside it.
    Stac(StacArgs),
    /// Per band and year: cells built, failed and (with --input) missing.
    Status(StatusArgs),
    /// Benchmark helper: read a band's tiles and compress as many output bytes, no reprojection.
    #[command(hide = true)]
    Ceiling(CeilingArgs),
}

#[derive(clap::Args)]
struct StatusArgs {
    /// The store.
    #[arg(long)]
    store: String,
    /// The TESSERA root, to count input tiles not built yet.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct CeilingArgs {
    /// The TESSERA root.
    #[arg(long)]
    input: PathBuf,
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

#[derive(clap::Args)]
struct PreviewArgs {
    /// The store.
    #[arg(long)]
    store: String,
    /// The band.
    #[arg(long, allow_hyphen_values = true)]
    band: String,
    /// Year (default: the latest with data).
    #[arg(long)]
    year: Option<u16>,
    /// Box LON0,LAT0,LON1,LAT1 (default: the cells present).
    #[arg(long, allow_hyphen_values = true)]
    bbox: Option<String>,
    /// Maximum image width in pixels.
    #[arg(long, default_value_t = 1024)]
    width: usize,
    /// Draw which cells are present per year instead of the embeddings.
    #[arg(long)]
    coverage: bool,
    /// Output PNG.
    #[arg(short, long)]
    out: PathBuf,
}

#[derive(clap::Args)]
struct QueryArgs {
    /// The store.
    #[arg(long)]
    store: String,
    /// Latitude range LO:HI in degrees (pixel centres within it, bounds included).
    #[arg(long, allow_hyphen_values = true)]
    lat: String,
    /// Longitude range LO:HI in degrees.
    #[arg(long, allow_hyphen_values = true)]
    lon: String,
    /// One year (default: every year of the store).
    #[arg(long)]
    year: Option<u16>,
    /// Write float32 embeddings * scales (NaN = no data) instead of int8 + scales.
    #[arg(long)]
    dequantize: bool,
    /// Output file: OUT.npy (+ OUT_scales.npy, OUT.json) or OUT.tif (GeoTIFF, one year, + OUT.json).
    #[arg(short, long)]
    out: PathBuf,
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The TESSERA root the band was built from.
    #[arg(long)]
    input: PathBuf,
    /// The store.
    #[arg(long)]
    store: String,
    /// The band to check.
    #[arg(long, allow_hyphen_values = true)]
    band: String,
    /// Random output pixels to check per tile.
    #[arg(long, default_value_t = 2000, conflicts_with = "full")]
    sample: usize,
    /// Check every output pixel.
    #[arg(long)]
    full: bool,
    /// Only these years, comma-separated.
    #[arg(long, value_delimiter = ',')]
    years: Vec<u16>,
    /// Landmask folder (default: ROOT/global_0.1_degree_tiff_all or beside ROOT).
    #[arg(long)]
    landmasks: Option<PathBuf>,
    /// Also write the summary as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(clap::Args)]
struct BuildArgs {
    /// The TESSERA root (`ROOT/{year}/grid_*/...`).
    #[arg(long)]
    input: PathBuf,
    /// Output store: a local folder, or an object store URL (s3://bucket/prefix, gs://, az://)
    /// with credentials and endpoint from the usual environment variables.
    #[arg(long)]
    out: String,
    /// Build only share I of N (1-based, e.g. 2/8) of the band's cells: N processes with
    /// I = 1..N build the band together, coordinating through the store only.
    #[arg(long, value_parser = parse_worker)]
    worker: Option<(usize, usize)>,
    /// Band(s) to build, by name (e.g. 70-80); several are built one after the other.
    #[arg(
        long,
        value_delimiter = ',',
        required = true,
        allow_hyphen_values = true
    )]
    band: Vec<String>,
    /// Band configuration (default: ./bands.toml if present, else the built-in 10-degree bands).
    #[arg(long)]
    bands: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Only these years, comma-separated.
    #[arg(long, value_delimiter = ',')]
    years: Vec<u16>,
    /// Landmask folder (default: ROOT/global_0.1_degree_tiff_all or beside ROOT).
    #[arg(long)]
    landmasks: Option<PathBuf>,
    /// Also write the build report (JSON) here.
    #[arg(long)]
    report: Option<PathBuf>,
}

#[derive(clap::Args)]
struct SynthArgs {
    /// Output folder (the TESSERA root).
    #[arg(long)]
    out: PathBuf,
    /// Cells whose centres lie in LON0,LAT0,LON1,LAT1 (LON0 > LON1 crosses the antimeridian).
    #[arg(
        long,
        allow_hyphen_values = true,
        conflicts_with = "tiles",
        required_unless_present = "tiles"
    )]
    bbox: Option<String>,
    /// Explicit tile names, comma-separated (each gets a tile even if all water).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    tiles: Vec<String>,
    /// Years, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    years: Vec<u16>,
    /// Seed of the content.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Approximate fraction of land pixels; cells with no land get no tile (sea).
    #[arg(long, default_value_t = 0.7)]
    land_fraction: f64,
    /// Also write landmask GeoTIFFs (0 = water) in ROOT/global_0.1_degree_tiff_all.
    #[arg(long)]
    landmasks: bool,
}

#[derive(clap::Args)]
struct PlanArgs {
    /// The TESSERA root (`ROOT/{year}/grid_*/...`).
    #[arg(long)]
    input: PathBuf,
    /// Band configuration (default: ./bands.toml if present, else the built-in 10-degree bands).
    #[arg(long)]
    bands: Option<PathBuf>,
    /// Also write the plan as JSON here (for `build --plan`).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Propose band edges keeping the stretch at or under S, printed as bands.toml.
    #[arg(long)]
    max_stretch: Option<f64>,
    /// Landmask folder (default: ROOT/global_0.1_degree_tiff_all or beside ROOT).
    #[arg(long)]
    landmasks: Option<PathBuf>,
    /// Only these years, comma-separated.
    #[arg(long, value_delimiter = ',')]
    years: Vec<u16>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Synth(a) => run_synth(a),
        Command::Plan(a) => run_plan(a),
        Command::Build(a) => run_build(a),
        Command::Verify(a) => run_verify(a),
        Command::Query(a) => run_query(a),
        Command::Preview(a) => run_preview(a),
        Command::Ceiling(a) => run_ceiling(a),
        Command::Stac(a) => run_stac(a),
        Command::Status(a) => run_status(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} {{pos}}/{{len}} [{{elapsed_precise}}] {{bar:30}} {{per_sec}} ETA {{eta}} {{msg}}"
        ))
        .expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The band configuration: explicit path, ./bands.toml, or the default.
fn load_bands(path: Option<&Path>) -> Result<BandsConfig> {
    match path {
        Some(p) => Ok(BandsConfig::load(p)?),
        None if Path::new("bands.toml").exists() => Ok(BandsConfig::load(Path::new("bands.toml"))?),
        None => Ok(BandsConfig::default()),
    }
}

/// Parse `I/N` (1-based) into a 0-based share.
fn parse_worker(text: &str) -> Result<(usize, usize), String> {
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

fn parse_bbox(text: &str) -> Result<[f64; 4]> {
    let parts: Vec<f64> = text
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("--bbox {text}: expected four numbers LON0,LAT0,LON1,LAT1"))?;
    let [lon0, lat0, lon1, lat1] = parts[..] else {
        bail!("--bbox {text}: expected four numbers LON0,LAT0,LON1,LAT1");
    };
    if !(-180.0..=180.0).contains(&lon0) || !(-180.0..=180.0).contains(&lon1) {
        bail!("--bbox {text}: longitudes must be within -180..180");
    }
    if !(-90.0..=90.0).contains(&lat0) || !(-90.0..=90.0).contains(&lat1) || lat0 > lat1 {
        bail!("--bbox {text}: latitudes must be within -90..90 with LAT0 <= LAT1");
    }
    Ok([lon0, lat0, lon1, lat1])
}

fn run_synth(a: SynthArgs) -> Result<std::process::ExitCode> {
    let (cells, keep_water_cells) = match &a.bbox {
        Some(b) => {
            let [lon0, lat0, lon1, lat1] = parse_bbox(b)?;
            (synth::cells_in_bbox(lon0, lat0, lon1, lat1), false)
        }
        None => {
            let cells = a
                .tiles
                .iter()
                .map(|t| {
                    Cell::parse_name(t)
                        .with_context(|| format!("--tiles: `{t}` is not a tile name"))
                })
                .collect::<Result<Vec<_>>>()?;
            (cells, true)
        }
    };
    if cells.is_empty() {
        bail!("no cells selected: the bbox holds no 0.1-degree cell centre");
    }
    let options = SynthOptions {
        out: a.out.clone(),
        cells,
        keep_water_cells,
        years: a.years.clone(),
        seed: a.seed,
        land_fraction: a.land_fraction,
        landmasks: a.landmasks,
    };
    let bar = progress_bar(
        (options.cells.len() * options.years.len()) as u64,
        "synth tiles",
    );
    let summary = synth::synthesize(&options, &|_| bar.inc(1))?;
    bar.finish_and_clear();
    println!(
        "wrote {} tiles ({} cells x {} years, {}) to {}; {} candidate cells were all sea",
        summary.tiles,
        summary.cells,
        options.years.len(),
        human_bytes(summary.bytes),
        a.out.display(),
        summary.water_cells
    );
    Ok(std::process::ExitCode::SUCCESS)
}

fn scan(input: &Path, landmasks: Option<PathBuf>, years: Vec<u16>) -> Result<Catalogue> {
    scan_lat_range(input, landmasks, years, None)
}

fn scan_lat_range(
    input: &Path,
    landmasks: Option<PathBuf>,
    years: Vec<u16>,
    lat_index_range: Option<std::ops::Range<u16>>,
) -> Result<Catalogue> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} scanning tiles: {pos} [{elapsed_precise}] {per_sec}",
        )
        .expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let catalogue = Catalogue::scan(
        input,
        &ScanOptions {
            landmasks,
            years,
            lat_index_range,
            progress: Some(bar.clone()),
        },
    )?;
    bar.finish_and_clear();
    info!(
        tiles = catalogue.tile_count(),
        problems = catalogue.problems.len(),
        "scanned {}",
        input.display()
    );
    Ok(catalogue)
}

fn run_plan(a: PlanArgs) -> Result<std::process::ExitCode> {
    let config = load_bands(a.bands.as_deref())?;
    let catalogue = scan(&a.input, a.landmasks, a.years)?;
    if catalogue.tile_count() == 0 {
        warn!("no valid tiles under {}", a.input.display());
    }
    let ratio = tessera_mosaic::codec::sample_compression_ratio(&catalogue, &config.compression)?;
    let plan = plan::plan(&catalogue, &config, ratio)?;
    println!(
        "{}: {} tiles in {} years ({}), {} cells, {} problems",
        a.input.display(),
        catalogue.tile_count(),
        plan.years.len(),
        plan.years
            .iter()
            .map(|y| y.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        catalogue.geometry.len(),
        catalogue.problems.len()
    );
    println!();
    print!("{}", plan.table());
    println!();
    println!(
        "compression: {:?}, stored/raw {:.3} measured on sample tiles",
        config.compression, ratio
    );
    if plan.tiles_outside_bands > 0 {
        println!(
            "{} tiles lie outside every configured band",
            plan.tiles_outside_bands
        );
    }
    report_problems(&catalogue.problems);
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&plan)?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("plan written to {}", path.display());
    }
    if let Some(s) = a.max_stretch {
        if s.is_nan() || s < 1.0 {
            bail!("--max-stretch {s}: must be at least 1");
        }
        let (bands, warnings) = plan::propose_bands(&catalogue, &config, s)?;
        for w in warnings {
            warn!("{w}");
        }
        let proposal = BandsConfig { bands, ..config };
        println!(
            "\n# proposed bands.toml for --max-stretch {s}\n{}",
            proposal.to_toml()
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Print input problems (the first 20; all are in the JSON plan).
fn report_problems(problems: &[tessera_mosaic::tiles::TileProblem]) {
    if problems.is_empty() {
        return;
    }
    eprintln!("{} input problems (skipped):", problems.len());
    for p in problems.iter().take(20) {
        eprintln!("  {p}");
    }
    if problems.len() > 20 {
        eprintln!("  ... and {} more (see --json)", problems.len() - 20);
    }
}

fn run_build(a: BuildArgs) -> Result<std::process::ExitCode> {
    let config = load_bands(a.bands.as_deref())?;
    let store = Store::open(&a.out)?;
    let mut all_ok = true;
    for name in &a.band {
        let spec = config.band(name)?;
        let grid = BandGrid::for_band(spec, &config)?;
        let catalogue = scan_lat_range(
            &a.input,
            a.landmasks.clone(),
            a.years.clone(),
            Some(spec.lat_start_index()..spec.lat_end_index()),
        )?;
        let options = BuildOptions {
            threads: a.threads,
            worker: a.worker,
            compression: config.compression.clone(),
            embeddings_fill: config.embeddings_fill,
        };
        let bar = progress_bar(0, &format!("build {name}: tiles"));
        let report = writer::build_band(&catalogue, &store, &grid, &options, &bar)?;
        bar.finish_and_clear();
        print_build_report(&report);
        store.put_json(&report.failures_key(), &report.failures_record())?;
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
    Ok(if all_ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

fn print_build_report(r: &BuildReport) {
    let mb = r.bytes_read as f64 / 1e6;
    println!(
        "band {}: {} tiles written, {} already present, {} failed; read {} in {:.1} s ({:.1} MB/s, {:.2} tiles/s); {:.4}% of pixels placed by the exact fallback",
        r.band,
        r.tiles_written,
        r.tiles_skipped,
        r.failed.len(),
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

fn run_verify(a: VerifyArgs) -> Result<std::process::ExitCode> {
    let store = Store::open(&a.store)?;
    let layout = store
        .band_layout(&a.band)?
        .with_context(|| format!("band {} is not in {}", a.band, a.store))?;
    let catalogue = scan_lat_range(
        &a.input,
        a.landmasks.clone(),
        a.years.clone(),
        Some(layout.grid.lat_start_index..layout.grid.lat_end_index),
    )?;
    let coverage = if a.full {
        Coverage::Full
    } else {
        Coverage::Sample(a.sample)
    };
    let bar = progress_bar(0, &format!("verify {}: tiles", a.band));
    let s = verify::verify_band(&catalogue, &store, &a.band, coverage, &bar)?;
    bar.finish_and_clear();
    println!(
        "band {}: {} tiles, {} pixels checked ({} with data): {} mismatches, {} tiles missing, {} unexpected shards, {} unreadable",
        s.band,
        s.tiles_checked,
        s.pixels_checked,
        s.data_pixels,
        s.mismatch_count,
        s.missing_tiles.len(),
        s.unexpected_shards.len(),
        s.errors.len()
    );
    for m in &s.mismatches {
        println!(
            "  mismatch {} {} row {} col {} (lat {:.7}, lon {:.7}): {}",
            m.year, m.tile, m.row, m.col, m.lat, m.lon, m.detail
        );
    }
    for t in &s.missing_tiles {
        println!("  missing from the store: {t}");
    }
    for k in &s.unexpected_shards {
        println!("  shard without an input tile: {k}");
    }
    for e in &s.errors {
        println!("  error: {e}");
    }
    report_problems(&catalogue.problems);
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&s)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "{}",
        if s.ok() {
            "OK: the band matches its input"
        } else {
            "FAILED"
        }
    );
    Ok(if s.ok() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    })
}

fn run_query(a: QueryArgs) -> Result<std::process::ExitCode> {
    let request = QueryRequest {
        lat: query::parse_range(&a.lat, "lat", 90.0)?,
        lon: query::parse_range(&a.lon, "lon", 180.0)?,
        year: a.year,
        dequantize: a.dequantize,
    };
    let store = Store::open_existing(&a.store)?;
    let (counted, counter) = ReadCounter::wrap(&store);
    let plan = QueryPlan::new(&counted, &request)?;
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
        human_bytes(counter.bytes.load(std::sync::atomic::Ordering::Relaxed)),
        counter.requests.load(std::sync::atomic::Ordering::Relaxed),
    );
    for w in written {
        println!("wrote {}", w.display());
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn run_preview(a: PreviewArgs) -> Result<std::process::ExitCode> {
    let store = Store::open_existing(&a.store)?;
    let bbox = match &a.bbox {
        Some(b) => {
            let [lon0, lat0, lon1, lat1] = parse_bbox(b)?;
            if lon0 >= lon1 {
                bail!("--bbox {b}: LON0 must be less than LON1");
            }
            Some(BBox {
                lon0,
                lat0,
                lon1,
                lat1,
            })
        }
        None => None,
    };
    let start = std::time::Instant::now();
    if a.coverage {
        let (image, years, b) = preview::render_coverage(&store, &a.band, bbox)?;
        image.write_png(&a.out)?;
        println!(
            "coverage of {} over lon {:.1}..{:.1}, lat {:.1}..{:.1}: one panel per year, top to bottom {:?}; {} x {} px -> {}",
            a.band,
            b.lon0,
            b.lon1,
            b.lat0,
            b.lat1,
            years,
            image.width,
            image.height,
            a.out.display()
        );
    } else {
        let (image, year, b) =
            preview::render_embeddings(&store, &a.band, a.year, bbox, a.width.max(1))?;
        image.write_png(&a.out)?;
        println!(
            "{} {year}, lon {:.3}..{:.3}, lat {:.3}..{:.3}: PCA of 128 channels as RGB, no data transparent; {} x {} px in {:.1} s -> {}",
            a.band,
            b.lon0,
            b.lon1,
            b.lat0,
            b.lat1,
            image.width,
            image.height,
            start.elapsed().as_secs_f64(),
            a.out.display()
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn run_ceiling(a: CeilingArgs) -> Result<std::process::ExitCode> {
    let config = load_bands(a.bands.as_deref())?;
    let spec = config.band(&a.band)?;
    let grid = BandGrid::for_band(spec, &config)?;
    let catalogue = scan_lat_range(
        &a.input,
        None,
        vec![],
        Some(spec.lat_start_index()..spec.lat_end_index()),
    )?;
    let options = BuildOptions {
        threads: a.threads,
        worker: None,
        compression: config.compression.clone(),
        embeddings_fill: config.embeddings_fill,
    };
    let bar = progress_bar(0, "ceiling: tiles");
    let c = writer::ceiling(&catalogue, &grid, &options, &bar)?;
    bar.finish_and_clear();
    if a.json {
        let mut v = serde_json::to_value(&c)?;
        v["compression"] = serde_json::to_value(&config.compression)?;
        v["input_mb_per_s"] = c.input_mb_per_s().into();
        v["decode_mb_per_s"] = c.decode_mb_per_s().into();
        println!("{v}");
        return Ok(std::process::ExitCode::SUCCESS);
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
    Ok(std::process::ExitCode::SUCCESS)
}

#[derive(clap::Args)]
struct StacArgs {
    /// The store (a local folder).
    #[arg(long)]
    store: String,
    /// Output folder: catalog.json, one folder per year, and the map (index.html).
    #[arg(long)]
    out: PathBuf,
    /// URL of the store for asset hrefs (`URL/{band}`); default: paths relative to each item.
    #[arg(long)]
    href_base: Option<String>,
    /// Leaflet's package or dist folder (default: node_modules/leaflet here or above).
    #[arg(long)]
    leaflet: Option<PathBuf>,
    /// Write the catalog only, no map.
    #[arg(long, conflicts_with = "leaflet")]
    no_map: bool,
    /// Maximum width and height in pixels of each preview image (one per band, year and
    /// 10-degree block of longitude).
    #[arg(long, default_value_t = 512)]
    preview_size: usize,
    /// No previews for a band-year with more cells than this (previews read data per cell).
    #[arg(long, default_value_t = 2000)]
    max_preview_cells: usize,
}

fn run_stac(a: StacArgs) -> Result<std::process::ExitCode> {
    use tessera_mosaic::stac::{self, AssetHref, MapOptions, StacOptions};
    let start = std::time::Instant::now();
    let store = Store::open_existing(&a.store)?;
    let href = match &a.href_base {
        Some(url) => AssetHref::Base(url.clone()),
        None => {
            if a.store.contains("://") && !a.store.starts_with("file://") {
                bail!(
                    "--store {} is a URL: pass --href-base for the asset hrefs",
                    a.store
                );
            }
            let path = Path::new(a.store.trim_start_matches("file://"));
            AssetHref::Relative(
                std::fs::canonicalize(path)
                    .with_context(|| format!("cannot resolve {}", path.display()))?,
            )
        }
    };
    let map = if a.no_map {
        None
    } else {
        let dir = match &a.leaflet {
            Some(d) => d.clone(),
            None => {
                let cwd = std::env::current_dir().context("no current directory")?;
                stac::find_leaflet(&cwd).with_context(|| {
                    format!(
                        "Leaflet not found under node_modules in {} or above: run `npm ci` in the repository (scripts/setup.sh does), pass --leaflet DIR, or --no-map",
                        cwd.display()
                    )
                })?
            }
        };
        Some(MapOptions {
            leaflet_dist: stac::leaflet_dist(&dir)?,
            preview_size: a.preview_size,
            max_preview_cells: a.max_preview_cells,
        })
    };
    let options = StacOptions {
        out: a.out.clone(),
        href,
        map,
    };
    let s = stac::write_stac(&store, &options)
        .with_context(|| format!("writing the STAC catalog of {}", a.store))?;
    println!(
        "catalog {}: {} collections (years {}), {} items, {} cells; footprints in {:.2} s",
        a.out.join("catalog.json").display(),
        s.years.len(),
        s.years
            .iter()
            .map(|y| y.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        s.items,
        s.cells,
        s.footprint_seconds
    );
    if let Some(page) = &s.map {
        println!("map {}: {} previews", page.display(), s.previews);
    }
    for skipped in &s.skipped_previews {
        println!("  no previews for {skipped}");
    }
    println!("done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(std::process::ExitCode::SUCCESS)
}

fn run_status(a: StatusArgs) -> Result<std::process::ExitCode> {
    let store = Store::open_existing(&a.store)?;
    let catalogue = match &a.input {
        Some(root) => Some(scan(root, None, vec![])?),
        None => None,
    };
    let bands = status::status(&store, catalogue.as_ref())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&bands)?);
        return Ok(std::process::ExitCode::SUCCESS);
    }
    println!(
        "{:<10} {:>6} {:>8} {:>8} {:>8}",
        "band", "year", "built", "failed", "missing"
    );
    for b in &bands {
        for y in &b.years {
            let missing = y.missing.map_or("-".to_string(), |m| m.to_string());
            println!(
                "{:<10} {:>6} {:>8} {:>8} {:>8}",
                b.band, y.year, y.built, y.failed, missing
            );
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
