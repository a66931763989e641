//! The map's embedding tiles, written by `mosaic stac` (docs/stac.md).
//!
//! Tiles follow Leaflet's `L.CRS.EPSG4326`: at zoom z a 256-pixel tile spans 180/2^z degrees
//! both ways, x counts tiles east of -180 and y tiles south of +90 (so zoom 0 has two tiles,
//! the lower half of each below -90 and empty). A tile is written, as
//! `map/tiles/{year}/{z}/{x}/{y}.png`, exactly when it touches a cell present that year in a
//! band with overviews; the page decides the same from the year's coverage image with the same
//! integer arithmetic, so it never asks for a tile that does not exist. Each tile is drawn by
//! [`Pyramids::render_size`] in the year's colours: every pixel shows the stored overview pixel
//! under its centre, from the coarsest level that is fine enough.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use indicatif::ProgressBar;
use rayon::prelude::*;

use super::catalog::{BandCoverage, StacError, write_file};
use crate::build::id_in_share;
use crate::grid::{BBox, Cell, LAT_CELLS};
use crate::hash::splitmix64;
use crate::preview::{PreviewError, Pyramids};
use crate::store::{ObjectVersion, Store, StoreError, VersionLister};
use crate::zarr::MosaicStore;

/// Width and height of a tile in pixels.
pub const TILE_SIZE: usize = 256;
/// The native maximum zoom is the first whose tile pixel is at most this many times the
/// finest stored pixel ("about" the finest pixel: at 1.1, 1.0-1.1 times).
pub const MAX_ZOOM_SLACK: f64 = 1.1;

/// Degrees spanned by a tile at zoom `z` (both ways).
pub fn tile_span(z: u32) -> f64 {
    180.0 / (1u64 << z) as f64
}

/// The lon/lat box of tile (z, x, y).
pub fn tile_bbox(z: u32, x: u64, y: u64) -> BBox {
    let s = tile_span(z);
    BBox {
        lon0: -180.0 + x as f64 * s,
        lon1: -180.0 + (x + 1) as f64 * s,
        lat0: 90.0 - (y + 1) as f64 * s,
        lat1: 90.0 - y as f64 * s,
    }
}

/// The tiles at zoom `z` a cell touches: inclusive ranges of x and y. Exact integer arithmetic
/// in units of 1/2^z cell (a tile spans 1800 of them, a cell 2^z), as the page computes it.
pub fn cell_tiles(cell: Cell, z: u32) -> ([u64; 2], [u64; 2]) {
    let (n, side) = (1u64 << z, LAT_CELLS as u64);
    let i = cell.lon_index as u64;
    let r = (LAT_CELLS - 1 - cell.lat_index) as u64; // cell rows counted from the north pole
    (
        [i * n / side, ((i + 1) * n - 1) / side],
        [r * n / side, ((r + 1) * n - 1) / side],
    )
}

/// The zoom whose tile pixel is about the finest stored pixel `finest_deg` (degrees).
pub fn native_max_zoom(finest_deg: f64) -> u32 {
    (0..40)
        .find(|&z| tile_span(z) / TILE_SIZE as f64 <= finest_deg * MAX_ZOOM_SLACK)
        .unwrap_or(40)
}

/// The tiles of each zoom `0..=max_zoom` touching any of `cells`.
pub fn tiles_of_cells<'a>(
    cells: impl IntoIterator<Item = &'a Cell>,
    max_zoom: u32,
) -> Vec<BTreeSet<(u64, u64)>> {
    let mut zooms = vec![BTreeSet::new(); max_zoom as usize + 1];
    for cell in cells {
        for (z, tiles) in zooms.iter_mut().enumerate() {
            let ([x0, x1], [y0, y1]) = cell_tiles(*cell, z as u32);
            for x in x0..=x1 {
                for y in y0..=y1 {
                    tiles.insert((x, y));
                }
            }
        }
    }
    zooms
}

