//! TESSERA's global store as an input: a Zarr v3 hierarchy of UTM-zone groups, each on a 10 m
//! grid in its own zone's CRS, local or in an object store, in either published layout:
//! - dClimate's Icechunk repository: groups `01N`..`60N`, `01S`..`60S`, `embeddings` (time,
//!   northing, easting, band) int8, `scales` (time, northing, easting) float32 (NaN: not
//!   embedded), `years_complete` per group;
//! - the plain copy on Source Coop (geotessera's transcoder): groups `utm01`..`utm60`, each
//!   spanning both hemispheres, `embeddings` (time, band, y, x), `scales` (time, y, x), the
//!   hemispheres' `years_complete` under `geotessera:source_groups`. The CRS is read from the
//!   group's `proj:code` (the transcoder writes EPSG:326zz, negative northings south of the
//!   equator), the grid from its `x`/`y` pixel-centre coordinates.
//!
//! Each cell becomes one tile per year: the window of its nominal zone's group (the zone rule
//! the tiles use) that covers the cell's footprint, with a margin. The tile's geometry is that
//! window on the group's grid, so the placement (exact PROJ, nearest pixel) picks each output
//! pixel's source pixel on the group's own grid; the overlap of neighbouring groups is never
//! read for a cell of the other zone. Years missing from a group's `years_complete` are not
//! catalogued (the store reads them as fill). Adjacent groups overlap; only the nominal one is
//! read.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rayon::prelude::*;
use serde_json::Value;
use zarrs::array::{
    Array, ArrayShardedExt, ArrayShardedReadableExt, ArrayShardedReadableExtCache, CodecOptions,
};
use zarrs::group::Group;
use zarrs::storage::ReadableWritableListableStorageTraits;
use zarrs::storage::byte_range::ByteRange;

use super::catalogue::{Catalogue, InputTile, ScalesLayout, ScanError, ScanOptions, TileProblem};
use super::geotiff::U8Raster;
use super::npy::{NpyDtype, NpyHeader};
use super::source::TileSource;
use super::zone_axes::{axis_edge, false_northing, pixel_major, time_years, years_complete};
use super::zone_cache::{ChunkCache, Kind};
use crate::error::chain;
use crate::grid::{CHANNELS, Cell, PIXEL_M, TileGeometry, UtmZone};
use crate::store::{Intercept, ReadMetrics, Store, StoreOptions, count_reads};

pub(super) type ZarrArray = Array<dyn ReadableWritableListableStorageTraits>;

/// Pixels added around a cell's footprint: a parallel bulges less than 2 m from the chord
/// between the projected corners over 0.1 degree, so one pixel would do; two leave room.
const MARGIN_PX: i64 = 2;

/// The name of a zone's group in the published repository: `33N`, `07S`.
pub fn zone_group_name(zone: UtmZone) -> String {
    format!("{:02}{}", zone.zone, if zone.south { 'S' } else { 'N' })
}

/// One zone group: its grid, its years and its arrays.
struct ZoneGroup {
    name: String,
    /// A number per group, for the chunk cache and the read order.
    id: u16,
    /// The CRS of its grid (from `proj:code`).
    crs: UtmZone,
    /// Easting of the west edge of column 0, metres.
    west: f64,
    /// Northing of the north edge of row 0, metres.
    north: f64,
    rows: u64,
    cols: u64,
    /// The time axis, as years.
    years: Vec<u16>,
    /// `years_complete` of the northern and southern hemisphere (the same set for a group of
    /// one hemisphere).
    complete: [BTreeSet<u16>; 2],
    embeddings: Source,
    scales: Source,
    counts: Option<Source>,
}

/// One array of a group, with its shard indexes (cached) and its inner chunk's rows and columns.
struct Source {
    array: ZarrArray,
    shards: ArrayShardedReadableExtCache,
    chunk: (u64, u64),
    /// (time, band, y, x) embeddings: chunks are transposed to pixel-major when decoded.
    band_major: bool,
}

