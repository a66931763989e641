//! `mosaic stac`: a static STAC catalog of a store and an HTML map beside it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use tessera_mosaic::stac::{self, AssetHref, MapOptions, StacOptions};
use tessera_mosaic::store::{Store, is_url};

use super::build::parse_worker;
use super::shared::progress_bar;
use tessera_mosaic::zarr::MosaicStore;

/// Write a static STAC catalog of a store and an HTML map beside it.
#[derive(clap::Args)]
pub struct Args {
    /// The store: a local folder, or an s3://, gs://, az:// or http(s):// URL (settings from
    /// the environment).
    #[arg(long)]
    pub store: String,
    /// Where to write catalog.json, one folder per year, and the map (index.html): a local
    /// folder, or an s3://, gs:// or az:// prefix (settings from the environment). Map tiles
    /// already there whose data did not change are kept (map/tile-state/ records them).
    #[arg(long)]
    pub out: String,
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
    /// store's path relative to --out when both are local or in one bucket (serve or publish
    /// them together).
    #[arg(long)]
    pub map_store: Option<String>,
    /// Draw share I of N (1-based) of the map's blocks of 64 x 64 tiles, e.g. `--worker 3/16`,
    /// and nothing else; a final `stac` without `--worker` writes the catalogue and the page
    /// and keeps the shares' tiles (any order, any N, same output).
    #[arg(long, value_parser = parse_worker, conflicts_with = "no_map")]
    pub worker: Option<(usize, usize)>,
    /// Threads drawing map tiles (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
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
    match (is_url(&a.store), is_url(&a.out)) {
        (false, false) => {
            let store = Path::new(a.store.trim_start_matches("file://"));
            let store = std::fs::canonicalize(store)
                .with_context(|| format!("cannot resolve {}", store.display()))?;
            let out = Path::new(a.out.trim_start_matches("file://"));
            std::fs::create_dir_all(out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let out = std::fs::canonicalize(out)
                .with_context(|| format!("cannot resolve {}", out.display()))?;
            Ok(Some(stac::relative_url(&out, &store)))
        }
        (true, true) => {
            // Both in one bucket: the page finds the store by the keys' relation, wherever the
            // bucket is served from.
            let (store, out) = (url::Url::parse(&a.store)?, url::Url::parse(&a.out)?);
            let same = store.scheme() == out.scheme() && store.authority() == out.authority();
            let path = |u: &url::Url| PathBuf::from(format!("/{}", u.path().trim_matches('/')));
            Ok(same.then(|| stac::relative_url(&path(&out), &path(&store))))
        }
        _ => Ok(None),
    }
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
            progress: Some(progress_bar(0, "tiles")),
            share: a.worker,
        })
    };
    if let Some(map) = &map
        && let Some(bar) = &map.progress
    {
        bar.set_message("map tiles");
    }
    if a.no_map_pixels {
        println!("--no-map-pixels: ignored, the map writes no pixel files (it reads the store)");
    }
    let out = Store::open(&a.out).with_context(|| format!("cannot open --out {}", a.out))?;
    let options = StacOptions {
        out: out.clone(),
        href,
        map,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads.unwrap_or(0))
        .build()
        .context("cannot start the tile threads")?;
    let s = pool
        .install(|| stac::write_stac(&store, &options))
        .with_context(|| format!("writing the STAC catalog of {} to {}", a.store, a.out))?;
    if let Some(bar) = options.map.as_ref().and_then(|m| m.progress.as_ref()) {
        bar.finish_and_clear();
    }
    if let Some((i, n)) = a.worker {
        let (all, drawn, t) = (s.tiles.tiles(), s.tiles.rendered(), s.tiles.seconds);
        println!(
            "share {}/{n} of the map's tile blocks of {} in {}: {drawn} rendered, {} kept, {} removed, of {all}, in {t:.1} s ({} threads)",
            i + 1,
            a.store,
            out.location,
            all - drawn,
            s.tiles.removed,
            pool.current_num_threads(),
        );
        println!("done in {:.1} s", start.elapsed().as_secs_f64());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "catalog {}/catalog.json: {} collections (years {}), {} items, {} cells; footprints in {:.2} s",
        out.location,
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
        println!("map {page}");
        match &options.map.as_ref().and_then(|m| m.store_url.clone()) {
            Some(url) => println!("  the page reads the store at {url}"),
            None => println!(
                "  the page cannot reach an {} store: clicks show no values (--map-store URL)",
                a.store.split(':').next().unwrap_or("")
            ),
        }
        for t in &s.tiles.years {
            println!(
                "  {}: {} tiles ({} rendered), {} bytes, zooms 0-{} (native {}), per zoom {}",
                t.year,
                t.tiles(),
                t.rendered,
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
        let (all, drawn, t) = (s.tiles.tiles(), s.tiles.rendered(), s.tiles.seconds);
        println!(
            "tiles: {drawn} rendered, {} kept, {} removed, of {all}, in {t:.1} s ({:.1} rendered/s, {} threads){}",
            all - drawn,
            s.tiles.removed,
            drawn as f64 / t.max(1e-9),
            pool.current_num_threads(),
            if s.tiles.incremental {
                ""
            } else {
                "; the store cannot list object versions: every tile drawn"
            }
        );
    }
    println!("done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}
