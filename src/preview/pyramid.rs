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
        let chosen: Vec<BandLevel> = bands
            .into_iter()
            .map(|(band, layout)| -> Result<BandLevel, PreviewError> {
                let levels = overview_levels(&layout.grid);
                // The coarsest level whose pixels are no larger than the picture's.
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
            .collect::<Result<_, _>>()?;
        // Picture pixels grouped by the chunk they read: (band index, chunk row, chunk col).
        type Targets = Vec<(usize, usize, usize)>; // (image index, row in chunk, col in chunk)
        let mut by_chunk: BTreeMap<(usize, u64, u64), Targets> = BTreeMap::new();
        for i in 0..height {
            let lat = bbox.lat1 - (i as f64 + 0.5) * dlat;
            let Some(b) = chosen
                .iter()
                .position(|b| lat >= b.layout.grid.lat_min() && lat < b.layout.grid.lat_max())
            else {
                continue;
            };
            let BandLevel { layout, level, .. } = &chosen[b];
            let row = ((lat - layout.grid.lat_min()) / level.lat_step()).floor() as usize;
            let row = row.min(level.rows(&layout.grid) - 1);
            let chunk_rows = level.rows_per_cell * level.cells_per_chunk;
            let chunk_cols = level.cols_per_cell * level.cells_per_chunk;
            for j in 0..width {
                let lon = (bbox.lon0 + (j as f64 + 0.5) * dlon + 180.0).rem_euclid(360.0);
                let col = ((lon / level.lon_step()).floor() as usize).min(level.cols() - 1);
                by_chunk
                    .entry((b, (row / chunk_rows) as u64, (col / chunk_cols) as u64))
                    .or_default()
                    .push((i * width + j, row % chunk_rows, col % chunk_cols));
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
                let what = format!("{band} overview level {} chunk {y}/{a}/{c}", level.level);
                let scales: Vec<f32> = scales
                    .retrieve_chunk(&[y, a, c])
                    .map_err(PreviewError::read(&what))?;
                if scales.iter().all(|s| s.is_nan()) {
                    return Ok(Vec::new());
                }
                let emb: Vec<i8> = embeddings
                    .retrieve_chunk(&[y, a, c, 0])
                    .map_err(PreviewError::read(what))?;
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
