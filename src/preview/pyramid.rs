//! Pictures of any lon/lat box, across band edges, read from the overview pyramids and coloured
//! with the year's colour basis: what `mosaic preview --bbox` and the map's tiles draw.
//!
//! Each band is read at the coarsest level whose pixels are no larger than the picture's, so
//! the bytes read follow the picture's size, not the band's. Each picture pixel shows the
//! stored pixel under its centre (nearest, as every level is made).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;

use super::{Image, PreviewError};
use crate::grid::{BBox, CHANNELS, Cell};
use crate::overview::{ColourBasis, colour_basis};
use crate::zarr::{
    BandLayout, EMBEDDINGS, MosaicStore, OverviewLevel, SCALES, StoreArray, level_array,
    overview_levels,
};

/// Picture pixels and their colours, as one chunk gives them.
type Coloured = Vec<(usize, [u8; 3])>;

/// A band as a picture reads it: the level chosen and its arrays.
struct BandLevel {
    band: String,
    layout: BandLayout,
    level: OverviewLevel,
    embeddings: Arc<StoreArray>,
    scales: Arc<StoreArray>,
}

/// Where a picture's rows and columns read (see `Pyramids::pixel_sources`).
struct PixelSources {
    /// Per row: band index, chunk row, row in the chunk.
    rows: Vec<Option<(usize, u64, usize)>>,
    /// Per band, per column: chunk column, column in the chunk.
    cols: Vec<Vec<(u64, usize)>>,
}

/// One chunk a picture reads (see [`Pyramids::chunks_read`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRead {
    /// The band.
    pub band: String,
    /// The overview level read.
    pub level: u32,
    /// Store key of the `scales` chunk.
    pub scales: String,
    /// Store key of the `embeddings` chunk.
    pub embeddings: String,
}

/// What a picture shows and where it came from.
pub struct Picture {
    /// The image (north up, transparent where no data).
    pub image: Image,
    /// The year shown.
    pub year: u16,
    /// The box drawn (the image's edges).
    pub bbox: BBox,
    /// The overview level read in each band.
    pub levels: Vec<(String, u32)>,
    /// The colours used.
    pub basis: ColourBasis,
}

/// Bands with overviews that overlap the latitudes of a box, and their layouts.
fn bands_in(store: &MosaicStore, bbox: &BBox) -> Result<Vec<(String, BandLayout)>, PreviewError> {
    let mut out = Vec::new();
    for band in store.bands()? {
        let Some(layout) = store.band_layout(&band)? else {
            continue;
        };
        let g = &layout.grid;
        if g.lat_max() <= bbox.lat0 || g.lat_min() >= bbox.lat1 || !store.has_overviews(&band)? {
            continue;
        }
        out.push((band, layout));
    }
    Ok(out)
}

/// The latest year of the bands in a box (the default year of a picture).
pub fn latest_year(store: &MosaicStore, bbox: &BBox) -> Result<Option<u16>, PreviewError> {
    Ok(latest_year_of(&bands_in(store, bbox)?))
}

fn latest_year_of(bands: &[(String, BandLayout)]) -> Option<u16> {
    bands.iter().map(|(_, l)| l.first_year + l.years - 1).max()
}

/// Render a box in a year's colours from the overview pyramids (see [`Pyramids::render`]).
pub fn render_box(
    store: &MosaicStore,
    bbox: BBox,
    year: Option<u16>,
    max_width: usize,
) -> Result<Picture, PreviewError> {
    Pyramids::open(store, &bbox, year)?.render(bbox, max_width)
}

/// One cell at a band's finest overview level (a pixel is a copy of a source pixel).
pub struct CellPixels {
    /// The level read (rows and columns per cell).
    pub level: OverviewLevel,
    /// Scales, `rows_per_cell x cols_per_cell`, rows south to north; NaN = no data.
    pub scales: Vec<f32>,
    /// Embeddings, the same pixels with [`CHANNELS`] channels each.
    pub embeddings: Vec<i8>,
}

