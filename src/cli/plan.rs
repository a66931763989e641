//! `mosaic plan`: catalogue the input, group tiles into bands, report shapes and costs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use tracing::warn;

use super::shared::{InputArgs, load_bands, report_problems, scan};
use tessera_mosaic::grid::BandsConfig;
use tessera_mosaic::plan;

/// Scan tiles, group them into bands, and report shapes and costs.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,
    /// Band configuration (default: ./bands.toml if present, else the built-in 10-degree bands).
    #[arg(long)]
    pub bands: Option<PathBuf>,
    /// Also write the plan as JSON here (for `build --plan`).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Propose band edges keeping the stretch at or under S, printed as bands.toml.
    #[arg(long)]
    pub max_stretch: Option<f64>,
    /// Landmask folder or landmasks.parquet (a URL for a remote input). Default:
    /// ROOT/landmasks.parquet, else ROOT/global_0.1_degree_tiff_all (or beside a local ROOT).
    #[arg(long)]
    pub landmasks: Option<PathBuf>,
    /// Only these years, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub years: Vec<u16>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let config = load_bands(a.bands.as_deref())?;
    let source = a.input.source()?;
    let source = source.as_ref();
    let catalogue = scan(source, a.landmasks, a.years, None)?;
    if catalogue.tile_count() == 0 {
        warn!("no valid tiles under {}", a.input.input);
    }
    // A sample tile that cannot be read leaves the estimate at raw size, not the plan undone.
    let ratio = match plan::sample_compression_ratio(source, &catalogue, &config.compression) {
        Ok(r) => r,
        Err(problem) => {
            warn!("compression not measured (estimates are raw sizes): {problem}");
            1.0
        }
    };
    let plan = plan::plan(&catalogue, &config, ratio)?;
    println!(
        "{}: {} tiles in {} years ({}), {} cells, {} problems",
        a.input.input,
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
    match &catalogue.dataset {
        Some(choice) => println!("manifest rows: {choice}"),
        None => println!("no manifest: tiles found by scanning or listing the input"),
    }
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
    Ok(ExitCode::SUCCESS)
}