impl Source {
    fn new(array: ZarrArray, band_major: bool) -> Result<Source, String> {
        let shape: Vec<u64> = match array.effective_subchunk_shape() {
            Some(s) => s.iter().map(|v| v.get()).collect(),
            None => array
                .chunk_shape(&vec![0; array.dimensionality()])
                .map_err(|e| chain(&e))?
                .iter()
                .map(|v| v.get())
                .collect(),
        };
        let chunk = if band_major {
            (shape[2], shape[3])
        } else {
            (shape[1], shape[2])
        };
        Ok(Source {
            shards: ArrayShardedReadableExtCache::new(&array),
            chunk,
            band_major,
            array,
        })
    }
}

/// Where a catalogued tile's pixels are: a group, a time index and a window.
#[derive(Debug, Clone, Copy)]
struct Window {
    zone: UtmZone,
    time: u64,
    row0: u64,
    col0: u64,
    rows: u64,
    cols: u64,
}

/// The distinct (key, byte range) pairs read and their bytes: what the reads would have cost
/// had each byte been fetched once.
#[derive(Default)]
struct Distinct {
    seen: BTreeSet<(String, ByteRange)>,
    bytes: u64,
}

/// The zone store at a location.
pub struct ZoneStore {
    store: Store,
    cache: ChunkCache,
    metrics: Arc<ReadMetrics>,
    distinct: Arc<Mutex<Distinct>>,
    groups: Mutex<HashMap<UtmZone, Option<Arc<ZoneGroup>>>>,
    /// The window of every catalogued tile, by its embeddings "path".
    windows: RwLock<HashMap<PathBuf, Window>>,
    /// Every group with catalogued tiles has `s2_obs_count` (set by the catalogue).
    counts: AtomicBool,
}

/// Errors opening a zone store.
#[derive(Debug, thiserror::Error)]
pub enum ZoneStoreError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("zone store {location}: no zarr.json at its root")]
    NotZarr { location: String },
}

impl ZoneStore {
    /// Open the store at `location` (a folder or URL with a root `zarr.json`), keeping up to
    /// `cache_bytes` of decoded source chunks.
    pub fn open(
        location: &str,
        options: &StoreOptions,
        cache_bytes: usize,
    ) -> Result<ZoneStore, ZoneStoreError> {
        let store = Store::open_with(location, options)?;
        if !store.exists("zarr.json")? {
            return Err(ZoneStoreError::NotZarr {
                location: location.to_string(),
            });
        }
        let distinct = Arc::new(Mutex::new(Distinct::default()));
        let (seen, inner) = (distinct.clone(), store.storage.clone());
        let watched = Intercept::new(&store)
            .on_read(move |key, ranges| {
                let mut d = seen.lock().expect("no poisoning");
                for r in ranges {
                    if d.seen.insert((key.as_str().to_string(), *r)) {
                        d.bytes += match *r {
                            ByteRange::FromStart(_, Some(n)) | ByteRange::Suffix(n) => n,
                            ByteRange::FromStart(o, None) => inner
                                .size_key(key)
                                .ok()
                                .flatten()
                                .unwrap_or(0)
                                .saturating_sub(o),
                        };
                    }
                }
            })
            .into_store(&store.location);
        let (store, metrics) = count_reads(&watched);
        Ok(ZoneStore {
            store,
            cache: ChunkCache::new(cache_bytes),
            metrics,
            distinct,
            groups: Mutex::default(),
            windows: RwLock::default(),
            counts: AtomicBool::new(false),
        })
    }

    /// True when `location` is a local folder holding a Zarr hierarchy (a root `zarr.json`).
    pub fn is_local_zarr(location: &str) -> bool {
        Path::new(location.trim_start_matches("file://"))
            .join("zarr.json")
            .is_file()
    }

    /// Bytes fetched from the store so far (metadata, shard indexes and chunks), and the bytes
    /// of the distinct ranges among them (each byte counted once).
    pub fn bytes_fetched(&self) -> (u64, u64) {
        (
            self.metrics.bytes_read() as u64,
            self.distinct.lock().expect("no poisoning").bytes,
        )
    }

