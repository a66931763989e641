//! `mosaic query`: cut a lat/lon box out of a store, across band edges, to .npy or GeoTIFF.
//!
//! Rows come from whichever band holds their latitude. Bands have different column widths, so
//! parts from different bands are resampled to the finest column width among them, by nearest
//! neighbour in longitude (each output column copies the band column containing its centre; no
//! value is ever averaged). The JSON sidecar says which band each row comes from. Only the
//! inner chunks the box needs are read, a block of rows at a time, so memory stays bounded
//! whatever the box.

use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;
use zarrs::array::ArraySubset;

use crate::error::chain;
use crate::grid::{BBox, CHANNELS};
use crate::input::geotiff::{self, GeoTransform, Strip};
use crate::input::npy::{NpyDtype, encode_header};
use crate::zarr::{BandArrays, FormatError, MosaicStore};

/// A query.
#[derive(Debug, Clone)]
pub struct QueryRequest {
    /// The box: pixel centres within it, bounds included (like xarray's `slice`). A box across
    /// the antimeridian gives columns from its west edge to 180, then from -180 on.
    pub bbox: BBox,
    /// One year, or every year of the store.
    pub year: Option<u16>,
    /// Output `embeddings * scales` as float32 (NaN = no data) instead of int8 + scales.
    pub dequantize: bool,
}

/// Errors of a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("the box holds no pixel of any band in {store} (bands: {bands})")]
    Empty { store: String, bands: String },
    #[error("year {year} is not in band {band} (years {first}..={last})")]
    NoYear {
        year: u16,
        band: String,
        first: u16,
        last: u16,
    },
    #[error(transparent)]
    Format(#[from] FormatError),
    #[error("reading {band}")]
    Read {
        band: String,
        #[source]
        source: Box<zarrs::array::ArrayError>,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{0}")]
    Unsupported(String),
}

/// The part of the box one band supplies.
struct Part {
    arrays: BandArrays,
    /// Band rows (ascending lat).
    rows: Range<usize>,
    /// Band column of every output column.
    col_map: Vec<usize>,
}

/// Which output rows come from which band.
#[derive(Debug, Clone, Serialize)]
pub struct RowSource {
    /// Band name.
    pub band: String,
    /// Output rows `[start, end)`.
    pub rows: [usize; 2],
    /// The band's columns per cell.
    pub cols_per_cell: usize,
    /// True when the band's columns were resampled to the output's finer width.
    pub resampled: bool,
}

/// A planned query: output coordinates and where each row comes from.
pub struct QueryPlan {
    parts: Vec<Part>,
    /// Output latitudes (ascending).
    pub lats: Vec<f64>,
    /// Output longitudes.
    pub lons: Vec<f64>,
    /// Output years.
    pub years: Vec<u16>,
    /// Row sources, south to north.
    pub row_sources: Vec<RowSource>,
    /// Output longitude step.
    pub lon_step: f64,
    /// Output latitude step.
    pub lat_step: f64,
    /// Fill value of embeddings.
    pub fill: i8,
    /// Dequantise.
    pub dequantize: bool,
}

/// Indices `i` in `0..n` whose coordinate `f(i)` lies in `[lo, hi]` (f increasing).
fn index_range(n: usize, lo: f64, hi: f64, f: impl Fn(usize) -> f64) -> Range<usize> {
    let start = partition_point(n, |i| f(i) < lo);
    let end = partition_point(n, |i| f(i) <= hi);
    start..end.max(start)
}

fn partition_point(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if pred(mid) { lo = mid + 1 } else { hi = mid }
    }
    lo
}