/// The tiles of one year.
#[derive(Debug, Clone)]
pub struct YearTiles {
    /// The year.
    pub year: u16,
    /// Bands drawn (those with overviews that hold cells this year).
    pub bands: Vec<String>,
    /// The zoom where a tile pixel is about the finest stored pixel.
    pub native_max_zoom: u32,
    /// The deepest zoom written (`native_max_zoom`, or less with `--map-max-zoom`).
    pub max_zoom: u32,
    /// Tiles per zoom, from 0.
    pub per_zoom: Vec<usize>,
    /// Bytes of the tiles.
    pub bytes: u64,
    /// Tiles drawn by this run (the others were kept from an earlier run).
    pub rendered: usize,
}

impl YearTiles {
    /// Tiles over all zooms.
    pub fn tiles(&self) -> usize {
        self.per_zoom.iter().sum()
    }
}

fn preview_err(what: String) -> impl Fn(PreviewError) -> StacError {
    move |source| StacError::Draw {
        what: what.clone(),
        source,
    }
}

/// Tiles per side of a block: a block's tiles are drawn, then its state is written.
const BLOCK: u64 = 64;
/// Where the blocks' states are.
const STATE_PREFIX: &str = "map/tile-state/";
/// First line of a block's state.
const STATE_HEADER: &str = "tessera-mosaic map tile state 1";
/// Changes whenever the drawing does, so that every tile is drawn again.
const RENDERER: &str = "render_size nearest, PNG RGBA 8-bit, v1";

/// A tile as a block's state records it: its fingerprint (`None` while it may be being
/// written: never trusted) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Recorded {
    fingerprint: Option<String>,
    bytes: u64,
}

/// A block's state: tile (x, y) -> what was drawn.
type BlockState = BTreeMap<(u64, u64), Recorded>;

/// (year, zoom, block x, block y).
type BlockId = (u16, u32, u64, u64);

/// A zoom's blocks: (block x, block y) -> its tiles (x, y).
type ZoomBlocks = BTreeMap<(u64, u64), Vec<(u64, u64)>>;

/// Whether share `worker` (`--worker I/N`, 0-based; `None`: the whole run) draws a block: the
/// build's rule applied to (year, zoom, x, y), so shares need no coordination.
fn block_in_share((year, z, bx, by): BlockId, worker: Option<(usize, usize)>) -> bool {
    let id = (((u64::from(year) << 5) | u64::from(z)) << 40) | (bx << 20) | by;
    worker.is_none_or(|w| id_in_share(id, w))
}

fn state_key((year, z, bx, by): BlockId) -> String {
    format!("{STATE_PREFIX}{year}/{z}/{bx}-{by}.txt")
}

fn block_of_key(key: &str) -> Option<BlockId> {
    let rest = key.strip_prefix(STATE_PREFIX)?.strip_suffix(".txt")?;
    let mut parts = rest.split('/');
    let year = parts.next()?.parse().ok()?;
    let z = parts.next()?.parse().ok()?;
    let (bx, by) = parts.next()?.split_once('-')?;
    parts
        .next()
        .is_none()
        .then_some((year, z, bx.parse().ok()?, by.parse().ok()?))
}

fn tile_key(year: u16, z: u32, x: u64, y: u64) -> String {
    format!("map/tiles/{year}/{z}/{x}/{y}.png")
}

fn format_state(state: &BlockState) -> String {
    let mut text = format!("{STATE_HEADER}\n");
    for ((x, y), r) in state {
        let fp = r.fingerprint.as_deref().unwrap_or("-");
        text.push_str(&format!("{x} {y} {fp} {}\n", r.bytes));
    }
    text
}

