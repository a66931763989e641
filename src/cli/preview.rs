//! `mosaic preview`: a box or a band as a PNG, in the year's colours from the overview
//! pyramids (or a coverage map of the cells present per year).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};

use tessera_mosaic::grid::BBox;
use tessera_mosaic::plan::human_bytes;
use tessera_mosaic::preview;
use tessera_mosaic::store::count_reads;
use tessera_mosaic::zarr::MosaicStore;

/// Render a box (across bands) or a band as a PNG: the first three principal components of the
/// embeddings as RGB in the year's colour basis, no data transparent; or a coverage map.
#[derive(clap::Args)]
pub struct Args {
    /// The store.
    #[arg(long)]
    pub store: String,
    /// The band (default box: its cells). Needed for --coverage; optional with --bbox.
    #[arg(long, allow_hyphen_values = true)]
    pub band: Option<String>,
    /// Year (default: the latest).
    #[arg(long)]
    pub year: Option<u16>,
    /// Box W,S,E,N in degrees, across band edges (W > E crosses the antimeridian).
    #[arg(long, allow_hyphen_values = true)]
    pub bbox: Option<BBox>,
    /// Maximum image width and height in pixels.
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
    let opened = MosaicStore::open_existing(&a.store)?;
    let (counted, reads) = count_reads(&opened.store);
    let store = opened.with_store(counted);
    let bbox = a.bbox;
    let start = std::time::Instant::now();
    let read = || {
        format!(
            "read {} ({} bytes) in {} requests",
            human_bytes(reads.bytes_read() as u64),
            reads.bytes_read(),
            reads.reads()
        )
    };
    if a.coverage {
        let Some(band) = &a.band else {
            bail!("--coverage draws one band: give --band");
        };
        let (image, years, b) = preview::render_coverage(&store, band, bbox)?;
        image.write_png(&a.out)?;
        println!(
            "coverage of {band} over lon {:.1}..{:.1}, lat {:.1}..{:.1}: one panel per year, top to bottom {:?}; {} x {} px -> {}",
            b.lon0,
            b.lon1,
            b.lat0,
            b.lat1,
            years,
            image.width,
            image.height,
            a.out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let from_pyramid = match &a.band {
        Some(band) => store.has_overviews(band)?,
        None => true,
    };
    if !from_pyramid {
        // A band built with --no-overviews: sampled per cell, coloured by its own PCA.
        let band = a.band.as_deref().expect("a band");
        let (image, year, b) =
            preview::render_embeddings(&store, band, a.year, bbox, a.width.max(1))?;
        image.write_png(&a.out)?;
        println!(
            "{band} {year}, lon {:.3}..{:.3}, lat {:.3}..{:.3}: PCA of this picture's pixels as RGB (the band has no overviews, so not the year's colours), no data transparent; {} x {} px in {:.1} s, {} -> {}",
            b.lon0,
            b.lon1,
            b.lat0,
            b.lat1,
            image.width,
            image.height,
            start.elapsed().as_secs_f64(),
            read(),
            a.out.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let bbox = match (bbox, &a.band) {
        (Some(b), _) => b,
        (None, Some(band)) => preview::band_cells_bbox(&store, band, a.year)?,
        (None, None) => bail!("give --bbox W,S,E,N or --band"),
    };
    let p = preview::render_box(&store, bbox, a.year, a.width.max(1))?;
    p.image.write_png(&a.out)?;
    let levels: Vec<String> = p
        .levels
        .iter()
        .map(|(band, level)| format!("{band} level {level}"))
        .collect();
    println!(
        "{}, lon {:.3}..{:.3}, lat {:.3}..{:.3}: the year's colour basis (3 principal components of {:.0} pixels in {} bands), no data transparent; {} x {} px from overviews ({}) in {:.1} s, {} -> {}",
        p.year,
        p.bbox.lon0,
        p.bbox.lon1,
        p.bbox.lat0,
        p.bbox.lat1,
        p.basis.pixels,
        p.basis.cells.len(),
        p.image.width,
        p.image.height,
        levels.join(", "),
        start.elapsed().as_secs_f64(),
        read(),
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