impl QueryPlan {
    /// Plan a query against a store.
    pub fn new(store: &MosaicStore, request: &QueryRequest) -> Result<QueryPlan, QueryError> {
        let (lat_lo, lat_hi) = (request.bbox.lat0, request.bbox.lat1);
        let bands = store.bands()?;
        let mut candidates = Vec::new();
        for band in &bands {
            let Some(layout) = store.band_layout(band)? else {
                continue;
            };
            let g = &layout.grid;
            let rows = index_range(g.rows(), lat_lo, lat_hi, |r| g.row_lat(r));
            if !rows.is_empty() {
                candidates.push((band.clone(), layout, rows));
            }
        }
        candidates.sort_by_key(|a| a.1.grid.lat_start_index);
        let finest = candidates.iter().max_by_key(|c| c.1.grid.cols_per_cell);
        let Some((_, finest, _)) = finest else {
            return Err(QueryError::Empty {
                store: store.location().to_string(),
                bands: bands.join(", "),
            });
        };
        let fine = finest.grid.clone();
        let col_range = |lo, hi| index_range(fine.cols(), lo, hi, |c| fine.col_lon(c));
        let (west, east) = (request.bbox.lon0, request.bbox.lon1);
        let out_cols: Vec<usize> = if request.bbox.crosses_antimeridian() {
            col_range(west, 180.0)
                .chain(col_range(-180.0, east))
                .collect()
        } else {
            col_range(west, east).collect()
        };
        if out_cols.is_empty() {
            return Err(QueryError::Empty {
                store: store.location().to_string(),
                bands: bands.join(", "),
            });
        }
        let lons: Vec<f64> = out_cols.iter().map(|&c| fine.col_lon(c)).collect();
        let years = match request.year {
            Some(y) => vec![y],
            None => {
                let mut ys: Vec<u16> = candidates.iter().flat_map(|c| c.1.year_values()).collect();
                ys.sort();
                ys.dedup();
                ys
            }
        };
        let mut parts = Vec::new();
        let mut lats = Vec::new();
        let mut row_sources = Vec::new();
        for (band, layout, rows) in candidates {
            let g = &layout.grid;
            if let Some(y) = request.year
                && layout.year_index(y).is_none()
            {
                return Err(QueryError::NoYear {
                    year: y,
                    band,
                    first: layout.first_year,
                    last: layout.first_year + layout.years - 1,
                });
            }
            // Nearest band column: the one whose area holds the output column centre.
            let col_map: Vec<usize> = lons
                .iter()
                .map(|&lon| {
                    (((lon + 180.0) * 10.0 * g.cols_per_cell as f64).floor() as usize)
                        .min(g.cols() - 1)
                })
                .collect();
            let start = lats.len();
            lats.extend(rows.clone().map(|r| g.row_lat(r)));
            row_sources.push(RowSource {
                band: band.clone(),
                rows: [start, lats.len()],
                cols_per_cell: g.cols_per_cell,
                resampled: g.cols_per_cell != fine.cols_per_cell,
            });
            parts.push(Part {
                arrays: store.band_arrays(&band)?,
                rows,
                col_map,
            });
        }
        Ok(QueryPlan {
            fill: parts[0].arrays.layout.embeddings_fill,
            parts,
            lats,
            lons,
            years,
            row_sources,
            lon_step: fine.lon_step(),
            lat_step: fine.lat_step(),
            dequantize: request.dequantize,
        })
    }

    /// Output rows.
    pub fn rows(&self) -> usize {
        self.lats.len()
    }

    /// Output columns.
    pub fn cols(&self) -> usize {
        self.lons.len()
    }

    /// Read output rows `rows` of one year: (embeddings as rows x cols x 128, scales rows x cols).
    pub fn read_rows(
        &self,
        year: u16,
        rows: Range<usize>,
    ) -> Result<(Vec<i8>, Vec<f32>), QueryError> {
        let cols = self.cols();
        let n = rows.len() * cols;
        let mut emb = vec![self.fill; n * CHANNELS];
        let mut scales = vec![f32::NAN; n];
        for (part, src) in self.parts.iter().zip(&self.row_sources) {
            let (a, b) = (rows.start.max(src.rows[0]), rows.end.min(src.rows[1]));
            if a >= b {
                continue;
            }
            let Some(y) = part.arrays.layout.year_index(year) else {
                continue;
            };
            let band_rows = (part.rows.start + a - src.rows[0]) as u64
                ..(part.rows.start + b - src.rows[0]) as u64;
            // One read per run of ascending band columns: two runs for a box across the
            // antimeridian, one otherwise.
            let mut run_start = 0;
            for run_end in 1..=part.col_map.len() {
                if run_end < part.col_map.len()
                    && part.col_map[run_end] >= part.col_map[run_end - 1]
                {
                    continue;
                }
                let run = &part.col_map[run_start..run_end];
                let c0 = run[0] as u64;
                let c1 = run[run.len() - 1] as u64 + 1;
                let read_err = |source| QueryError::Read {
                    band: src.band.clone(),
                    source: Box::new(source),
                };
                let e_sub = ArraySubset::new_with_ranges(&[
                    y..y + 1,
                    band_rows.clone(),
                    c0..c1,
                    0..CHANNELS as u64,
                ]);
                let block: Vec<i8> = part
                    .arrays
                    .embeddings
                    .retrieve_array_subset(&e_sub)
                    .map_err(read_err)?;
                let s_sub = ArraySubset::new_with_ranges(&[y..y + 1, band_rows.clone(), c0..c1]);
                let block_scales: Vec<f32> = part
                    .arrays
                    .scales
                    .retrieve_array_subset(&s_sub)
                    .map_err(read_err)?;
                let width = (c1 - c0) as usize;
                for r in a..b {
                    let (br, or) = (r - a, r - rows.start);
                    for (j, &bc) in run.iter().enumerate() {
                        let s = br * width + (bc - c0 as usize);
                        let o = or * cols + run_start + j;
                        emb[o * CHANNELS..(o + 1) * CHANNELS]
                            .copy_from_slice(&block[s * CHANNELS..(s + 1) * CHANNELS]);
                        scales[o] = block_scales[s];
                    }
                }
                run_start = run_end;
            }
        }
        Ok((emb, scales))
    }

