//! A TESSERA tree in an object store (`s3://`, `gs://`, `az://`, `http(s)://`), where TESSERA
//! publishes it. Catalogued from its Parquet manifest when there is one (no listing, nothing
//! opened), else by listing the prefix and reading each file's header with a ranged GET.
//!
//! Tiles are read with whole-object GETs, fetched ahead of the writer in the order it will ask
//! for them ([`TileSource::prefetch`]), so the CPU does not wait on the network. Every request
//! has a deadline and is retried a bounded number of times with backoff; the bytes received are
//! checked against the size the manifest (or the listing) gives. A tile that cannot be read is
//! a problem naming its URL, never a hang.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use zarrs::storage::Bytes;

use super::catalogue::{
    Catalogue, InputTile, LANDMASK_DIR, ScanError, ScanOptions, TileProblem,
    check_embeddings_header, check_scales_header,
};
use super::dataset::DatasetRequest;
use super::geotiff;
use super::landmasks::{
    LANDMASKS_NAME, LandmasksError, add_listed_landmasks, landmask_cell, parse_landmasks,
    scan_landmask_dir,
};
use super::manifest::{
    MANIFEST_NAME, ManifestError, ManifestRow, parse_manifest, resolve_listed, tile_paths_by_rule,
};
use super::npy::{self, NpyHeader};
use super::source::TileSource;
use crate::error::chain;
use crate::grid::Cell;
use crate::store::{RequestLimits, StoreOptions, block_on, is_url, object_store_at, spawn};

/// Header bytes fetched per file when cataloguing by listing (numpy headers are ~128 bytes).
const HEADER_BYTES: u64 = 4096;
/// Header requests in flight at once when cataloguing by listing.
const HEADER_CONCURRENCY: usize = 32;

/// A TESSERA tree under a URL.
pub struct RemoteTree {
    base: String,
    manifest: Option<String>,
    limits: RequestLimits,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
    /// Expected size of every file, by URL (from the manifest or the listing).
    sizes: Mutex<HashMap<String, u64>>,
    ahead: Mutex<Prefetch>,
    /// The manifest rows to use.
    dataset: DatasetRequest,
    /// Settings of the object stores read (`--input-option`), over the environment's.
    options: StoreOptions,
    /// Settings for the landmasks (`--landmasks-option`), when they live elsewhere; `None`: the
    /// input's.
    landmask_options: Option<StoreOptions>,
}

/// A download started ahead of the writer.
type Download = tokio::task::JoinHandle<Result<Bytes, String>>;

/// What a request reads: the input's objects, or the landmasks (which may have settings of
/// their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Input,
    Landmasks,
}

/// Objects fetched ahead of the writer: a window of downloads in the order it will read them.
#[derive(Default)]
struct Prefetch {
    /// Objects not started yet, with their place in the writer's order.
    queue: VecDeque<(usize, String)>,
    in_flight: HashMap<String, (usize, Download)>,
    window: usize,
}

impl RemoteTree {
    /// The tree under `base` (a URL); `manifest` names a manifest (URL or local path) instead of
    /// `BASE/manifest.parquet`. `limits` bound every request.
    pub fn new(base: &str, manifest: Option<String>, limits: RequestLimits) -> RemoteTree {
        RemoteTree {
            base: base.trim_end_matches('/').to_string(),
            manifest,
            limits,
            stores: Mutex::new(HashMap::new()),
            sizes: Mutex::new(HashMap::new()),
            ahead: Mutex::new(Prefetch::default()),
            dataset: DatasetRequest::default(),
            options: StoreOptions::default(),
            landmask_options: None,
        }
    }

    /// Use the manifest rows of this dataset version and variant.
    pub fn with_dataset(mut self, dataset: DatasetRequest) -> RemoteTree {
        self.dataset = dataset;
        self
    }

    /// Read every object (tiles, manifest, landmasks) with these settings.
    pub fn with_options(mut self, options: StoreOptions) -> RemoteTree {
        self.options = options;
        self
    }

    /// Read the landmasks (their parquet, folder and GeoTIFFs) with these settings instead of
    /// the input's.
    pub fn with_landmask_options(mut self, options: StoreOptions) -> RemoteTree {
        self.landmask_options = Some(options);
        self
    }