/// The pyramids of the bands in a latitude range and a year's colours, opened once to draw
/// many pictures (the map's tiles).
pub struct Pyramids {
    bands: Vec<(String, BandLayout)>,
    year: u16,
    basis: ColourBasis,
    store: MosaicStore,
    /// Level arrays opened so far, by path: a map draws thousands of tiles from the same few
    /// arrays, and opening one reads its metadata (a request, on an object store).
    opened: Mutex<BTreeMap<String, Arc<StoreArray>>>,
    /// Chunks decoded lately: neighbouring map tiles read the same chunks (a zoom-11 tile
    /// reads up to 4 cells' finest chunks, each read by up to 4 tiles).
    decoded: Mutex<ChunkCache>,
}

/// A decoded chunk: scales and embeddings, `None` when it holds no data.
type Decoded = Arc<Option<(Vec<f32>, Vec<i8>)>>;

/// Decoded chunks, the oldest dropped first beyond [`ChunkCache::BYTES`].
#[derive(Default)]
struct ChunkCache {
    chunks: BTreeMap<(String, u32, [u64; 3]), Decoded>,
    order: std::collections::VecDeque<(String, u32, [u64; 3])>,
    bytes: usize,
}

impl ChunkCache {
    /// Bytes kept: 64 finest-level chunks of band 70-80, 24 at the equator.
    const BYTES: usize = 256 << 20;

    fn size(d: &Decoded) -> usize {
        d.as_ref()
            .as_ref()
            .map_or(0, |(s, e)| s.len() * 4 + e.len())
    }

    fn insert(&mut self, key: (String, u32, [u64; 3]), value: Decoded) {
        if self.chunks.contains_key(&key) {
            return;
        }
        self.bytes += Self::size(&value);
        self.chunks.insert(key.clone(), value);
        self.order.push_back(key);
        while self.bytes > Self::BYTES
            && let Some(old) = self.order.pop_front()
        {
            if let Some(v) = self.chunks.remove(&old) {
                self.bytes -= Self::size(&v);
            }
        }
    }
}

impl Pyramids {
    /// The bands with overviews overlapping the latitudes of `bbox`, and the colours of `year`
    /// (default: the latest year of those bands).
    pub fn open(
        store: &MosaicStore,
        bbox: &BBox,
        year: Option<u16>,
    ) -> Result<Pyramids, PreviewError> {
        let bands = bands_in(store, bbox)?;
        if bands.is_empty() {
            return Err(PreviewError::Empty(format!(
                "no band with overviews overlaps latitudes {}..{} in {}",
                bbox.lat0,
                bbox.lat1,
                store.location()
            )));
        }
        let year = match year {
            Some(y) => y,
            // From the layouts just read: each band group document is ~150 KB.
            None => latest_year_of(&bands).expect("bands"),
        };
        let basis = colour_basis(store, year)?.ok_or_else(|| {
            PreviewError::Empty(format!(
                "no colour statistics for {year} in {} (no band built with overviews holds that year)",
                store.location()
            ))
        })?;
        Ok(Pyramids {
            bands,
            year,
            basis,
            store: store.clone(),
            opened: Mutex::default(),
            decoded: Mutex::default(),
        })
    }

    /// The colours used.
    pub fn basis(&self) -> &ColourBasis {
        &self.basis
    }

    /// The year drawn.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// The bands drawn (those with overviews), with their layouts.
    pub fn bands(&self) -> &[(String, BandLayout)] {
        &self.bands
    }

    /// One cell of a band at the finest overview level in the year: its rows and columns per
    /// cell, scales (rows south to north, row-major) and embeddings (128 channels per pixel).
    pub fn finest_cell(&self, band: &str, cell: Cell) -> Result<CellPixels, PreviewError> {
        let (_, layout) = self
            .bands
            .iter()
            .find(|(b, _)| b == band)
            .ok_or_else(|| PreviewError::Empty(format!("band {band} has no overviews")))?;
        let y = layout.year_index(self.year).ok_or_else(|| {
            PreviewError::Empty(format!("year {} is not in band {band}", self.year))
        })?;
        let level = overview_levels(&layout.grid)[0];
        let (row, col) = layout.grid.cell_shard(cell);
        let what = format!("{band} overview level {} cell {}", level.level, cell.name());
        let (a, c) = (row as u64, col as u64);
        let scales: Vec<f32> = self
            .open_array(band, level.level, SCALES)?
            .retrieve_chunk(&[y, a, c])
            .map_err(PreviewError::read(&what))?;
        let embeddings: Vec<i8> = self
            .open_array(band, level.level, EMBEDDINGS)?
            .retrieve_chunk(&[y, a, c, 0])
            .map_err(PreviewError::read(what))?;
        Ok(CellPixels {
            level,
            scales,
            embeddings,
        })
    }