    /// Rows per block so that one block stays under about 256 MB.
    fn block_rows(&self) -> usize {
        let per_row = self.cols() * CHANNELS * if self.dequantize { 5 } else { 2 };
        (256_000_000 / per_row.max(1)).clamp(1, 117)
    }

    /// The sidecar document.
    pub fn sidecar(&self, files: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "crs": "EPSG:4326",
            "dims": if self.years.len() == 1 && files.get("geotiff").is_some() {
                serde_json::json!(["lat", "lon", "channel"])
            } else {
                serde_json::json!(["year", "lat", "lon", "channel"])
            },
            "year": self.years,
            "lat": self.lats,
            "lon": self.lons,
            "lat_step": self.lat_step,
            "lon_step": self.lon_step,
            "row_sources": self.row_sources,
            "resampling": "rows come from the band holding their latitude; each output column takes, in every band, the band column floor((lon + 180) * 10 * cols_per_cell) whose area holds the output column centre (nearest neighbour, values copied, never averaged)",
            "dequantized": self.dequantize,
            "embeddings_fill": self.fill,
            "no_data": "scales (or dequantized values) are NaN where there is no data",
            "files": files,
        })
    }

    /// Write `.npy` file(s) and the JSON sidecar: `OUT.npy` (int8 or float32), `OUT_scales.npy`
    /// (unless dequantised), `OUT.json`.
    pub fn write_npy(&self, out: &Path) -> Result<Vec<PathBuf>, QueryError> {
        let (rows, cols, ny) = (self.rows(), self.cols(), self.years.len());
        let wrap = |path: &Path| {
            let path = path.to_path_buf();
            move |e: std::io::Error| QueryError::Write {
                path: path.clone(),
                source: Box::new(e),
            }
        };
        let emb_path = out.with_extension("npy");
        let scales_path = out.with_file_name(format!(
            "{}_scales.npy",
            out.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let dtype = if self.dequantize {
            NpyDtype::Float32
        } else {
            NpyDtype::Int8
        };
        let mut emb_file =
            BufWriter::new(std::fs::File::create(&emb_path).map_err(wrap(&emb_path))?);
        emb_file
            .write_all(&encode_header(dtype, &[ny, rows, cols, CHANNELS]))
            .map_err(wrap(&emb_path))?;
        let mut scales_file = if self.dequantize {
            None
        } else {
            let mut f =
                BufWriter::new(std::fs::File::create(&scales_path).map_err(wrap(&scales_path))?);
            f.write_all(&encode_header(NpyDtype::Float32, &[ny, rows, cols]))
                .map_err(wrap(&scales_path))?;
            Some(f)
        };
        let step = self.block_rows();
        for &year in &self.years {
            for start in (0..rows).step_by(step) {
                let (emb, scales) = self.read_rows(year, start..(start + step).min(rows))?;
                if self.dequantize {
                    let values = dequantize(&emb, &scales);
                    emb_file
                        .write_all(&f32_bytes(&values))
                        .map_err(wrap(&emb_path))?;
                } else {
                    emb_file
                        .write_all(i8_bytes(&emb))
                        .map_err(wrap(&emb_path))?;
                    if let Some(f) = scales_file.as_mut() {
                        f.write_all(&f32_bytes(&scales))
                            .map_err(wrap(&scales_path))?;
                    }
                }
            }
        }
        emb_file.flush().map_err(wrap(&emb_path))?;
        let mut written = vec![emb_path.clone()];
        let mut files = serde_json::json!({"embeddings": emb_path.file_name().map(|n| n.to_string_lossy().into_owned())});
        if let Some(mut f) = scales_file {
            f.flush().map_err(wrap(&scales_path))?;
            files["scales"] = serde_json::json!(
                scales_path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            );
            written.push(scales_path);
        }
        let sidecar = out.with_extension("json");
        std::fs::write(
            &sidecar,
            serde_json::to_string_pretty(&self.sidecar(files)).expect("json"),
        )
        .map_err(wrap(&sidecar))?;
        written.push(sidecar);
        Ok(written)
    }

    /// Write a 128-band GeoTIFF (north up) of one year, plus the JSON sidecar.
    pub fn write_geotiff(&self, out: &Path) -> Result<Vec<PathBuf>, QueryError> {
        if self.years.len() != 1 {
            return Err(QueryError::Unsupported(format!(
                "a GeoTIFF holds one year; the box spans {} years: pass --year",
                self.years.len()
            )));
        }
        let gap = self
            .lats
            .windows(2)
            .any(|w| ((w[1] - w[0]) / self.lat_step - 1.0).abs() > 1e-6);
        if gap {
            return Err(QueryError::Unsupported(
                "the box crosses a gap between bands; a GeoTIFF needs evenly spaced rows (use .npy)".into(),
            ));
        }
        let year = self.years[0];
        let (rows, cols) = (self.rows(), self.cols());
        let transform = GeoTransform {
            epsg: 4326,
            x0: self.lons[0] - self.lon_step / 2.0,
            y0: self.lats[rows - 1] + self.lat_step / 2.0,
            dx: self.lon_step,
            dy: self.lat_step,
        };
        let step = self.block_rows();
        // Strips north first: output rows are ascending, so walk blocks from the top.
        let mut top = rows;
        let mut next = || -> Result<Option<Strip>, String> {
            if top == 0 {
                return Ok(None);
            }
            let start = top.saturating_sub(step);
            let (emb, scales) = self.read_rows(year, start..top).map_err(|e| chain(&e))?;
            let n = top - start;
            top = start;
            let row_len = cols * CHANNELS;
            let flip = |v: &[i8]| -> Vec<i8> {
                (0..n)
                    .rev()
                    .flat_map(|r| v[r * row_len..(r + 1) * row_len].iter().copied())
                    .collect()
            };
            Ok(Some(if self.dequantize {
                let values = dequantize(&emb, &scales);
                Strip::Float32(
                    (0..n)
                        .rev()
                        .flat_map(|r| values[r * row_len..(r + 1) * row_len].iter().copied())
                        .collect(),
                )
            } else {
                Strip::Int8(flip(&emb))
            }))
        };
        geotiff::write_128_band(
            out,
            cols,
            rows,
            step,
            self.dequantize,
            &transform,
            &mut next,
        )
        .map_err(|e| QueryError::Write {
            path: out.to_path_buf(),
            source: Box::new(e),
        })?;
        let sidecar = out.with_extension("json");
        let files = serde_json::json!({"geotiff": out.file_name().map(|n| n.to_string_lossy().into_owned()), "row_order": "north first"});
        std::fs::write(
            &sidecar,
            serde_json::to_string_pretty(&self.sidecar(files)).expect("json"),
        )
        .map_err(|e| QueryError::Write {
            path: sidecar.clone(),
            source: Box::new(e),
        })?;
        Ok(vec![out.to_path_buf(), sidecar])
    }
}

/// `embeddings * scales` per pixel, NaN where the scale is NaN.
pub fn dequantize(emb: &[i8], scales: &[f32]) -> Vec<f32> {
    emb.chunks_exact(CHANNELS)
        .zip(scales)
        .flat_map(|(e, &s)| e.iter().map(move |&v| v as f32 * s))
        .collect()
}

fn i8_bytes(v: &[i8]) -> &[u8] {
    bytemuck::cast_slice(v)
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