    /// The object store and object path of a URL of the input (one store per bucket or host).
    fn locate(&self, url: &str) -> Result<(Arc<dyn ObjectStore>, ObjectPath), String> {
        self.locate_as(url, Reading::Input)
    }

    /// The object store and object path of a URL read as `reading` (its own settings).
    fn locate_as(
        &self,
        url: &str,
        reading: Reading,
    ) -> Result<(Arc<dyn ObjectStore>, ObjectPath), String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
        let (options, kind) = match (reading, &self.landmask_options) {
            (Reading::Landmasks, Some(options)) => (options, "landmasks "),
            _ => (&self.options, ""),
        };
        let key = format!("{kind}{}://{}", parsed.scheme(), parsed.authority());
        let path = ObjectPath::from(parsed.path().trim_matches('/'));
        if let Some(store) = self.stores.lock().expect("no poisoning").get(&key) {
            return Ok((store.clone(), path));
        }
        // Retries are ours (below), so that every failure, body included, is retried alike.
        let limits = RequestLimits {
            retries: 0,
            ..self.limits
        };
        let (store, _) = object_store_at(url, limits, options).map_err(|e| e.to_string())?;
        self.stores
            .lock()
            .expect("no poisoning")
            .insert(key, store.clone());
        Ok((store, path))
    }

    /// A whole object of the input, with the deadline, retries and size check.
    fn get(&self, url: &str) -> Result<Bytes, String> {
        self.get_as(url, Reading::Input)
    }

    /// A whole object read as `reading`.
    fn get_as(&self, url: &str, reading: Reading) -> Result<Bytes, String> {
        let task = self.ahead.lock().expect("no poisoning").take(url);
        let result = match task {
            Some(task) => block_on(task).unwrap_or_else(|e| Err(e.to_string())),
            None => {
                let (store, path) = self.locate_as(url, reading)?;
                let expected = self.sizes.lock().expect("no poisoning").get(url).copied();
                block_on(fetch(store, path, expected, self.limits))
            }
        };
        self.top_up();
        result
    }

    /// A whole `.npy` object: its header and its data bytes.
    fn get_npy(&self, path: &Path) -> Result<(NpyHeader, Bytes), TileProblem> {
        let fail = |m: String| TileProblem::new(path, m);
        let bytes = self.get(&path.display().to_string()).map_err(fail)?;
        let header = npy::parse_header(&bytes).map_err(|e| fail(chain(&e)))?;
        let data = header.data_offset..header.data_offset + header.data_bytes();
        if data.end > bytes.len() {
            return Err(fail("shorter than its header says".into()));
        }
        Ok((header, bytes.slice(data)))
    }

    /// Start downloads until the window is full.
    fn top_up(&self) {
        let mut ahead = self.ahead.lock().expect("no poisoning");
        while ahead.in_flight.len() < ahead.window {
            let Some((place, url)) = ahead.queue.pop_front() else {
                break;
            };
            let Ok((store, path)) = self.locate(&url) else {
                continue; // read again (and reported) when the writer asks for it
            };
            let expected = self.sizes.lock().expect("no poisoning").get(&url).copied();
            let task = spawn(fetch(store, path, expected, self.limits));
            ahead.in_flight.insert(url, (place, task));
        }
    }

    /// The manifest's location, if there is one; an error when the store does not say whether
    /// there is one (a transient error must not switch the build to listing the whole prefix).
    fn manifest_location(&self) -> Result<Option<String>, ScanError> {
        if let Some(m) = &self.manifest {
            return Ok(Some(m.clone()));
        }
        let url = format!("{}/{MANIFEST_NAME}", self.base);
        Ok(self.exists(&url)?.then_some(url))
    }

    /// Catalogue from a manifest (URL or local path).
    fn catalogue_from_manifest(
        &self,
        manifest: &str,
        options: &ScanOptions,
    ) -> Result<Catalogue, ScanError> {
        let bytes = if crate::store::is_url(manifest) {
            self.get(manifest).map_err(|message| ManifestError::Fetch {
                location: manifest.to_string(),
                message,
            })?
        } else {
            Bytes::from(std::fs::read(manifest).map_err(|source| ManifestError::Io {
                location: manifest.to_string(),
                source,
            })?)
        };
        let rows = parse_manifest(bytes, manifest)?;
        let choice = self.dataset.resolve(&self.base);
        // Relative paths: beside a manifest in the store, else (a local copy, as geotessera
        // caches its registry) under the input.
        let dir = if is_url(manifest) {
            folder_of(manifest)
        } else {
            self.base.as_str()
        };
        let locate = |r: &ManifestRow| {
            let (e, s) = tile_paths_by_rule(&self.base, r.year, r.cell);
            let roots = [self.base.as_str()];
            (
                PathBuf::from(resolve_listed(&r.grid_path, dir, &roots, || e)),
                PathBuf::from(resolve_listed(&r.scales_path, dir, &roots, || s)),
            )
        };
        let catalogue = Catalogue::from_manifest(
            Path::new(&self.base),
            manifest,
            &rows,
            &choice,
            locate,
            options,
        )?;
        let mut sizes = self.sizes.lock().expect("no poisoning");
        for row in &rows {
            let (e, s) = locate(row);
            sizes.insert(e.display().to_string(), row.grid_size);
            sizes.insert(s.display().to_string(), row.scales_size);
        }
        Ok(catalogue)
    }

    /// Catalogue by listing the prefix and reading every file's header. Also returns the URLs
    /// listed in the landmask folder.
    fn catalogue_by_listing(
        &self,
        options: &ScanOptions,
    ) -> Result<(Catalogue, Vec<String>), ScanError> {
        let root_err = |m: String| ScanError::Remote {
            location: self.base.clone(),
            message: m,
        };
        let (store, prefix) = self.locate(&format!("{}/", self.base)).map_err(root_err)?;
        let objects = block_on(list_all(store, prefix.clone(), self.limits)).map_err(root_err)?;
        let url_of = |p: &ObjectPath| format!("{}/{}", self.base, rel(p, &prefix));
        let mut sizes: HashMap<String, u64> = HashMap::new();
        let mut candidates = Vec::new();
        let mut landmasks = Vec::new();
        let mut catalogue = Catalogue {
            root: PathBuf::from(&self.base),
            ..Default::default()
        };
        for o in &objects {
            let url = url_of(&o.location);
            sizes.insert(url.clone(), o.size);
            let relative = rel(&o.location, &prefix);
            let parts: Vec<&str> = relative.split('/').collect();
            if let [dir, _] = parts[..]
                && dir == LANDMASK_DIR
            {
                landmasks.push(url);
                continue;
            }
            let [year, folder, file] = parts[..] else {
                continue;
            };
            let Ok(year) = year.parse::<u16>() else {
                continue;
            };
            if year < 1000 || !options.years.is_empty() && !options.years.contains(&year) {
                continue;
            }
            if file != format!("{folder}.npy") {
                continue;
            }
            match Cell::parse_name(folder) {
                Ok(cell) => {
                    if options
                        .lat_index_range
                        .as_ref()
                        .is_none_or(|r| r.contains(&cell.lat_index))
                    {
                        let scales = format!("{}/{year}/{folder}/{folder}_scales.npy", self.base);
                        candidates.push((year, cell, url, scales));
                    }
                }
                Err(e) => catalogue.problems.push(TileProblem::new(
                    Path::new(&url),
                    format!("bad tile name: {e}"),
                )),
            }
        }
        *self.sizes.lock().expect("no poisoning") = sizes.clone();
        let results: Vec<Result<InputTile, TileProblem>> = block_on(
            futures::stream::iter(candidates.into_iter().map(|(year, cell, emb, sc)| {
                let sizes = &sizes;
                async move {
                    if let Some(p) = &options.progress {
                        p.inc(1);
                    }
                    let header = |url: String| async move {
                        let size = *sizes
                            .get(&url)
                            .ok_or_else(|| TileProblem::new(Path::new(&url), "missing"))?;
                        let (store, path) = self
                            .locate(&url)
                            .map_err(|e| TileProblem::new(Path::new(&url), e))?;
                        let bytes = with_deadline(
                            self.limits,
                            store.get_range(&path, 0..size.min(HEADER_BYTES)),
                        )
                        .await
                        .map_err(|e| {
                            TileProblem::new(Path::new(&url), format!("cannot read: {e}"))
                        })?;
                        let h = npy::parse_header(&bytes).map_err(|e| {
                            TileProblem::new(Path::new(&url), format!("cannot read: {e}"))
                        })?;
                        Ok::<(NpyHeader, u64), TileProblem>((h, size))
                    };
                    let (eh, esize) = header(emb.clone()).await?;
                    let (h, w) = check_embeddings_header(Path::new(&emb), &eh)?;
                    let (sh, ssize) = header(sc.clone()).await?;
                    let layout = check_scales_header(Path::new(&sc), &sh, h, w)?;
                    Ok(InputTile {
                        year,
                        cell,
                        embeddings: PathBuf::from(emb),
                        scales: PathBuf::from(sc),
                        scales_layout: layout,
                        height: h,
                        width: w,
                        bytes: esize + ssize,
                    })
                }
            }))
            .buffer_unordered(HEADER_CONCURRENCY)
            .collect::<Vec<_>>(),
        );
        // A listing names each (year, tile) folder once: no duplicates to resolve.
        for r in results {
            match r {
                Ok(t) => {
                    catalogue.years.entry(t.year).or_default().insert(t.cell, t);
                }
                Err(p) => catalogue.problems.push(p),
            }
        }
        catalogue.check_geometry();
        Ok((catalogue, landmasks))
    }

    /// Whether a file exists: a local path, an object listed, or one that answers a HEAD.
    /// Whether a file or object is there: an error, naming it, when the store did not answer
    /// (after the retries), since taking that for "absent" would silently build without the
    /// manifest or the landmasks.
    fn exists(&self, location: &str) -> Result<bool, ScanError> {
        if !is_url(location) {
            return Ok(Path::new(location).is_file());
        }
        if self
            .sizes
            .lock()
            .expect("no poisoning")
            .contains_key(location)
        {
            return Ok(true);
        }
        let err = |message: String| ScanError::Remote {
            location: location.to_string(),
            message,
        };
        let (store, path) = self.locate(location).map_err(err)?;
        block_on(probe(store, path, self.limits)).map_err(err)
    }

    /// Add the landmasks: from the `landmasks.parquet` or the folder or prefix named, else from
    /// `BASE/landmasks.parquet` (or one beside the manifest), else from the landmask folder
    /// under BASE (`listed`, when the whole prefix was listed; else listed now).
    fn add_landmasks(
        &self,
        catalogue: &mut Catalogue,
        options: &ScanOptions,
        listed: Option<Vec<String>>,
    ) -> Result<(), ScanError> {
        let named = options
            .landmasks
            .as_ref()
            .map(|p| p.to_string_lossy().trim_end_matches('/').to_string());
        let source = match named {
            Some(source) => source,
            None => {
                let beside_manifest = self
                    .manifest
                    .as_deref()
                    .map(|m| format!("{}/{LANDMASKS_NAME}", folder_of(m)));
                let mut parquet = None;
                for p in std::iter::once(format!("{}/{LANDMASKS_NAME}", self.base))
                    .chain(beside_manifest)
                {
                    if self.exists(&p)? {
                        parquet = Some(p);
                        break;
                    }
                }
                match (parquet, listed) {
                    (Some(parquet), _) => parquet,
                    (None, Some(urls)) => {
                        add_named_landmasks(catalogue, urls);
                        return Ok(());
                    }
                    (None, None) => format!("{}/{LANDMASK_DIR}", self.base),
                }
            }
        };
        if source.ends_with(".parquet") {
            let bytes = if is_url(&source) {
                self.get_as(&source, Reading::Landmasks)
            } else {
                read_local(Path::new(&source), None)
            }
            .map_err(|message| LandmasksError::Fetch {
                location: source.clone(),
                message,
            })?;
            let rows = parse_landmasks(bytes, &source)?;
            let dir = folder_of(&source);
            let sizes =
                add_listed_landmasks(catalogue, &rows, options.lat_index_range.as_ref(), |r| {
                    let by_rule = || format!("{dir}/{}.tiff", r.cell.name());
                    PathBuf::from(resolve_listed(&r.path, dir, &[dir], by_rule))
                });
            let mut known = self.sizes.lock().expect("no poisoning");
            known.extend(sizes.into_iter().map(|(p, n)| (p.display().to_string(), n)));
        } else if is_url(&source) {
            let urls = self
                .list_folder(&source)
                .map_err(|message| ScanError::LandmaskSource {
                    location: source.clone(),
                    message,
                })?;
            add_named_landmasks(catalogue, urls);
        } else {
            scan_landmask_dir(catalogue, Path::new(&source));
        }
        Ok(())
    }

    /// The URLs of the objects directly under a folder URL (their sizes noted).
    fn list_folder(&self, folder: &str) -> Result<Vec<String>, String> {
        let (store, prefix) = self.locate_as(&format!("{folder}/"), Reading::Landmasks)?;
        let objects = block_on(list_all(store, prefix.clone(), self.limits))?;
        let mut sizes = self.sizes.lock().expect("no poisoning");
        let mut urls = Vec::new();
        for o in objects {
            let name = rel(&o.location, &prefix);
            if !name.contains('/') {
                let url = format!("{folder}/{name}");
                sizes.insert(url.clone(), o.size);
                urls.push(url);
            }
        }
        Ok(urls)
    }
}