    fn open_array(
        &self,
        band: &str,
        level: u32,
        name: &str,
    ) -> Result<Arc<StoreArray>, PreviewError> {
        let path = format!("/{band}/{}", level_array(level, name));
        let mut opened = self.opened.lock().expect("not poisoned");
        if let Some(array) = opened.get(&path) {
            return Ok(array.clone());
        }
        let array = self.store.open_array(&path)?;
        let array = Arc::new(array);
        opened.insert(path, array.clone());
        Ok(array)
    }

    /// A chunk of `band` at `level`, from the cache or decoded by `read` (and kept).
    fn decoded(
        &self,
        band: &str,
        level: u32,
        indices: [u64; 3],
        read: impl FnOnce() -> Result<Option<(Vec<f32>, Vec<i8>)>, PreviewError>,
    ) -> Result<Decoded, PreviewError> {
        let key = (band.to_string(), level, indices);
        if let Some(hit) = self.decoded.lock().expect("not poisoned").chunks.get(&key) {
            return Ok(hit.clone());
        }
        let value: Decoded = Arc::new(read()?);
        self.decoded
            .lock()
            .expect("not poisoned")
            .insert(key, value.clone());
        Ok(value)
    }

    /// Bands overlapping the latitudes of a box that hold the year.
    fn bands_over(&self, bbox: &BBox) -> Result<Vec<(String, BandLayout)>, PreviewError> {
        let bands: Vec<(String, BandLayout)> = self
            .bands
            .iter()
            .filter(|(_, l)| l.grid.lat_max() > bbox.lat0 && l.grid.lat_min() < bbox.lat1)
            .filter(|(_, l)| l.year_index(self.year).is_some())
            .cloned()
            .collect();
        if bands.is_empty() {
            return Err(PreviewError::Empty(format!(
                "no band with overviews of {} overlaps latitudes {}..{}",
                self.year, bbox.lat0, bbox.lat1
            )));
        }
        Ok(bands)
    }

    /// Render a box, at most `max_width` pixels wide and high, in square degrees (plate
    /// carrée, as the map draws EPSG:4326); no finer than the finest overview level.
    pub fn render(&self, bbox: BBox, max_width: usize) -> Result<Picture, PreviewError> {
        let bands = self.bands_over(&bbox)?;
        let (w_deg, h_deg) = (bbox.lon_width(), bbox.lat1 - bbox.lat0);
        // Finest pixel any band offers: the picture is no finer.
        let finest = bands
            .iter()
            .map(|(_, l)| overview_levels(&l.grid)[0].lon_step())
            .fold(f64::INFINITY, f64::min);
        let deg = (w_deg.max(h_deg) / max_width.max(1) as f64).max(finest);
        let width = ((w_deg / deg).round() as usize).max(1);
        let height = ((h_deg / deg).round() as usize).max(1);
        self.render_bands(bands, bbox, width, height)
    }

    /// Render a box into exactly `width` x `height` pixels (a map tile): each pixel shows the
    /// stored pixel under its centre, from the coarsest level whose pixels are no larger.
    /// Bands that do not hold the year are left transparent.
    pub fn render_size(
        &self,
        bbox: BBox,
        width: usize,
        height: usize,
    ) -> Result<Picture, PreviewError> {
        let bands = self.bands_over(&bbox)?;
        self.render_bands(bands, bbox, width.max(1), height.max(1))
    }

    /// The level each band is read at for pixels of `dlon` x `dlat` degrees: the coarsest
    /// whose pixels are no larger, else the finest.
    fn choose_levels(
        &self,
        bands: Vec<(String, BandLayout)>,
        dlon: f64,
        dlat: f64,
    ) -> Result<Vec<BandLevel>, PreviewError> {
        bands
            .into_iter()
            .map(|(band, layout)| -> Result<BandLevel, PreviewError> {
                let levels = overview_levels(&layout.grid);
                let level = levels
                    .iter()
                    .rev()
                    .find(|l| l.lon_step() <= dlon * 1.0001 && l.lat_step() <= dlat * 1.0001)
                    .copied()
                    .unwrap_or(levels[0]);
                Ok(BandLevel {
                    embeddings: self.open_array(&band, level.level, EMBEDDINGS)?,
                    scales: self.open_array(&band, level.level, SCALES)?,
                    band,
                    layout,
                    level,
                })
            })
            .collect()
    }