    /// The group holding a zone and hemisphere, opened once: `33N`, else `utm33` (both
    /// hemispheres); `None` when the store has neither.
    fn group(&self, zone: UtmZone) -> Result<Option<Arc<ZoneGroup>>, String> {
        let mut groups = self.groups.lock().expect("no poisoning");
        if let Some(g) = groups.get(&zone) {
            return Ok(g.clone());
        }
        let other = UtmZone {
            south: !zone.south,
            ..zone
        };
        let exists = |name: &str| {
            self.store
                .exists(&format!("{name}/zarr.json"))
                .map_err(|e| chain(&e))
        };
        let name = zone_group_name(zone);
        let utm = format!("utm{:02}", zone.zone);
        let g = if exists(&name)? {
            let id = u16::from(zone.zone) * 2 + u16::from(zone.south);
            Some(self.open_group(zone, &name, id, false)?)
        } else if let Some(Some(g)) = groups
            .get(&other)
            .filter(|g| g.as_ref().is_some_and(|g| g.name == utm))
        {
            Some(g.clone())
        } else if exists(&utm)? {
            Some(self.open_group(zone, &utm, u16::from(zone.zone) * 2, true)?)
        } else {
            None
        };
        groups.insert(zone, g.clone());
        Ok(g)
    }

    /// Open a group: `name` (`33N`, or `utm33` when `both` hemispheres share it), numbered `id`.
    fn open_group(
        &self,
        zone: UtmZone,
        name: &str,
        id: u16,
        both: bool,
    ) -> Result<Arc<ZoneGroup>, String> {
        self.read_group(zone, name, id, both)
            .map(Arc::new)
            .map_err(|e| format!("zone group {}/{name}: {e}", self.store.location))
    }