fn parse_state(text: &str, key: &str) -> Result<BlockState, StacError> {
    let bad = |why: String| StacError::State {
        key: key.to_string(),
        why,
    };
    let mut lines = text.lines();
    if lines.next() != Some(STATE_HEADER) {
        return Err(bad(format!("the first line is not `{STATE_HEADER}`")));
    }
    let mut state = BlockState::new();
    for (n, line) in lines.enumerate() {
        let f: Vec<&str> = line.split(' ').collect();
        let parsed = match f.as_slice() {
            [x, y, fp, bytes] => x
                .parse()
                .ok()
                .zip(y.parse().ok())
                .zip(bytes.parse().ok())
                .map(|((x, y), bytes)| {
                    let fingerprint = (*fp != "-").then(|| fp.to_string());
                    ((x, y), Recorded { fingerprint, bytes })
                }),
            _ => None,
        };
        let (tile, r) = parsed.ok_or_else(|| bad(format!("line {}: `{line}`", n + 2)))?;
        state.insert(tile, r);
    }
    Ok(state)
}

/// A 128-bit hash of a sequence of byte strings (two FNV-1a streams with different offsets,
/// each mixed by SplitMix64): stable across runs, platforms and Rust versions, which a
/// fingerprint kept between runs needs.
struct Fingerprint([u64; 2]);

impl Fingerprint {
    fn new() -> Fingerprint {
        Fingerprint([0xcbf2_9ce4_8422_2325, 0x6c62_272e_07bb_0142])
    }
    fn add(&mut self, bytes: &[u8]) -> &mut Fingerprint {
        let len = (bytes.len() as u64).to_le_bytes();
        for b in len.iter().chain(bytes) {
            for (i, h) in self.0.iter_mut().enumerate() {
                *h = (*h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3 + 2 * i as u64);
            }
        }
        self
    }
    fn hex(&self) -> String {
        format!(
            "{:016x}{:016x}",
            splitmix64(self.0[0]),
            splitmix64(self.0[1] ^ 0x5851_f42d_4c95_7f2d)
        )
    }
}

/// What the map's tiles cost.
#[derive(Debug, Default)]
pub struct MapSummary {
    /// Tiles per year.
    pub years: Vec<YearTiles>,
    /// Years without tiles, with the reason.
    pub skipped: Vec<String>,
    /// Tiles removed (no longer over a present cell).
    pub removed: usize,
    /// False when the store cannot list versions of its objects: every tile was drawn.
    pub incremental: bool,
    /// Seconds spent on tiles (state, fingerprints, drawing, writing).
    pub seconds: f64,
}

impl MapSummary {
    /// Tiles drawn by this run.
    pub fn rendered(&self) -> usize {
        self.years.iter().map(|t| t.rendered).sum()
    }
    /// Tiles over all years.
    pub fn tiles(&self) -> usize {
        self.years.iter().map(YearTiles::tiles).sum()
    }
}

/// Writes the tiles: reads the blocks' states left by earlier runs, and per block draws only
/// the tiles whose fingerprint (the year's colours, the renderer, and the size and ETag or
/// modification time of every chunk the tile reads) differs from the state's, removes tiles
/// no longer wanted, and writes the block's state last. Before drawing, the block's state marks
/// the tiles about to change as untrusted, so a killed run leaves nothing a rerun believes.
pub(super) struct TileWriter<'a> {
    out: &'a Store,
    versions: Option<VersionLister>,
    location: String,
    old: BTreeMap<BlockId, String>,
    progress: Option<ProgressBar>,
    summary: MapSummary,
    share: Option<(usize, usize)>,
}

fn store_err(what: String) -> impl Fn(StoreError) -> StacError {
    move |source| StacError::Store {
        what: what.clone(),
        source: Box::new(source),
    }
}