    /// Where each picture row and column reads: per row, the band (index into `chosen`), the
    /// chunk row and the row in the chunk (`None`: no band there); per band, per column, the
    /// chunk column and the column in the chunk. Rows and columns are independent, so the
    /// chunks a picture reads are, per band, its chunk rows times its chunk columns.
    fn pixel_sources(
        chosen: &[BandLevel],
        bbox: &BBox,
        width: usize,
        height: usize,
    ) -> PixelSources {
        let (w_deg, h_deg) = (bbox.lon_width(), bbox.lat1 - bbox.lat0);
        let (dlon, dlat) = (w_deg / width as f64, h_deg / height as f64);
        let rows = (0..height)
            .map(|i| {
                let lat = bbox.lat1 - (i as f64 + 0.5) * dlat;
                let b = chosen.iter().position(|b| {
                    lat >= b.layout.grid.lat_min() && lat < b.layout.grid.lat_max()
                })?;
                let BandLevel { layout, level, .. } = &chosen[b];
                let row = ((lat - layout.grid.lat_min()) / level.lat_step()).floor() as usize;
                let row = row.min(level.rows(&layout.grid) - 1);
                let chunk_rows = level.rows_per_cell * level.cells_per_chunk;
                Some((b, (row / chunk_rows) as u64, row % chunk_rows))
            })
            .collect();
        let cols = chosen
            .iter()
            .map(|BandLevel { level, .. }| {
                let chunk_cols = level.cols_per_cell * level.cells_per_chunk;
                (0..width)
                    .map(|j| {
                        let lon = (bbox.lon0 + (j as f64 + 0.5) * dlon + 180.0).rem_euclid(360.0);
                        let col = ((lon / level.lon_step()).floor() as usize).min(level.cols() - 1);
                        ((col / chunk_cols) as u64, col % chunk_cols)
                    })
                    .collect()
            })
            .collect();
        PixelSources { rows, cols }
    }

    /// The key prefixes of the year's chunks (`scales` and `embeddings`) at the level each
    /// band holding the year is read at for pixels of `pixel_deg` degrees (a map tile's): what
    /// to list to know the versions of every chunk such pictures read.
    pub fn read_prefixes(&self, pixel_deg: f64) -> Result<Vec<String>, PreviewError> {
        let bands: Vec<(String, BandLayout)> = self
            .bands
            .iter()
            .filter(|(_, l)| l.year_index(self.year).is_some())
            .cloned()
            .collect();
        let mut out = Vec::new();
        for b in self.choose_levels(bands, pixel_deg, pixel_deg)? {
            let y = b.layout.year_index(self.year).expect("filtered");
            for (array, indices) in [
                (&b.scales, vec![y, 0, 0]),
                (&b.embeddings, vec![y, 0, 0, 0]),
            ] {
                let key = array.chunk_key(&indices).to_string();
                // `.../c/{y}/0/0[/0]`: the year's folder; else (another key encoding) the array's.
                let zeros = "/0".repeat(indices.len() - 1);
                out.push(match key.strip_suffix(&zeros) {
                    Some(year) => format!("{year}/"),
                    None => format!("{}/", array.path().as_str().trim_matches('/')),
                });
            }
        }
        Ok(out)
    }