/// The folder of a file named by a URL or path (`.` for a bare name).
fn folder_of(file: &str) -> &str {
    file.rsplit_once('/').map_or(".", |(dir, _)| dir)
}

/// Add landmasks named `grid_{lon}_{lat}.tiff` (other files are skipped; a bad name is a
/// problem).
fn add_named_landmasks(catalogue: &mut Catalogue, urls: Vec<String>) {
    for url in urls {
        let name = url.rsplit('/').next().unwrap_or_default();
        match landmask_cell(name) {
            None => {}
            Some(Ok(cell)) => {
                catalogue.landmasks.insert(cell, PathBuf::from(url));
            }
            Some(Err(e)) => catalogue
                .problems
                .push(TileProblem::new(Path::new(&url), e)),
        }
    }
}

/// A local file (a regular one only: a FIFO could block forever), its size checked against
/// `expected`.
fn read_local(path: &Path, expected: Option<u64>) -> Result<Bytes, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    if let Some(n) = expected.filter(|&n| n != meta.len()) {
        return Err(format!(
            "the file has {} bytes, but {n} were expected",
            meta.len()
        ));
    }
    std::fs::read(path)
        .map(Bytes::from)
        .map_err(|e| format!("cannot read: {e}"))
}

/// `path` relative to `prefix`.
fn rel(path: &ObjectPath, prefix: &ObjectPath) -> String {
    let p = path.as_ref();
    p.strip_prefix(prefix.as_ref())
        .unwrap_or(p)
        .trim_start_matches('/')
        .to_string()
}