    fn read_group(
        &self,
        zone: UtmZone,
        name: &str,
        id: u16,
        both: bool,
    ) -> Result<ZoneGroup, String> {
        let storage = self.store.storage.clone();
        let group = Group::open(storage.clone(), &format!("/{name}")).map_err(|e| chain(&e))?;
        let attrs = group.attributes();
        let code = attrs
            .get("proj:code")
            .or_else(|| attrs.get("crs"))
            .and_then(Value::as_str);
        // The CRS as the group states it: one hemisphere's group must be in the zone rule's;
        // a group of both may be in either hemisphere's form of the zone (the transcoder
        // writes the northern one).
        let crs = code
            .and_then(|c| c.strip_prefix("EPSG:"))
            .and_then(|c| c.parse::<u32>().ok())
            .and_then(|epsg| {
                let (south, z) = match epsg {
                    32601..=32660 => (false, epsg - 32600),
                    32701..=32760 => (true, epsg - 32700),
                    _ => return None,
                };
                Some(UtmZone {
                    zone: z as u8,
                    south,
                })
            });
        let crs = match crs {
            Some(c) if c == zone || (both && c.zone == zone.zone) => c,
            _ => {
                return Err(format!(
                    "proj:code is {code:?}, but the zone rule gives EPSG:{} for this group",
                    zone.epsg()
                ));
            }
        };
        let complete = if both {
            // geotessera:source_groups: {"33N": {years_complete, ...}, "33S": {...}}; a
            // hemisphere not listed has no year.
            let groups = attrs
                .get("geotessera:source_groups")
                .and_then(Value::as_object)
                .ok_or("no geotessera:source_groups attribute (the hemispheres' years_complete)")?;
            let years = |south: bool| -> Result<BTreeSet<u16>, String> {
                let hemisphere = zone_group_name(UtmZone { south, ..zone });
                match groups.get(&hemisphere) {
                    None => Ok(BTreeSet::new()),
                    Some(g) => years_complete(g)
                        .map_err(|e| format!("geotessera:source_groups.{hemisphere}: {e}")),
                }
            };
            [years(false)?, years(true)?]
        } else {
            let years = years_complete(&Value::Object(attrs.clone()))?;
            [years.clone(), years]
        };
        let open = |a: &str| {
            Array::open(storage.clone(), &format!("/{name}/{a}"))
                .map_err(|e| format!("array {a}: {}", chain(&e)))
        };
        let embeddings = open("embeddings")?;
        let scales = open("scales")?;
        let dims = |a: &ZarrArray| -> Vec<String> {
            a.dimension_names()
                .iter()
                .flatten()
                .map(|d| d.clone().unwrap_or_default())
                .collect()
        };
        // (northing, easting) in the Icechunk layout, (y, x) in the transcoder's.
        let (y, x) = if dims(&scales) == ["time", "northing", "easting"] {
            ("northing", "easting")
        } else if dims(&scales) == ["time", "y", "x"] {
            ("y", "x")
        } else {
            return Err(format!(
                "scales has dimensions {:?}, expected (time, northing, easting) or (time, y, x)",
                dims(&scales)
            ));
        };
        let band_major = if dims(&embeddings) == ["time", y, x, "band"] {
            false
        } else if dims(&embeddings) == ["time", "band", y, x] {
            true
        } else {
            return Err(format!(
                "embeddings has dimensions {:?}, expected (time, {y}, {x}, band) or (time, band, {y}, {x})",
                dims(&embeddings)
            ));
        };
        let shape = embeddings.shape().to_vec();
        let (bands, grid) = if band_major {
            (shape[1], [shape[0], shape[2], shape[3]])
        } else {
            (shape[3], [shape[0], shape[1], shape[2]])
        };
        if bands != CHANNELS as u64 || scales.shape() != grid {
            return Err(format!(
                "embeddings shape {shape:?} and scales shape {:?} disagree (or not {CHANNELS} bands)",
                scales.shape()
            ));
        }
        let counts = match open("s2_obs_count") {
            Ok(a) if dims(&a) == dims(&scales) && a.shape() == grid => Some(Source::new(a, false)?),
            Ok(a) => {
                return Err(format!(
                    "s2_obs_count has dimensions {:?} and shape {:?}, unlike scales",
                    dims(&a),
                    a.shape()
                ));
            }
            Err(_) => None,
        };
        let (rows, cols) = (grid[1], grid[2]);
        let west = axis_edge(&open(x)?, cols, PIXEL_M, x)?;
        let north = axis_edge(&open(y)?, rows, -PIXEL_M, y)?;
        let years = time_years(&open("time")?)?;
        if years.len() as u64 != grid[0] {
            return Err(format!(
                "time has {} values but embeddings {} steps",
                years.len(),
                grid[0]
            ));
        }
        Ok(ZoneGroup {
            name: name.to_string(),
            id,
            crs,
            west,
            north,
            rows,
            cols,
            years,
            complete,
            embeddings: Source::new(embeddings, band_major)?,
            scales: Source::new(scales, false)?,
            counts,
        })
    }

    /// The window of `group` covering the footprint of `rule` (the cell's tile by the rule),
    /// with a margin, clipped to the group; `None` when they do not meet.
    fn window(group: &ZoneGroup, rule: &TileGeometry) -> Option<(u64, u64, u64, u64)> {
        // The rule's northings in the group's CRS: the two hemispheres' forms of a zone differ
        // by the false northing alone.
        let origin_n = rule.origin_n + false_northing(group.crs) - false_northing(rule.zone);
        let rule = &TileGeometry { origin_n, ..*rule };
        let c0 = ((rule.origin_e - group.west) / PIXEL_M).floor() as i64 - MARGIN_PX;
        let c1 = ((rule.origin_e + PIXEL_M * rule.width as f64 - group.west) / PIXEL_M).ceil()
            as i64
            + MARGIN_PX;
        let r0 = ((group.north - rule.origin_n) / PIXEL_M).floor() as i64 - MARGIN_PX;
        let r1 = ((group.north - rule.origin_n + PIXEL_M * rule.height as f64) / PIXEL_M).ceil()
            as i64
            + MARGIN_PX;
        let (c0, c1) = (c0.max(0), c1.min(group.cols as i64));
        let (r0, r1) = (r0.max(0), r1.min(group.rows as i64));
        (c0 < c1 && r0 < r1).then_some((r0 as u64, c0 as u64, (r1 - r0) as u64, (c1 - c0) as u64))
    }

