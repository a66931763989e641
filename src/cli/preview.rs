//! `mosaic preview`: a band as a PNG (PCA of the embeddings to RGB, or a coverage map).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};

use super::shared::parse_bbox;
use tessera_mosaic::tools::preview::{self, BBox};
use tessera_mosaic::zarr::MosaicStore;

/// Render a band as a PNG: PCA of the embeddings to RGB, or a coverage map.
#[derive(clap::Args)]
pub struct Args {
    /// The store.
    #[arg(long)]
    pub store: String,
    /// The band.
    #[arg(long, allow_hyphen_values = true)]
    pub band: String,
    /// Year (default: the latest with data).
    #[arg(long)]
    pub year: Option<u16>,
    /// Box LON0,LAT0,LON1,LAT1 (default: the cells present).
    #[arg(long, allow_hyphen_values = true)]
    pub bbox: Option<String>,
    /// Maximum image width in pixels.
    #[arg(long, default_value_t = 1024)]
    pub width: usize,
    /// Draw which cells are present per year instead of the embeddings.
    #[arg(long)]
    pub coverage: bool,
    /// Output PNG.
    #[arg(short, long)]
    pub out: PathBuf,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let store = MosaicStore::open_existing(&a.store)?;
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
    Ok(ExitCode::SUCCESS)
}