/// Run one request with the deadline of `limits`.
async fn with_deadline<T, E: std::fmt::Display>(
    limits: RequestLimits,
    request: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(limits.timeout, request).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "no answer within {:.0} s",
            limits.timeout.as_secs_f64()
        )),
    }
}

/// Every object under a prefix, with the retries and backoff of [`fetch`] (the client's own
/// retries are off, see `locate_as`).
async fn list_all(
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    limits: RequestLimits,
) -> Result<Vec<object_store::ObjectMeta>, String> {
    let mut last = String::new();
    for attempt in 0..=limits.retries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 << attempt.min(6))).await;
        }
        let listing = async {
            let all: Vec<_> = store.list(Some(&prefix)).collect().await;
            all.into_iter().collect::<Result<Vec<_>, _>>()
        };
        match with_deadline(limits, listing).await {
            Ok(objects) => return Ok(objects),
            Err(e) => last = e,
        }
    }
    Err(format!("{last} (after {} attempts)", limits.retries + 1))
}

/// HEAD an object, with the retries and backoff of [`fetch`]: true when it is there, false
/// when the store says it is not, an error when the store gave no answer either way.
async fn probe(
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    limits: RequestLimits,
) -> Result<bool, String> {
    let mut last = String::new();
    for attempt in 0..=limits.retries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 << attempt.min(6))).await;
        }
        match tokio::time::timeout(limits.timeout, store.head(&path)).await {
            Ok(Ok(_)) => return Ok(true),
            Ok(Err(object_store::Error::NotFound { .. })) => return Ok(false),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = format!("no answer within {:.0} s", limits.timeout.as_secs_f64()),
        }
    }
    Err(format!(
        "whether it exists is unknown after {} attempts: {last}",
        limits.retries + 1
    ))
}

