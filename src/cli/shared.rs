//! What several commands share: progress bars, the band configuration, scanning an input,
//! printing input problems, exit codes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;

use tessera_mosaic::grid::BandsConfig;
use tessera_mosaic::input::{
    Catalogue, DatasetRequest, LocalTree, RemoteTree, ScanOptions, TileProblem, TileSource,
    ZoneStore,
};
use tessera_mosaic::store::{RequestLimits, StoreOptions, is_url, object_store_at};

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
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
pub fn load_bands(path: Option<&Path>) -> Result<BandsConfig> {
    match path {
        Some(p) => Ok(BandsConfig::load(p)?),
        None if Path::new("bands.toml").exists() => Ok(BandsConfig::load(Path::new("bands.toml"))?),
        None => Ok(BandsConfig::default()),
    }
}

/// Where the tiles are: the options of every command that reads them.
#[derive(clap::Args, Clone, Debug)]
pub struct InputArgs {
    /// The TESSERA root (`ROOT/{year}/grid_*/...`): a folder, or an s3://, gs://, az:// or
    /// http(s):// URL (credentials and endpoint from the usual environment variables, or
    /// --input-option).
    #[arg(long)]
    pub input: String,
    /// Catalogue from this manifest (path or URL) instead of ROOT/manifest.parquet or a scan.
    #[arg(long)]
    pub manifest: Option<String>,
    /// The manifest rows to use, as geotessera's Registry chooses them: `v1` (= 1.0), `v1.1`,
    /// ... Default: the dataset the input folder names (`.../npy/v1` is 1.0, `v1.1-cam` is 1.1
    /// cambridge), else geotessera's default, 1.1.
    #[arg(long)]
    pub dataset_version: Option<String>,
    /// The manifest rows' variant. Default: the one the input folder names, else the version's
    /// default (1.0: vultr, 1.1: cambridge, 2.0: 2B-L~beta1).
    #[arg(long)]
    pub variant: Option<String>,
    /// A setting of the object store the input (and landmasks) are read from, KEY=VALUE, with
    /// object_store's keys: aws_endpoint, aws_region, aws_skip_signature=true (anonymous),
    /// aws_access_key_id, aws_secret_access_key, aws_allow_http, ... Repeatable; overrides
    /// the AWS_* (GOOGLE_*, AZURE_*) environment for the input only.
    #[arg(long = "input-option", value_name = "KEY=VALUE", value_parser = StoreOptions::parse_pair)]
    pub input_options: Vec<(String, String)>,
    /// A setting of the object store the landmasks are read from, KEY=VALUE as for
    /// --input-option, when they live apart from the tiles (another endpoint, other
    /// credentials). Default: the input's settings.
    #[arg(long = "landmasks-option", value_name = "KEY=VALUE", value_parser = StoreOptions::parse_pair)]
    pub landmasks_options: Vec<(String, String)>,
    /// Deadline of each remote request, in seconds.
    #[arg(long, default_value_t = 300)]
    pub read_timeout: u64,
    /// Retries of a failed remote request (with backoff).
    #[arg(long, default_value_t = 3)]
    pub read_retries: usize,
    /// Decoded source chunks kept for reuse when the input is a zone store, in MB: the chunks
    /// along a cell's edges serve its neighbours too (TESSERA's global store: 8.4 MB each).
    #[arg(long, default_value_t = 2048)]
    pub zone_cache_mb: usize,
}

impl InputArgs {
    /// The tile source these options name.
    pub fn source(&self) -> Result<Box<dyn TileSource>> {
        tile_source(
            &self.input,
            self.manifest.clone(),
            self.limits(),
            DatasetRequest {
                version: self.dataset_version.clone(),
                variant: self.variant.clone(),
            },
            StoreOptions(self.input_options.clone()),
            (!self.landmasks_options.is_empty())
                .then(|| StoreOptions(self.landmasks_options.clone())),
            self.zone_cache_mb << 20,
        )
    }

    fn limits(&self) -> RequestLimits {
        RequestLimits {
            timeout: Duration::from_secs(self.read_timeout.max(1)),
            retries: self.read_retries,
        }
    }
}

/// The tile source of an input location: a local folder or an object store URL, holding a
/// TESSERA tree, or a Zarr hierarchy of UTM-zone groups (TESSERA's global store: a root
/// `zarr.json`; looked for only when no manifest is given).
pub fn tile_source(
    input: &str,
    manifest: Option<String>,
    limits: RequestLimits,
    dataset: DatasetRequest,
    options: StoreOptions,
    landmask_options: Option<StoreOptions>,
    zone_cache_bytes: usize,
) -> Result<Box<dyn TileSource>> {
    if manifest.is_none() && (is_url(input) || ZoneStore::is_local_zarr(input)) {
        match ZoneStore::open(input, &options, zone_cache_bytes) {
            Ok(zones) => return Ok(Box::new(zones)),
            Err(e) if !is_url(input) => {
                return Err(e).with_context(|| format!("--input {input}"));
            }
            // A URL without a root zarr.json is a tree.
            Err(_) => {}
        }
    }
    if is_url(input) {
        // A misspelt or misplaced option is an error now, not a failure of every read.
        object_store_at(input, limits, &options)
            .with_context(|| format!("--input {input} with --input-option"))?;
        let mut tree = RemoteTree::new(input, manifest, limits)
            .with_dataset(dataset)
            .with_options(options);
        if let Some(landmask_options) = landmask_options {
            tree = tree.with_landmask_options(landmask_options);
        }
        Ok(Box::new(tree))
    } else {
        if !options.is_empty() || landmask_options.is_some() {
            bail!(
                "--input-option and --landmasks-option apply to an object store input, not to the folder {input}"
            );
        }
        let root = Path::new(input.trim_start_matches("file://"));
        Ok(Box::new(
            LocalTree::new(root)
                .with_manifest(manifest.map(PathBuf::from))
                .with_dataset(dataset),
        ))
    }
}

/// Catalogue an input (optionally only latitude cells in `lat_index_range`), with a spinner.
pub fn scan(
    source: &dyn TileSource,
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
    let catalogue = source.catalogue(&ScanOptions {
        landmasks,
        years,
        lat_index_range,
        progress: Some(bar.clone()),
    })?;
    bar.finish_and_clear();
    info!(
        tiles = catalogue.tile_count(),
        problems = catalogue.problems.len(),
        "scanned {}",
        source.describe()
    );
    Ok(catalogue)
}

/// Print input problems (the first 20; all are in the JSON outputs).
pub fn report_problems(problems: &[TileProblem]) {
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

/// The exit code of a command whose work succeeded (`true`) or found problems (`false`: 1).
pub fn exit_code(ok: bool) -> std::process::ExitCode {
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}
