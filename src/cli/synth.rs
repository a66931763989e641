//! `mosaic synth`: write a synthetic TESSERA tree with the real tile geometry.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::shared::progress_bar;
use tessera_mosaic::grid::{BBox, Cell};
use tessera_mosaic::input::synth::{self, Content, SynthOptions};
use tessera_mosaic::plan::human_bytes;

/// Write a synthetic TESSERA tree with the real tile geometry and realistic content.
#[derive(clap::Args)]
pub struct Args {
    /// Output folder (the TESSERA root).
    #[arg(long)]
    pub out: PathBuf,
    /// Cells whose centres lie in W,S,E,N (W > E crosses the antimeridian).
    #[arg(
        long,
        allow_hyphen_values = true,
        conflicts_with = "tiles",
        required_unless_present = "tiles"
    )]
    pub bbox: Option<BBox>,
    /// Explicit tile names, comma-separated (each gets a tile even if all water).
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub tiles: Vec<String>,
    /// Years, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub years: Vec<u16>,
    /// Seed of the content.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Approximate fraction of land pixels; cells with no land get no tile (sea).
    #[arg(long, default_value_t = 0.7)]
    pub land_fraction: f64,
    /// Also write landmask GeoTIFFs (0 = water) in ROOT/global_0.1_degree_tiff_all.
    #[arg(long)]
    pub landmasks: bool,
    /// What the tiles hold: `landscape` compresses like real TESSERA embeddings (patches of
    /// similar vectors, correlated channels, light per-pixel noise); `noise` is the earlier,
    /// nearly incompressible content.
    #[arg(long, value_enum, default_value_t = ContentArg::Landscape)]
    pub content: ContentArg,
}

/// `--content` values.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ContentArg {
    Landscape,
    Noise,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let (cells, keep_water_cells) = match &a.bbox {
        Some(b) => (b.cells(), false),
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
        content: match a.content {
            ContentArg::Landscape => Content::Landscape,
            ContentArg::Noise => Content::Noise,
        },
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
    Ok(ExitCode::SUCCESS)
}