/// GET a whole object: each attempt within the deadline, up to `limits.retries` retries with
/// exponential backoff, and the size received checked against `expected`.
async fn fetch(
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    expected: Option<u64>,
    limits: RequestLimits,
) -> Result<Bytes, String> {
    let mut last = String::new();
    for attempt in 0..=limits.retries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 << attempt.min(6))).await;
        }
        let started = std::time::Instant::now();
        let got = with_deadline(limits, async {
            let response = store.get(&path).await?;
            response.bytes().await
        })
        .await
        .map_err(|e| {
            // The client's own timeout and ours race; either way the deadline passed.
            if started.elapsed() >= limits.timeout && !e.starts_with("no answer") {
                format!(
                    "no answer within {:.0} s: {e}",
                    limits.timeout.as_secs_f64()
                )
            } else {
                e
            }
        });
        match got {
            Ok(bytes) => match expected {
                Some(n) if bytes.len() as u64 != n => {
                    last = format!(
                        "received {} bytes, but {n} were expected (truncated or changed object)",
                        bytes.len()
                    );
                }
                _ => return Ok(bytes),
            },
            Err(e) if e.contains("not found") || e.contains("NotFound") => {
                return Err(format!("missing: {e}"));
            }
            Err(e) => last = e,
        }
    }
    Err(format!("{last} (after {} attempts)", limits.retries + 1))
}