    /// The chunks a picture of `bbox` drawn `width` x `height` ([`Pyramids::render_size`])
    /// reads, in order: the band, its level and the keys of its `scales` and `embeddings`
    /// chunk. What the map compares between runs to redraw only tiles whose data changed.
    pub fn chunks_read(
        &self,
        bbox: BBox,
        width: usize,
        height: usize,
    ) -> Result<Vec<ChunkRead>, PreviewError> {
        let (width, height) = (width.max(1), height.max(1));
        let bands = self.bands_over(&bbox)?;
        let (dlon, dlat) = (
            bbox.lon_width() / width as f64,
            (bbox.lat1 - bbox.lat0) / height as f64,
        );
        let chosen = self.choose_levels(bands, dlon, dlat)?;
        let sources = Self::pixel_sources(&chosen, &bbox, width, height);
        let mut out = Vec::new();
        for (b, chunk) in chosen.iter().enumerate() {
            let y = chunk.layout.year_index(self.year).ok_or_else(|| {
                PreviewError::Empty(format!("year {} is not in band {}", self.year, chunk.band))
            })?;
            let rows: std::collections::BTreeSet<u64> = sources
                .rows
                .iter()
                .flatten()
                .filter(|(rb, _, _)| *rb == b)
                .map(|(_, a, _)| *a)
                .collect();
            let cols: std::collections::BTreeSet<u64> =
                sources.cols[b].iter().map(|(c, _)| *c).collect();
            for &a in &rows {
                for &c in &cols {
                    out.push(ChunkRead {
                        band: chunk.band.clone(),
                        level: chunk.level.level,
                        scales: chunk.scales.chunk_key(&[y, a, c]).to_string(),
                        embeddings: chunk.embeddings.chunk_key(&[y, a, c, 0]).to_string(),
                    });
                }
            }
        }
        Ok(out)
    }

    fn render_bands(
        &self,
        bands: Vec<(String, BandLayout)>,
        bbox: BBox,
        width: usize,
        height: usize,
    ) -> Result<Picture, PreviewError> {
        let (year, basis) = (self.year, &self.basis);
        let (w_deg, h_deg) = (bbox.lon_width(), bbox.lat1 - bbox.lat0);
        let (dlon, dlat) = (w_deg / width as f64, h_deg / height as f64);
        let chosen = self.choose_levels(bands, dlon, dlat)?;
        let sources = Self::pixel_sources(&chosen, &bbox, width, height);
        // Picture pixels grouped by the chunk they read: (band index, chunk row, chunk col).
        type Targets = Vec<(usize, usize, usize)>; // (image index, row in chunk, col in chunk)
        let mut by_chunk: BTreeMap<(usize, u64, u64), Targets> = BTreeMap::new();
        for (i, row) in sources.rows.iter().enumerate() {
            let Some((b, a, r)) = *row else {
                continue;
            };
            for (j, &(c, col)) in sources.cols[b].iter().enumerate() {
                by_chunk
                    .entry((b, a, c))
                    .or_default()
                    .push((i * width + j, r, col));
            }
        }
        let coloured: Vec<Result<Coloured, PreviewError>> = by_chunk
            .par_iter()
            .map(|(&(b, a, c), targets)| {
                let BandLevel {
                    band,
                    layout,
                    level,
                    embeddings,
                    scales,
                } = &chosen[b];
                let y = layout.year_index(year).ok_or_else(|| {
                    PreviewError::Empty(format!("year {year} is not in band {band}"))
                })?;
                let chunk = self.decoded(band, level.level, [y, a, c], || {
                    let what = format!("{band} overview level {} chunk {y}/{a}/{c}", level.level);
                    let scales: Vec<f32> = scales
                        .retrieve_chunk(&[y, a, c])
                        .map_err(PreviewError::read(&what))?;
                    if scales.iter().all(|s| s.is_nan()) {
                        return Ok(None);
                    }
                    let emb: Vec<i8> = embeddings
                        .retrieve_chunk(&[y, a, c, 0])
                        .map_err(PreviewError::read(what))?;
                    Ok(Some((scales, emb)))
                })?;
                let Some((scales, emb)) = chunk.as_ref() else {
                    return Ok(Vec::new());
                };
                let chunk_cols = level.cols_per_cell * level.cells_per_chunk;
                Ok(targets
                    .iter()
                    .filter_map(|&(k, r, col)| {
                        let p = r * chunk_cols + col;
                        let s = scales[p];
                        (!s.is_nan())
                            .then(|| (k, basis.rgb(&emb[p * CHANNELS..(p + 1) * CHANNELS], s)))
                    })
                    .collect())
            })
            .collect();
        let mut rgba = vec![0u8; width * height * 4];
        for part in coloured {
            for (k, c) in part? {
                rgba[k * 4..k * 4 + 4].copy_from_slice(&[c[0], c[1], c[2], 255]);
            }
        }
        Ok(Picture {
            image: Image {
                width,
                height,
                rgba,
            },
            year,
            bbox,
            levels: chosen
                .iter()
                .map(|b| (b.band.clone(), b.level.level))
                .collect(),
            basis: basis.clone(),
        })
    }
}
