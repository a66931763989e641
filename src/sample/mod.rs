//! `mosaic sample`: the embedding at each of many points, for training data.
//!
//! Points come from CSV or (Geo)Parquet (`points.rs`) in batches of `batch` rows. For every
//! batch: each point goes to the band whose latitude range holds it and to the pixel whose area
//! holds it (`BandGrid::pixel_of`, the same as xarray's `.sel(..., method="nearest")` on that
//! band); the points are grouped by (band, year, inner chunk); each group's `scales` inner
//! chunk is read once and, unless every one of its points is no data, its `embeddings` inner
//! chunk too, in parallel; the batch's rows are written in input order (`output.rs`), then the
//! next batch is read. Memory is bounded by the batch, whatever the number of points; a chunk
//! needed by several batches is read once per batch that needs it.

pub mod output;
pub mod points;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::grid::{BandGrid, CHANNELS};
use crate::zarr::{
    BandArrays, FormatError, InnerChunkError, InnerChunks, MosaicStore, on_read_threads,
};
use output::{Sampled, sample_writer};
use points::open_points;

/// Points per batch by default.
pub const DEFAULT_BATCH: usize = 100_000;

/// A sampling run.
#[derive(Debug, Clone)]
pub struct SampleRequest {
    pub points: PathBuf,
    pub lon_col: String,
    pub lat_col: String,
    /// Years to sample (default: every year of the store).
    pub years: Option<Vec<u16>>,
    /// Write `embeddings * scales` as float32.
    pub dequantize: bool,
    /// Output file (`.csv` for CSV, else Parquet).
    pub out: PathBuf,
    /// Points per batch.
    pub batch: usize,
}

/// Errors of a sampling run; each names the file, and the row or column at fault.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("points {path}: {message}")]
    Points { path: String, message: String },
    #[error("points {path}")]
    PointsFile {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("points {path}: no column `{column}` (columns: {columns}); name it with {flag}")]
    MissingColumn {
        path: String,
        column: String,
        columns: String,
        flag: String,
    },
    #[error("points {path}, row {row}{}: {message}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    BadRow {
        path: String,
        /// 1-based data row (the header is not a row).
        row: usize,
        line: Option<usize>,
        message: String,
    },
    #[error("year {year} is not in the store {store} (years: {years})")]
    NoYear {
        year: u16,
        store: String,
        years: String,
    },
    #[error("the store {0} has no band")]
    NoBands(String),
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("reading band {band}")]
    Read {
        band: String,
        #[source]
        source: Box<InnerChunkError>,
    },
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: output::OutputError,
    },
}

