//! `mosaic stac`: a static STAC catalog of a store and an HTML map beside it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use tessera_mosaic::stac::{self, AssetHref, MapOptions, StacOptions};
use tessera_mosaic::store::is_url;
use tessera_mosaic::zarr::MosaicStore;

/// Write a static STAC catalog of a store and an HTML map beside it.
#[derive(clap::Args)]
pub struct Args {
    /// The store: a local folder, or an s3://, gs://, az:// or http(s):// URL (settings from
    /// the environment).
    #[arg(long)]
    pub store: String,
    /// Output folder: catalog.json, one folder per year, and the map (index.html).
    #[arg(long)]
    pub out: PathBuf,
    /// URL of the published store for asset hrefs (`URL/{band}`, e.g. s3://bucket/store.zarr or
    /// https://host/store.zarr); default: the store's URL, or its absolute local path.
    #[arg(long)]
    pub href_base: Option<String>,
    /// Another Leaflet package or dist folder to copy into the map (default: the Leaflet built
    /// into mosaic).
    #[arg(long)]
    pub leaflet: Option<PathBuf>,
    /// Write the catalog only, no map.
    #[arg(long, conflicts_with = "leaflet")]
    pub no_map: bool,
    /// Deepest zoom of the map's tiles (default: the zoom where a tile pixel is about the
    /// finest overview pixel, 11 for 1170 rows per cell). Each zoom has up to 4 times the
    /// tiles of the one before; beyond it the map enlarges the deepest tiles.
    #[arg(long)]
    pub map_max_zoom: Option<u32>,
    /// URL of the store as the map's page fetches it on a click (values, similarity): relative
    /// to index.html or http(s)://. Default: the --href-base or store URL if http(s), else the
    /// local store's path relative to --out (serve a folder holding both).
    #[arg(long)]
    pub map_store: Option<String>,
    /// Accepted for old scripts, does nothing: the map no longer writes pixel files (it reads
    /// the store itself).
    #[arg(long, hide = true)]
    pub no_map_pixels: bool,
}

/// Where the page finds the store (see `Args::map_store`); `None` when a browser cannot reach
/// it (an s3:// store without an http(s) --href-base).
fn map_store_url(a: &Args, href: &AssetHref) -> Result<Option<String>> {
    let web = |u: &str| u.starts_with("http://") || u.starts_with("https://");
    if let Some(url) = &a.map_store {
        if is_url(url) && !web(url) {
            bail!("--map-store {url}: a browser reads http(s):// or a relative URL");
        }
        return Ok(Some(url.trim_end_matches('/').to_string()));
    }
    if let AssetHref::Base(url) = href
        && web(url)
    {
        return Ok(Some(url.trim_end_matches('/').to_string()));
    }
    if is_url(&a.store) {
        return Ok(None);
    }
    let store = Path::new(a.store.trim_start_matches("file://"));
    let store = std::fs::canonicalize(store)
        .with_context(|| format!("cannot resolve {}", store.display()))?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let out = std::fs::canonicalize(&a.out)
        .with_context(|| format!("cannot resolve {}", a.out.display()))?;
    Ok(Some(stac::relative_url(&out, &store)))
}

pub fn run(a: Args) -> Result<ExitCode> {
    let start = std::time::Instant::now();
    let store = MosaicStore::open_existing(&a.store)?;
    let href = match &a.href_base {
        Some(url) => {
            if !is_url(url) {
                bail!("--href-base {url} is not a URL (expected s3://... or https://...)");
            }
            AssetHref::Base(url.clone())
        }
        None if is_url(&a.store) => AssetHref::Base(a.store.clone()),
        None => {
            let path = Path::new(a.store.trim_start_matches("file://"));
            AssetHref::Local(
                std::fs::canonicalize(path)
                    .with_context(|| format!("cannot resolve {}", path.display()))?,
            )
        }
    };
    let map = if a.no_map {
        None
    } else {
        Some(MapOptions {
            leaflet_dist: a.leaflet.as_deref().map(stac::leaflet_dist).transpose()?,
            max_zoom: a.map_max_zoom,
            store_url: map_store_url(&a, &href)?,
        })
    };
    if a.no_map_pixels {
        println!("--no-map-pixels: ignored, the map writes no pixel files (it reads the store)");
    }
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
        println!("map {}", page.display());
        match &options.map.as_ref().and_then(|m| m.store_url.clone()) {
            Some(url) => println!("  the page reads the store at {url}"),
            None => println!(
                "  the page cannot reach an {} store: clicks show no values (--map-store URL)",
                a.store.split(':').next().unwrap_or("")
            ),
        }
        for t in &s.tiles.years {
            println!(
                "  {}: {} tiles, {} bytes, zooms 0-{} (native {}), per zoom {}",
                t.year,
                t.tiles(),
                t.bytes,
                t.max_zoom,
                t.native_max_zoom,
                t.per_zoom
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        for skipped in &s.tiles.skipped {
            println!("  no tiles for {skipped}");
        }
    }
    println!("done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}
