//! `mosaic`: the command line of tessera-mosaic. Parse, set up logging, dispatch; each
//! command lives in `cli/`.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    Synth(cli::synth::Args),
    /// Scan tiles, group them into bands, and report shapes and costs.
    Plan(cli::plan::Args),
    /// Write TESSERA's Parquet manifest for a local tree (to publish a mirror).
    Manifest(cli::manifest::Args),
    /// Write bands into a Zarr store, in parallel; rerun to resume.
    Build(cli::build::Args),
    /// Check a built band against its input, independently of the writer.
    Verify(cli::verify::Args),
    /// Extract a lat/lon box (across band edges) to .npy + JSON, or GeoTIFF.
    Query(cli::query::Args),
    /// Embeddings at points (CSV or GeoParquet) to Parquet or CSV, for training data.
    Sample(cli::sample::Args),
    /// Render a band as a PNG: PCA of the embeddings to RGB, or a coverage map.
    Preview(cli::preview::Args),
    /// Write a static STAC catalog of a store and an HTML map beside it.
    Stac(cli::stac::Args),
    /// Per band and year: cells built, failed and (with --input) missing.
    Status(cli::status::Args),
    /// Rewrite the root metadata from the bands in the store (after concurrent band builds).
    Finalize(cli::finalize::Args),
    /// Benchmark helper: read a band's tiles and compress as many output bytes, no reprojection.
    #[command(hide = true)]
    Ceiling(cli::build::CeilingArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Synth(a) => cli::synth::run(a),
        Command::Plan(a) => cli::plan::run(a),
        Command::Manifest(a) => cli::manifest::run(a),
        Command::Build(a) => cli::build::run(a),
        Command::Verify(a) => cli::verify::run(a),
        Command::Query(a) => cli::query::run(a),
        Command::Sample(a) => cli::sample::run(a),
        Command::Preview(a) => cli::preview::run(a),
        Command::Stac(a) => cli::stac::run(a),
        Command::Status(a) => cli::status::run(a),
        Command::Finalize(a) => cli::finalize::run(a),
        Command::Ceiling(a) => cli::build::run_ceiling(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr: warnings by default, more with -v, or as RUST_LOG says.
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