impl<'a> TileWriter<'a> {
    /// Read the state of earlier runs in `out`; `store` is the store drawn. With `share`, only
    /// that share's blocks are drawn, kept or removed.
    pub(super) fn open(
        store: &MosaicStore,
        out: &'a Store,
        progress: Option<ProgressBar>,
        share: Option<(usize, usize)>,
    ) -> Result<TileWriter<'a>, StacError> {
        let started = std::time::Instant::now();
        let listed = out
            .list_prefix(STATE_PREFIX)
            .map_err(store_err("the map's tile state".into()))?;
        let old: BTreeMap<BlockId, String> = listed
            .into_iter()
            .filter_map(|k| block_of_key(&k).map(|b| (b, k)))
            .filter(|(b, _)| block_in_share(*b, share))
            .collect();
        let erase = |prefix: &str| {
            let p = zarrs::storage::StorePrefix::new(prefix).expect("a valid prefix");
            out.storage
                .erase_prefix(&p)
                .map_err(|source| StacError::Store {
                    what: format!("removing {prefix}"),
                    source: Box::new(StoreError::Storage {
                        location: out.location.clone(),
                        source,
                    }),
                })
        };
        // Pixel files of versions before the page read the store; tiles without a state (an
        // earlier version's, or none): nothing to trust.
        erase("map/pixels/")?;
        // Not in a share: another share's tiles may be there before any state.
        if old.is_empty() && share.is_none() {
            erase("map/tiles/")?;
        }
        let versions = store
            .store
            .version_lister()
            .map_err(store_err(format!("listing {}", store.location())))?;
        let summary = MapSummary {
            incremental: versions.is_some(),
            seconds: started.elapsed().as_secs_f64(),
            ..Default::default()
        };
        Ok(TileWriter {
            out,
            versions,
            location: store.location().to_string(),
            old,
            progress,
            summary,
            share,
        })
    }

    /// Remove the tiles of blocks no run wants any more (years or zooms gone), and return what
    /// was done.
    pub(super) fn finish(mut self) -> Result<MapSummary, StacError> {
        let started = std::time::Instant::now();
        let left: Vec<BlockId> = self.old.keys().copied().collect();
        for block in left {
            self.block(block, BTreeMap::new(), None)?;
        }
        self.summary.seconds += started.elapsed().as_secs_f64();
        Ok(self.summary)
    }

    /// Record a year without tiles.
    pub(super) fn skip(&mut self, why: String) {
        self.summary.skipped.push(why);
    }

    /// Object versions under the prefixes a year's tiles read.
    fn versions_of(
        &self,
        prefixes: &BTreeSet<String>,
    ) -> Result<Option<HashMap<String, ObjectVersion>>, StacError> {
        let Some(lister) = &self.versions else {
            return Ok(None);
        };
        let lists: Vec<BTreeMap<String, ObjectVersion>> = prefixes
            .par_iter()
            .map(|p| {
                lister
                    .list(&self.location, p)
                    .map_err(store_err(format!("listing {}/{p}", self.location)))
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(lists.into_iter().flatten().collect()))
    }

    /// Draw (or keep) the tiles of one year: `None` when no band with cells that year has
    /// overviews or colours (reported by the caller).
    pub(super) fn year(
        &mut self,
        pyramids: &Pyramids,
        entries: &[(&BandCoverage, &BTreeSet<Cell>)],
        max_zoom_cap: Option<u32>,
    ) -> Result<bool, StacError> {
        let started = std::time::Instant::now();
        let year = pyramids.year();
        let drawn: Vec<&(&BandCoverage, &BTreeSet<Cell>)> = entries
            .iter()
            .filter(|(b, _)| pyramids.bands().iter().any(|(name, _)| *name == b.name))
            .collect();
        if drawn.is_empty() {
            return Ok(false);
        }
        let finest = pyramids
            .bands()
            .iter()
            .filter(|(name, _)| drawn.iter().any(|(b, _)| b.name == *name))
            .map(|(_, l)| {
                let level = crate::zarr::overview_levels(&l.grid)[0];
                level.lat_step().min(level.lon_step())
            })
            .fold(f64::INFINITY, f64::min);
        let native = native_max_zoom(finest);
        let max_zoom = max_zoom_cap.map_or(native, |cap| cap.min(native));
        let zooms = tiles_of_cells(drawn.iter().flat_map(|(_, c)| c.iter()), max_zoom);
        let mut prefixes = BTreeSet::new();
        for z in 0..=max_zoom {
            let listed = pyramids
                .read_prefixes(tile_span(z) / TILE_SIZE as f64)
                .map_err(preview_err(format!("tiles of {year}")))?;
            prefixes.extend(listed);
        }
        let versions = self.versions_of(&prefixes)?;
        let basis = serde_json::to_vec(pyramids.basis()).expect("JSON serialises");
        let mut base = Fingerprint::new();
        base.add(RENDERER.as_bytes())
            .add(&(TILE_SIZE as u64).to_le_bytes())
            .add(&basis);
        let base = base.0;
        // Per zoom, this run's blocks (a share's, or all) and their tiles.
        let blocks: Vec<ZoomBlocks> = zooms
            .iter()
            .enumerate()
            .map(|(z, set)| {
                let mut blocks = ZoomBlocks::new();
                for &(x, y) in set {
                    let (bx, by) = (x / BLOCK, y / BLOCK);
                    if block_in_share((year, z as u32, bx, by), self.share) {
                        blocks.entry((bx, by)).or_default().push((x, y));
                    }
                }
                blocks
            })
            .collect();
        let per_zoom: Vec<usize> = blocks
            .iter()
            .map(|b| b.values().map(Vec::len).sum())
            .collect();
        if let Some(p) = &self.progress {
            p.inc_length(per_zoom.iter().sum::<usize>() as u64);
        }
        let mut tiles = YearTiles {
            year,
            bands: drawn.iter().map(|(b, _)| b.name.clone()).collect(),
            native_max_zoom: native,
            max_zoom,
            per_zoom,
            bytes: 0,
            rendered: 0,
        };
        for (z, blocks) in blocks.into_iter().enumerate() {
            let z = z as u32;
            for ((bx, by), members) in blocks {
                let fingerprints: Vec<Option<String>> = members
                    .par_iter()
                    .map(|&(x, y)| -> Result<Option<String>, StacError> {
                        let Some(versions) = &versions else {
                            return Ok(None);
                        };
                        let reads = pyramids
                            .chunks_read(tile_bbox(z, x, y), TILE_SIZE, TILE_SIZE)
                            .map_err(preview_err(format!("tile {year}/{z}/{x}/{y}")))?;
                        let mut f = Fingerprint(base);
                        for r in reads {
                            f.add(r.band.as_bytes()).add(&r.level.to_le_bytes());
                            for key in [&r.scales, &r.embeddings] {
                                f.add(key.as_bytes());
                                match versions.get(key) {
                                    Some(v) => f.add(&v.size.to_le_bytes()).add(v.tag.as_bytes()),
                                    None => f.add(b"absent"),
                                };
                            }
                        }
                        Ok(Some(f.hex()))
                    })
                    .collect::<Result<_, _>>()?;
                let wanted: BTreeMap<(u64, u64), Option<String>> =
                    members.into_iter().zip(fingerprints).collect();
                let (drawn_now, bytes) = self.block((year, z, bx, by), wanted, Some(pyramids))?;
                tiles.rendered += drawn_now;
                tiles.bytes += bytes;
            }
        }
        self.summary.seconds += started.elapsed().as_secs_f64();
        self.summary.years.push(tiles);
        Ok(true)
    }

    /// Bring one block to the `wanted` tiles (fingerprint `None`: always drawn): draw those
    /// whose state differs, remove those no longer wanted, write the state. Returns the tiles
    /// drawn and the bytes of the block's tiles.
    fn block(
        &mut self,
        id: BlockId,
        wanted: BTreeMap<(u64, u64), Option<String>>,
        pyramids: Option<&Pyramids>,
    ) -> Result<(usize, u64), StacError> {
        let (year, z, _, _) = id;
        let key = state_key(id);
        let old = match self.old.remove(&id) {
            None => BlockState::new(),
            Some(k) => {
                let bytes = self
                    .out
                    .get(&k)
                    .map_err(store_err(format!("reading {k}")))?
                    .unwrap_or_default();
                parse_state(&String::from_utf8_lossy(&bytes), &k)?
            }
        };
        let todo: Vec<(u64, u64)> = wanted
            .iter()
            .filter(|(t, fp)| {
                fp.is_none() || old.get(t).and_then(|r| r.fingerprint.as_ref()) != fp.as_ref()
            })
            .map(|(t, _)| *t)
            .collect();
        let gone: Vec<(u64, u64)> = old
            .keys()
            .filter(|t| !wanted.contains_key(t))
            .copied()
            .collect();
        let kept_bytes: u64 = wanted
            .keys()
            .filter(|t| !todo.contains(t))
            .map(|t| old[t].bytes)
            .sum();
        if todo.is_empty() && gone.is_empty() {
            if let Some(p) = &self.progress {
                p.inc(wanted.len() as u64);
            }
            return Ok((0, kept_bytes));
        }
        // Intent: the tiles about to change are untrusted until the final state is written.
        let mut intent = old.clone();
        for t in todo.iter().chain(&gone) {
            intent.insert(
                *t,
                Recorded {
                    fingerprint: None,
                    bytes: 0,
                },
            );
        }
        self.put(&key, format_state(&intent).as_bytes())?;
        for &(x, y) in &gone {
            let k = tile_key(year, z, x, y);
            self.out
                .erase(&k)
                .map_err(store_err(format!("removing {k}")))?;
        }
        self.summary.removed += gone.len();
        let drawn: Vec<((u64, u64), u64)> = match pyramids {
            None => Vec::new(),
            Some(pyramids) => todo
                .par_iter()
                .map(|&(x, y)| -> Result<((u64, u64), u64), StacError> {
                    let what = format!("tile {year}/{z}/{x}/{y}");
                    let png = pyramids
                        .render_size(tile_bbox(z, x, y), TILE_SIZE, TILE_SIZE)
                        .and_then(|p| p.image.png_bytes(&what))
                        .map_err(preview_err(what))?;
                    self.put(&tile_key(year, z, x, y), &png)?;
                    if let Some(p) = &self.progress {
                        p.inc(1);
                    }
                    Ok(((x, y), png.len() as u64))
                })
                .collect::<Result<_, _>>()?,
        };
        if let Some(p) = &self.progress {
            p.inc((wanted.len() - todo.len()) as u64);
        }
        let sizes: BTreeMap<(u64, u64), u64> = drawn.iter().copied().collect();
        let state: BlockState = wanted
            .into_iter()
            .map(|(t, fingerprint)| {
                let bytes = sizes.get(&t).copied().unwrap_or_else(|| old[&t].bytes);
                (t, Recorded { fingerprint, bytes })
            })
            .collect();
        let bytes = state.values().map(|r| r.bytes).sum();
        if state.is_empty() {
            self.out
                .erase(&key)
                .map_err(store_err(format!("removing {key}")))?;
        } else {
            self.put(&key, format_state(&state).as_bytes())?;
        }
        Ok((todo.len(), bytes))
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StacError> {
        write_file(self.out, key, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::stac::cell_at_corner as cell;

    #[test]
    fn tiles_follow_leaflet_epsg4326() {
        // Zoom 0: two tiles, west and east of 0; y = 0 spans 90 .. -90 (and the empty half).
        assert_eq!(cell_tiles(cell(-180.0, 89.9), 0), ([0, 0], [0, 0]));
        assert_eq!(cell_tiles(cell(179.9, -90.0), 0), ([1, 1], [0, 0]));
        // Zoom 1: 90-degree tiles.
        assert_eq!(cell_tiles(cell(5.9, 70.0), 1), ([2, 2], [0, 0]));
        assert_eq!(cell_tiles(cell(-0.1, -0.1), 1), ([1, 1], [1, 1]));
        // Zoom 4: tiles of 11.25 degrees = 112.5 cells: the cell 11.2..11.3 touches two.
        assert_eq!(
            cell_tiles(cell(-180.0 + 11.2, 90.0 - 11.3), 4),
            ([0, 1], [0, 1])
        );
        let b = tile_bbox(4, 1, 1);
        assert_eq!((b.lon0, b.lat1, b.lon1 - b.lon0), (-168.75, 78.75, 11.25));
        // The box of every touched tile overlaps the cell, and its neighbours' do not.
        for z in 0..14 {
            let c = cell(5.9, 70.0);
            let ([x0, x1], [y0, y1]) = cell_tiles(c, z);
            for x in x0..=x1 {
                for y in y0..=y1 {
                    let t = tile_bbox(z, x, y);
                    assert!(t.lon0 < 6.0 && t.lon1 > 5.9 && t.lat0 < 70.1 && t.lat1 > 70.0);
                }
            }
            let (e, s) = (tile_bbox(z, x1 + 1, y0), tile_bbox(z, x0, y1 + 1));
            assert!(e.lon0 >= 6.0 - 1e-9 && s.lat1 <= 70.0 + 1e-9, "zoom {z}");
        }
    }

    #[test]
    fn native_max_zoom_is_about_the_finest_pixel() {
        // Level 2 of 1170 rows per cell: 293 rows, 0.1/293 degrees.
        let finest = 0.1 / 293.0;
        let z = native_max_zoom(finest);
        assert_eq!(z, 11);
        let px = tile_span(z) / 256.0;
        assert!(px <= finest * MAX_ZOOM_SLACK && tile_span(z - 1) / 256.0 > finest * 1.1);
    }

    #[test]
    fn block_states_round_trip_and_name_what_is_wrong() {
        let mut state = BlockState::new();
        let drawn = |f: &str, bytes| Recorded {
            fingerprint: Some(f.to_string()),
            bytes,
        };
        state.insert((3, 4), drawn("00ff", 120));
        state.insert(
            (3, 5),
            Recorded {
                fingerprint: None,
                bytes: 0,
            },
        );
        state.insert((70, 1), drawn("abcd", 7));
        let text = format_state(&state);
        assert_eq!(
            text,
            format!("{STATE_HEADER}\n3 4 00ff 120\n3 5 - 0\n70 1 abcd 7\n")
        );
        assert_eq!(parse_state(&text, "k").unwrap(), state);
        let err = parse_state(
            &format!("{STATE_HEADER}\n3 4 00ff\n"),
            "map/tile-state/x.txt",
        );
        let msg = err.unwrap_err().to_string();
        assert!(
            msg.contains("map/tile-state/x.txt") && msg.contains("line 2"),
            "{msg}"
        );
        assert!(parse_state("3 4 00ff 1\n", "k").is_err());
    }

    #[test]
    fn state_keys_name_their_block() {
        let id = (2024, 11, 33, 3);
        assert_eq!(state_key(id), "map/tile-state/2024/11/33-3.txt");
        assert_eq!(block_of_key(&state_key(id)), Some(id));
        for other in [
            "map/tile-state/2024/11/33-3.txt.tmp.1.2.ab",
            "map/tile-state/2024/11/x/33-3.txt",
            "map/tiles/2024/11/33/3.png",
        ] {
            assert_eq!(block_of_key(other), None, "{other}");
        }
    }

    #[test]
    fn tiles_of_cells_counts_each_tile_once() {
        let cells = [cell(5.9, 70.0), cell(6.0, 70.0)];
        let zooms = tiles_of_cells(cells.iter(), 11);
        assert_eq!(zooms[0].len(), 1);
        assert_eq!(zooms[1].len(), 1);
        // At zoom 11 a tile spans 0.0879 degrees: 0.2 degrees of cells touch 3 x 2 tiles.
        assert_eq!(zooms[11].len(), 6);
    }
}