    /// Keys of the `scales` shards that exist for a time index (listed once per group).
    fn existing_shards(&self, group: &ZoneGroup) -> Result<BTreeSet<String>, String> {
        Ok(self
            .store
            .list_prefix(&format!("{}/scales/", group.name))
            .map_err(|e| chain(&e))?
            .into_iter()
            .collect())
    }

    fn window_of(&self, path: &Path) -> Result<(Window, Arc<ZoneGroup>), TileProblem> {
        let w = *self
            .windows
            .read()
            .expect("no poisoning")
            .get(path)
            .ok_or_else(|| TileProblem::new(path, "not catalogued"))?;
        let g = self
            .group(w.zone)
            .map_err(|e| TileProblem::new(path, e))?
            .ok_or_else(|| TileProblem::new(path, "zone group missing"))?;
        Ok((w, g))
    }

    /// The first `rows` rows of a window of one array, in C order (row, column[, band]), read
    /// chunk by chunk through the cache. Bytes are little-endian, as decoded.
    fn read_window(
        &self,
        g: &ZoneGroup,
        kind: Kind,
        w: &Window,
        rows: u64,
    ) -> Result<Vec<u8>, String> {
        let (source, px) = match kind {
            Kind::Embeddings => (&g.embeddings, CHANNELS),
            Kind::Scales => (&g.scales, 4),
            Kind::Counts => (g.counts.as_ref().ok_or("no s2_obs_count")?, 2),
        };
        let (sr, sc) = source.chunk;
        let (r0, c0) = (w.row0, w.col0);
        let (r1, c1) = (w.row0 + rows, w.col0 + w.cols);
        let mut out = vec![0u8; (rows * w.cols) as usize * px];
        let options = CodecOptions::default();
        // The shard indexes kept: about 1 KB each; dropped now and then to bound them.
        if source.shards.len() > 4096 {
            source.shards.clear();
        }
        for i in r0 / sr..=(r1 - 1) / sr {
            for j in c0 / sc..=(c1 - 1) / sc {
                let chunk = self.cache.get((g.id, kind, w.time, i, j), || {
                    let fail = |e: zarrs::array::ArrayError| {
                        format!("{} chunk ({}, {i}, {j}): {}", g.name, w.time, chain(&e))
                    };
                    let opts = &options;
                    Ok(match kind {
                        Kind::Embeddings if source.band_major => {
                            let v: Vec<i8> = source
                                .array
                                .retrieve_subchunk_opt(&source.shards, &[w.time, 0, i, j], opts)
                                .map_err(fail)?;
                            pixel_major(&v, (sr * sc) as usize)
                        }
                        Kind::Embeddings => {
                            let v: Vec<i8> = source
                                .array
                                .retrieve_subchunk_opt(&source.shards, &[w.time, i, j, 0], opts)
                                .map_err(fail)?;
                            bytemuck::cast_vec(v)
                        }
                        Kind::Scales => {
                            let v: Vec<f32> = source
                                .array
                                .retrieve_subchunk_opt(&source.shards, &[w.time, i, j], opts)
                                .map_err(fail)?;
                            v.iter().flat_map(|x| x.to_le_bytes()).collect()
                        }
                        Kind::Counts => {
                            let v: Vec<u16> = source
                                .array
                                .retrieve_subchunk_opt(&source.shards, &[w.time, i, j], opts)
                                .map_err(fail)?;
                            v.iter().flat_map(|x| x.to_le_bytes()).collect()
                        }
                    })
                })?;
                let (rlo, rhi) = ((i * sr).max(r0), ((i + 1) * sr).min(r1));
                let (clo, chi) = ((j * sc).max(c0), ((j + 1) * sc).min(c1));
                let len = (chi - clo) as usize * px;
                for r in rlo..rhi {
                    let src = (((r - i * sr) * sc + (clo - j * sc)) as usize) * px;
                    let dst = (((r - r0) * w.cols + (clo - c0)) as usize) * px;
                    out[dst..dst + len].copy_from_slice(&chunk[src..src + len]);
                }
            }
        }
        Ok(out)
    }
}