impl Prefetch {
    /// The download of `url`, if it was started ahead. Downloads more than a window behind it
    /// in the writer's order will not be asked for any more (their tile failed before reading
    /// them): they are cancelled, so that they do not hold places in the window.
    fn take(&mut self, url: &str) -> Option<Download> {
        let (place, task) = self.in_flight.remove(url)?;
        let window = self.window;
        self.in_flight.retain(|_, (p, stale)| {
            let keep = *p + window >= place;
            if !keep {
                stale.abort();
            }
            keep
        });
        Some(task)
    }
}

impl TileSource for RemoteTree {
    fn describe(&self) -> String {
        self.base.clone()
    }

    fn catalogue(&self, options: &ScanOptions) -> Result<Catalogue, ScanError> {
        let (mut catalogue, listed) = match self.manifest_location()? {
            Some(m) => (self.catalogue_from_manifest(&m, options)?, None),
            None => {
                let (catalogue, landmasks) = self.catalogue_by_listing(options)?;
                (catalogue, Some(landmasks))
            }
        };
        self.add_landmasks(&mut catalogue, options, listed)?;
        catalogue.problems.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(catalogue)
    }

    fn read_embeddings(
        &self,
        tile: &InputTile,
        buf: &mut Vec<u8>,
    ) -> Result<NpyHeader, TileProblem> {
        let (header, data) = self.get_npy(&tile.embeddings)?;
        buf.clear();
        buf.extend_from_slice(&data);
        Ok(header)
    }

    fn read_scales(&self, tile: &InputTile) -> Result<(NpyHeader, Vec<u8>), TileProblem> {
        let (header, data) = self.get_npy(&tile.scales)?;
        Ok((header, data.to_vec()))
    }

    fn read_landmask(&self, path: &Path) -> Result<geotiff::U8Raster, TileProblem> {
        let location = path.display().to_string();
        let bytes = if is_url(&location) {
            self.get_as(&location, Reading::Landmasks)
        } else {
            let expected = self
                .sizes
                .lock()
                .expect("no poisoning")
                .get(&location)
                .copied();
            read_local(path, expected)
        }
        .map_err(|m| TileProblem::new(path, m))?;
        geotiff::read_u8_raster(std::io::Cursor::new(bytes))
            .map_err(|e| TileProblem::new(path, chain(&e)))
    }

    fn read_data_prefix(&self, path: &Path, max: usize) -> Result<Vec<u8>, TileProblem> {
        let url = path.display().to_string();
        let fail = |m: String| TileProblem::new(path, m);
        let (store, object) = self.locate(&url).map_err(fail)?;
        let bytes = block_on(with_deadline(
            self.limits,
            store.get_range(&object, 0..(max as u64 + HEADER_BYTES)),
        ))
        .map_err(fail)?;
        let header = npy::parse_header(&bytes).map_err(|e| fail(chain(&e)))?;
        let end = (header.data_offset + max.min(header.data_bytes())).min(bytes.len());
        Ok(bytes[header.data_offset.min(end)..end].to_vec())
    }

    fn prefetch(&self, tiles: &[&InputTile], window: usize) {
        {
            let mut ahead = self.ahead.lock().expect("no poisoning");
            ahead.window = window;
            ahead.queue = tiles
                .iter()
                .flat_map(|t| [&t.embeddings, &t.scales])
                .map(|p| p.display().to_string())
                .enumerate()
                .collect();
        }
        self.top_up();
    }
}