impl SampleError {
    /// The points file at `path` could not be opened or read.
    pub fn points_file<E: std::error::Error + Send + Sync + 'static>(
        path: impl std::fmt::Display,
    ) -> impl FnOnce(E) -> SampleError {
        move |e| SampleError::PointsFile {
            path: path.to_string(),
            source: Box::new(e),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct SampleSummary {
    pub points: usize,
    pub years: Vec<u16>,
    /// (point, year) rows with data.
    pub sampled: usize,
    /// Points outside every band.
    pub outside: usize,
    /// (point, year) rows inside a band on no data (scale NaN).
    pub no_data: usize,
    /// Inner chunks read (scales and embeddings counted separately).
    pub chunks_read: usize,
    /// Columns of the input that were not carried, each with why (`name (nested)`).
    pub dropped: Vec<String>,
}

/// A band being sampled: its arrays, read one inner chunk at a time.
struct Band {
    name: Arc<str>,
    arrays: BandArrays,
    embeddings: InnerChunks,
    scales: InnerChunks,
}

/// The pixel of (lat, lon) in a band, or `None` when the band does not hold the latitude.
///
/// The band holds `lat_min <= lat < lat_max` (and lat 90 when it ends at the pole), as
/// `BandGrid::pixel_of` decides. In the band, row and column are those xarray's
/// `.sel(lat=, lon=, method="nearest")` picks: the pixel whose area holds the point, and at an
/// exact pixel edge the same choice as pandas' nearest indexer, which compares the two centre
/// distances in float64 (the left one when strictly nearer, else the right one).
pub fn locate(g: &BandGrid, lat: f64, lon: f64) -> Option<(usize, usize)> {
    let in_band = lat >= g.lat_min() && (lat < g.lat_max() || (lat == 90.0 && g.lat_max() == 90.0));
    if !in_band || !(-180.0..=180.0).contains(&lon) {
        return None;
    }
    let row_guess = (lat + 90.0) * 10.0 * g.rows_per_cell as f64
        - (g.lat_start_index as usize * g.rows_per_cell) as f64
        - 0.5;
    let col_guess = (lon + 180.0) * 10.0 * g.cols_per_cell as f64 - 0.5;
    Some((
        nearest(g.rows(), |r| g.row_lat(r), lat, row_guess),
        nearest(g.cols(), |c| g.col_lon(c), lon, col_guess),
    ))
}

/// pandas' `get_indexer(method="nearest")` on the ascending coordinates `f(0..n)`: `left` the
/// last centre <= t, `right` the first centre >= t; left if strictly nearer, else right.
fn nearest(n: usize, f: impl Fn(usize) -> f64, t: f64, guess: f64) -> usize {
    let mut left = guess.floor().clamp(-1.0, n as f64 - 1.0) as isize;
    while left >= 0 && f(left as usize) > t {
        left -= 1;
    }
    while left + 1 < n as isize && f(left as usize + 1) <= t {
        left += 1;
    }
    if left < 0 {
        return 0;
    }
    let l = left as usize;
    let r = if f(l) == t { l } else { l + 1 };
    if r >= n || (f(l) - t).abs() < (f(r) - t).abs() {
        l
    } else {
        r
    }
}

/// What a chunk gives one (point, year) slot: the slot, the scale, the vector where there is data.
type Hit = (usize, f32, Option<[i8; CHANNELS]>);

/// One inner chunk's worth of work: the (point, year slot) pairs it serves.
type ChunkKey = (usize, u16, u64, u64);

/// Sample `request` from `store`; `progress` is called with the points done after each batch.
pub fn sample(
    store: &MosaicStore,
    request: &SampleRequest,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<SampleSummary, SampleError> {
    let mut bands = Vec::new();
    for name in store.bands()? {
        let arrays = store.band_arrays(&name)?;
        bands.push(Band {
            name: name.as_str().into(),
            embeddings: InnerChunks::new(arrays.embeddings.clone()),
            scales: InnerChunks::new(arrays.scales.clone()),
            arrays,
        });
    }
    if bands.is_empty() {
        return Err(SampleError::NoBands(store.location().to_string()));
    }
    bands.sort_by_key(|b| b.arrays.layout.grid.lat_start_index);
    let mut store_years: Vec<u16> = bands
        .iter()
        .flat_map(|b| b.arrays.layout.year_values())
        .collect();
    store_years.sort();
    store_years.dedup();
    let years = match &request.years {
        None => store_years.clone(),
        Some(ys) => {
            for &y in ys {
                if !store_years.contains(&y) {
                    return Err(SampleError::NoYear {
                        year: y,
                        store: store.location().to_string(),
                        years: store_years
                            .iter()
                            .map(u16::to_string)
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
            }
            ys.clone()
        }
    };
    let mut reader = open_points(&request.points, &request.lon_col, &request.lat_col)?;
    // Write to a temporary name, renamed when complete: a failed run leaves no partial output.
    let partial = partial_path(&request.out);
    let write_err = |source| SampleError::Write {
        path: request.out.display().to_string(),
        source,
    };
    let mut writer = sample_writer(
        &partial,
        output::is_csv(&request.out),
        reader.carried(),
        request.dequantize,
    )
    .map_err(write_err)?;
    let mut summary = SampleSummary {
        years: years.clone(),
        dropped: reader.dropped().to_vec(),
        ..Default::default()
    };
    let total = reader.total_rows();
    let result = (|| -> Result<(), SampleError> {
        while let Some(batch) = reader.next_batch(request.batch.max(1))? {
            let sampled = on_read_threads(store.store.is_local(), || {
                sample_batch(&bands, &years, &batch.lat, &batch.lon, &mut summary)
            })?;
            writer.write(&batch, &sampled).map_err(write_err)?;
            summary.points += batch.lon.len();
            progress(summary.points, total);
            for b in &bands {
                // The caches hold shard indices; keep them small.
                if b.embeddings.cached_shards() > 4096 {
                    b.embeddings.clear_cache();
                    b.scales.clear_cache();
                }
            }
        }
        writer.finish().map_err(write_err)
    })();
    match result {
        Ok(()) => {
            std::fs::rename(&partial, &request.out).map_err(|e| write_err(e.into()))?;
            Ok(summary)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// Each thread's decoded chunks, reused from chunk to chunk.
#[derive(Default)]
struct ChunkBuffers {
    scales: Vec<f32>,
    embeddings: Vec<i8>,
}

/// Sample one batch of points.
fn sample_batch(
    bands: &[Band],
    years: &[u16],
    lat: &[f64],
    lon: &[f64],
    summary: &mut SampleSummary,
) -> Result<Sampled, SampleError> {
    let (n, ny) = (lat.len(), years.len());
    let mut out = Sampled {
        years: years.to_vec(),
        band: vec![None; n],
        pixel: vec![None; n],
        scale: vec![f32::NAN; n * ny],
        emb: vec![0; n * ny * CHANNELS],
    };
    let mut groups: HashMap<ChunkKey, Vec<(usize, usize)>> = HashMap::new();
    for i in 0..n {
        let hit = bands
            .iter()
            .enumerate()
            .find_map(|(b, band)| locate(&band.arrays.layout.grid, lat[i], lon[i]).map(|p| (b, p)));
        let Some((b, (row, col))) = hit else {
            summary.outside += 1;
            continue;
        };
        let layout = &bands[b].arrays.layout;
        out.band[i] = Some(bands[b].name.clone());
        out.pixel[i] = Some((row as u64, col as u64));
        let g = &layout.grid;
        for (k, &year) in years.iter().enumerate() {
            if let Some(y) = layout.year_index(year) {
                let key = (
                    b,
                    y as u16,
                    (row / g.chunk_rows) as u64,
                    (col / g.chunk_cols) as u64,
                );
                groups.entry(key).or_default().push((i, k));
            }
        }
    }
    let chunks = AtomicUsize::new(0);
    let groups: Vec<(ChunkKey, Vec<(usize, usize)>)> = groups.into_iter().collect();
    let results: Vec<Vec<Hit>> = groups
        .par_iter()
        .map_init(
            ChunkBuffers::default,
            |buffers, &((b, y, cr, cc), ref members)| {
                let band = &bands[b];
                let g = &band.arrays.layout.grid;
                let read_err = |source| SampleError::Read {
                    band: band.name.to_string(),
                    source: Box::new(source),
                };
                band.scales
                    .read_into(&[y as u64, cr, cc], &mut buffers.scales)
                    .map_err(read_err)?;
                let scales = &buffers.scales;
                chunks.fetch_add(1, Ordering::Relaxed);
                let offset = |i: usize| {
                    let (row, col) = out.pixel[i].expect("point in band");
                    (row as usize % g.chunk_rows) * g.chunk_cols + col as usize % g.chunk_cols
                };
                let any_data = members.iter().any(|&(i, _)| !scales[offset(i)].is_nan());
                if any_data {
                    chunks.fetch_add(1, Ordering::Relaxed);
                    band.embeddings
                        .read_into(&[y as u64, cr, cc, 0], &mut buffers.embeddings)
                        .map_err(read_err)?;
                }
                let emb = &buffers.embeddings;
                Ok(members
                    .iter()
                    .map(|&(i, k)| {
                        let o = offset(i);
                        let s = scales[o];
                        let v: Option<[i8; CHANNELS]> = (!s.is_nan()).then(|| {
                            emb[o * CHANNELS..(o + 1) * CHANNELS]
                                .try_into()
                                .expect("128 channels")
                        });
                        (i * ny + k, s, v)
                    })
                    .collect())
            },
        )
        .collect::<Result<_, SampleError>>()?;
    summary.chunks_read += chunks.into_inner();
    for (slot, s, v) in results.into_iter().flatten() {
        if let Some(v) = v {
            out.scale[slot] = s;
            out.emb[slot * CHANNELS..(slot + 1) * CHANNELS].copy_from_slice(&v);
        }
    }
    for i in 0..n {
        if out.band[i].is_some() {
            for k in 0..ny {
                if out.scale[i * ny + k].is_nan() {
                    summary.no_data += 1;
                } else {
                    summary.sampled += 1;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> BandGrid {
        BandGrid {
            name: "80-90".into(),
            lat_start_index: 1700,
            lat_end_index: 1800,
            rows_per_cell: 10,
            cols_per_cell: 4,
            chunk_rows: 5,
            chunk_cols: 2,
            chunk_order: Default::default(),
        }
    }

    #[test]
    fn pixels_are_the_nearest_centres() {
        let g = grid();
        assert_eq!(locate(&g, 90.0, 180.0), Some((g.rows() - 1, g.cols() - 1)));
        assert_eq!(locate(&g, 80.0, -180.0), Some((0, 0)));
        assert_eq!(locate(&g, 79.99, 0.0), None);
        for (lat, lon) in [(80.013, 1.234), (85.55, -0.001), (89.999, 179.99)] {
            let (r, c) = locate(&g, lat, lon).unwrap();
            assert_eq!(Some((r, c)), g.pixel_of(lat, lon));
        }
    }
}