impl TileSource for ZoneStore {
    fn describe(&self) -> String {
        format!("zone store {}", self.store.location)
    }

    fn catalogue(&self, options: &ScanOptions) -> Result<Catalogue, ScanError> {
        let remote = |message: String| ScanError::Remote {
            location: self.store.location.clone(),
            message,
        };
        let lat_range = options.lat_index_range.clone().unwrap_or(0..1800);
        let cells: Vec<Cell> = lat_range
            .flat_map(|lat| (0..3600u16).filter_map(move |lon| Cell::new(lon, lat)))
            .collect();
        let mut by_zone: BTreeMap<UtmZone, Vec<Cell>> = BTreeMap::new();
        for c in cells {
            by_zone.entry(UtmZone::for_cell(c)).or_default().push(c);
        }
        let mut catalogue = Catalogue {
            root: PathBuf::from(&self.store.location),
            ..Default::default()
        };
        let mut windows = HashMap::new();
        let mut found_any = false;
        let mut counts = true;
        for (zone, cells) in by_zone {
            let Some(group) = self.group(zone).map_err(remote)? else {
                continue;
            };
            found_any = true;
            counts &= group.counts.is_some();
            let shards = self.existing_shards(&group).map_err(remote)?;
            let years: Vec<(u64, u16)> = group
                .years
                .iter()
                .enumerate()
                .filter(|(_, y)| group.complete[usize::from(zone.south)].contains(y))
                .filter(|(_, y)| options.years.is_empty() || options.years.contains(y))
                .map(|(t, y)| (t as u64, *y))
                .collect();
            let shard = group
                .scales
                .array
                .chunk_shape(&[0, 0, 0])
                .map_err(|e| remote(chain(&e)))?;
            let (sr, sc) = (shard[1].get(), shard[2].get());
            let found: Vec<_> = cells
                .par_iter()
                .filter_map(|&cell| {
                    if let Some(p) = &options.progress {
                        p.inc(1);
                    }
                    let rule = TileGeometry::for_cell(cell).ok()?;
                    let (r0, c0, h, w) = Self::window(&group, &rule)?;
                    Some((cell, rule, (r0, c0, h, w)))
                })
                .collect();
            for (cell, rule, (r0, c0, h, w)) in found {
                // On the group's grid, in the group's CRS (placement projects into it).
                let geometry = TileGeometry {
                    cell,
                    zone: group.crs,
                    origin_e: group.west + PIXEL_M * c0 as f64,
                    origin_n: group.north - PIXEL_M * r0 as f64,
                    height: h as usize,
                    width: w as usize,
                };
                debug_assert_eq!(rule.zone, zone);
                for &(t, year) in &years {
                    // A cell whose window meets no stored shard of the year holds nothing.
                    let present = (r0 / sr..=(r0 + h - 1) / sr).any(|i| {
                        (c0 / sc..=(c0 + w - 1) / sc).any(|j| {
                            shards.contains(group.scales.array.chunk_key(&[t, i, j]).as_str())
                        })
                    });
                    if !present {
                        continue;
                    }
                    let path = PathBuf::from(format!(
                        "{}/{}/embeddings[{year}]/{}",
                        self.store.location,
                        group.name,
                        cell.name()
                    ));
                    let scales = PathBuf::from(format!(
                        "{}/{}/scales[{year}]/{}",
                        self.store.location,
                        group.name,
                        cell.name()
                    ));
                    let window = Window {
                        zone,
                        time: t,
                        row0: r0,
                        col0: c0,
                        rows: h,
                        cols: w,
                    };
                    windows.insert(path.clone(), window);
                    windows.insert(scales.clone(), window);
                    catalogue.geometry.insert(cell, geometry);
                    // By group, then cell rows north to south, then west to east.
                    let zone_index = u64::from(group.id);
                    catalogue.read_order.insert(
                        cell,
                        (zone_index << 32)
                            | (u64::from(1800 - cell.lat_index) << 16)
                            | u64::from(cell.lon_index),
                    );
                    catalogue.years.entry(year).or_default().insert(
                        cell,
                        InputTile {
                            year,
                            cell,
                            embeddings: path,
                            scales,
                            scales_layout: ScalesLayout::PerPixel,
                            height: h as usize,
                            width: w as usize,
                            bytes: h * w * (CHANNELS as u64 + 4),
                        },
                    );
                }
            }
        }
        if !found_any {
            return Err(remote(
                "no zone group (01N..60N, 01S..60S, or utm01..utm60) covers the cells asked for"
                    .into(),
            ));
        }
        *self.windows.write().expect("no poisoning") = windows;
        self.counts.store(counts, Ordering::Relaxed);
        Ok(catalogue)
    }

    fn read_embeddings(
        &self,
        tile: &InputTile,
        buf: &mut Vec<u8>,
    ) -> Result<NpyHeader, TileProblem> {
        let (w, g) = self.window_of(&tile.embeddings)?;
        *buf = self
            .read_window(&g, Kind::Embeddings, &w, w.rows)
            .map_err(|e| TileProblem::new(&tile.embeddings, e))?;
        Ok(NpyHeader {
            dtype: NpyDtype::Int8,
            shape: vec![w.rows as usize, w.cols as usize, CHANNELS],
            data_offset: 0,
        })
    }

    fn read_scales(&self, tile: &InputTile) -> Result<(NpyHeader, Vec<u8>), TileProblem> {
        let (w, g) = self.window_of(&tile.scales)?;
        let data = self
            .read_window(&g, Kind::Scales, &w, w.rows)
            .map_err(|e| TileProblem::new(&tile.scales, e))?;
        Ok((
            NpyHeader {
                dtype: NpyDtype::Float32,
                shape: vec![w.rows as usize, w.cols as usize],
                data_offset: 0,
            },
            data,
        ))
    }

    fn bytes_fetched(&self) -> Option<(u64, u64)> {
        Some(ZoneStore::bytes_fetched(self))
    }

    fn all_nan_is_no_data(&self) -> bool {
        true
    }

    fn has_counts(&self) -> bool {
        self.counts.load(Ordering::Relaxed)
    }

    fn read_counts(&self, tile: &InputTile) -> Result<Option<Vec<u16>>, TileProblem> {
        let (w, g) = self.window_of(&tile.embeddings)?;
        if g.counts.is_none() {
            return Ok(None);
        }
        let bytes = self
            .read_window(&g, Kind::Counts, &w, w.rows)
            .map_err(|e| TileProblem::new(&tile.embeddings, e))?;
        Ok(Some(
            bytes
                .chunks_exact(2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
                .collect(),
        ))
    }

    fn read_landmask(&self, path: &Path) -> Result<U8Raster, TileProblem> {
        Err(TileProblem::new(
            path,
            "a zone store has no landmasks (its scales are NaN where not embedded)",
        ))
    }

    fn read_data_prefix(&self, path: &Path, max: usize) -> Result<Vec<u8>, TileProblem> {
        let (w, g) = self.window_of(path)?;
        let rows = (max as u64 / (w.cols * CHANNELS as u64)).clamp(1, w.rows);
        let mut data = self
            .read_window(&g, Kind::Embeddings, &w, rows)
            .map_err(|e| TileProblem::new(path, e))?;
        data.truncate(max);
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names() {
        let z = |zone, south| zone_group_name(UtmZone { zone, south });
        assert_eq!(z(1, false), "01N");
        assert_eq!(z(33, false), "33N");
        assert_eq!(z(60, true), "60S");
    }
}
