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
use std::sync::mpsc;

use rayon::prelude::*;

use serde::Serialize;

use crate::error::chain;
use crate::grid::{BBox, CHANNELS};
use crate::input::geotiff::{self, GeoTransform, Strip};
use crate::input::npy::{NpyDtype, encode_header};
use crate::zarr::{
    BandArrays, FormatError, InnerChunkError, InnerChunks, MosaicStore, on_read_threads,
};

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
        source: Box<InnerChunkError>,
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
    /// The arrays read one inner chunk at a time (shard indexes cached for the whole query).
    embeddings: InnerChunks,
    scales: InnerChunks,
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
    /// The store is a local folder (else an object store, read with more requests in flight).
    local_store: bool,
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
            let arrays = store.band_arrays(&band)?;
            parts.push(Part {
                embeddings: InnerChunks::new(arrays.embeddings.clone()),
                scales: InnerChunks::new(arrays.scales.clone()),
                arrays,
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
            local_store: store.store.is_local(),
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

    /// Read output rows `rows` of one year into `block` (overwritten; its allocations reused).
    /// The inner chunks under the rows are decoded in parallel, strip by strip of chunk rows,
    /// each copied straight into its place in the block.
    fn read_rows_into(
        &self,
        year: u16,
        rows: Range<usize>,
        block: &mut Block,
    ) -> Result<(), QueryError> {
        let cols = self.cols();
        let n = rows.len() * cols;
        block.embeddings.clear();
        block.embeddings.resize(n * CHANNELS, self.fill);
        block.scales.clear();
        block.scales.resize(n, f32::NAN);
        let (mut emb_rest, mut scales_rest) = (&mut block.embeddings[..], &mut block.scales[..]);
        let mut done = rows.start;
        let mut strips = Vec::new();
        for (p, (part, src)) in self.parts.iter().zip(&self.row_sources).enumerate() {
            let (a, b) = (rows.start.max(src.rows[0]), rows.end.min(src.rows[1]));
            if a >= b {
                continue;
            }
            let Some(y) = part.arrays.layout.year_index(year) else {
                continue;
            };
            // Skip the output rows before this part (filled already), then cut the part's rows
            // into strips at the band's chunk-row edges: strips are disjoint, read in parallel.
            let skip = (a - done) * cols;
            (emb_rest, scales_rest) = (&mut emb_rest[skip * CHANNELS..], &mut scales_rest[skip..]);
            let chunk_rows = part.arrays.layout.grid.chunk_rows;
            let mut band_row = part.rows.start + a - src.rows[0];
            let band_end = band_row + (b - a);
            while band_row < band_end {
                let strip_end = ((band_row / chunk_rows + 1) * chunk_rows).min(band_end);
                let len = (strip_end - band_row) * cols;
                let (emb, e_rest) = emb_rest.split_at_mut(len * CHANNELS);
                let (scales, s_rest) = scales_rest.split_at_mut(len);
                (emb_rest, scales_rest) = (e_rest, s_rest);
                strips.push(ChunkRowStrip {
                    part: p,
                    year: y as usize,
                    band_rows: band_row..strip_end,
                    embeddings: emb,
                    scales,
                });
                band_row = strip_end;
            }
            done = b;
        }
        on_read_threads(self.local_store, || {
            strips
                .into_par_iter()
                .try_for_each_init(ChunkBuffers::default, |buffers, strip| {
                    let p = strip.part;
                    self.read_strip(&self.parts[p], strip, buffers)
                        .map_err(|source| QueryError::Read {
                            band: self.row_sources[p].band.clone(),
                            source: Box::new(source),
                        })
                })
        })
    }

    /// Fill one strip (band rows within one chunk row) from the inner chunks under it.
    fn read_strip(
        &self,
        part: &Part,
        strip: ChunkRowStrip,
        buffers: &mut ChunkBuffers,
    ) -> Result<(), InnerChunkError> {
        let g = &part.arrays.layout.grid;
        let (chunk_rows, chunk_cols) = (g.chunk_rows, g.chunk_cols);
        let cr = (strip.band_rows.start / chunk_rows) as u64;
        let cols = self.cols();
        // Output columns j, j+1, ... whose band columns fall in one inner chunk column.
        let mut j = 0;
        while j < part.col_map.len() {
            let cc = part.col_map[j] / chunk_cols;
            let mut k = j + 1;
            while k < part.col_map.len() && part.col_map[k] / chunk_cols == cc {
                k += 1;
            }
            let y = strip.year as u64;
            part.scales
                .read_into(&[y, cr, cc as u64], &mut buffers.scales)?;
            part.embeddings
                .read_into(&[y, cr, cc as u64, 0], &mut buffers.embeddings)?;
            for (r, band_row) in strip.band_rows.clone().enumerate() {
                let chunk_row = (band_row % chunk_rows) * chunk_cols;
                for (o, &band_col) in (j..k).zip(&part.col_map[j..k]) {
                    let s = chunk_row + band_col % chunk_cols;
                    let o = r * cols + o;
                    strip.scales[o] = buffers.scales[s];
                    strip.embeddings[o * CHANNELS..(o + 1) * CHANNELS]
                        .copy_from_slice(&buffers.embeddings[s * CHANNELS..(s + 1) * CHANNELS]);
                }
            }
            j = k;
        }
        Ok(())
    }

    /// Rows per block so that the blocks in flight (one read, one written) stay under about
    /// 256 MB.
    fn block_rows(&self) -> usize {
        let per_row = self.cols() * CHANNELS * if self.dequantize { 5 } else { 2 };
        (128_000_000 / per_row.max(1)).max(1)
    }

    /// Read `blocks` (year, output rows) in order on a thread of their own, one block ahead of
    /// `consume`, so that reading the next block overlaps writing this one. Stops at the first
    /// error of either side (the reader ends when `consume` returns).
    fn overlapped<R>(
        &self,
        blocks: Vec<(u16, Range<usize>)>,
        consume: impl FnOnce(&mut BlockStream) -> Result<R, QueryError>,
    ) -> Result<R, QueryError> {
        let (full_tx, full) = mpsc::sync_channel(1);
        let (empty, empty_rx) = mpsc::channel::<Block>();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                for (year, rows) in blocks {
                    let mut block = empty_rx.try_recv().unwrap_or_default();
                    let read = self.read_rows_into(year, rows.clone(), &mut block);
                    let failed = read.is_err();
                    if full_tx.send(read.map(|()| (block, rows))).is_err() || failed {
                        return;
                    }
                }
            });
            consume(&mut BlockStream { full, empty })
        })
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
        let blocks: Vec<(u16, Range<usize>)> = self
            .years
            .iter()
            .flat_map(|&year| {
                (0..rows)
                    .step_by(step)
                    .map(move |start| (year, start..(start + step).min(rows)))
            })
            .collect();
        self.overlapped(blocks, |stream| {
            while let Some((block, _)) = stream.next()? {
                if self.dequantize {
                    let values = dequantize(&block.embeddings, &block.scales);
                    emb_file
                        .write_all(&f32_bytes(&values))
                        .map_err(wrap(&emb_path))?;
                } else {
                    emb_file
                        .write_all(i8_bytes(&block.embeddings))
                        .map_err(wrap(&emb_path))?;
                    if let Some(f) = scales_file.as_mut() {
                        f.write_all(&f32_bytes(&block.scales))
                            .map_err(wrap(&scales_path))?;
                    }
                }
                stream.recycle(block);
            }
            Ok(())
        })?;
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
        // Strips of about 8 MB (GDAL and other readers cache whole strips), read in blocks of
        // whole strips, north first: output rows are ascending, so blocks go from the top.
        let strip_rows =
            (8_000_000 / (cols * CHANNELS * if self.dequantize { 4 } else { 1 })).max(1);
        let step = (self.block_rows() / strip_rows).max(1) * strip_rows;
        let blocks: Vec<(u16, Range<usize>)> = (0..rows.div_ceil(step))
            .map(|k| (year, rows.saturating_sub((k + 1) * step)..rows - k * step))
            .collect();
        let row_len = cols * CHANNELS;
        self.overlapped(blocks, |stream| {
            // The block being cut into strips, and its rows (block-relative) not yet written.
            let mut current: Option<(Block, Range<usize>)> = None;
            let mut next = || -> Result<Option<Strip>, String> {
                if current.as_ref().is_none_or(|(_, left)| left.is_empty()) {
                    if let Some((block, _)) = current.take() {
                        stream.recycle(block);
                    }
                    let Some((block, rows)) = stream.next().map_err(|e| chain(&e))? else {
                        return Ok(None);
                    };
                    current = Some((block, 0..rows.len()));
                }
                let (block, left) = current.as_mut().expect("a block");
                let top = left.end;
                left.end = top.saturating_sub(strip_rows).max(left.start);
                let row = |r: usize| &block.embeddings[r * row_len..(r + 1) * row_len];
                let n = top - left.end;
                Ok(Some(if self.dequantize {
                    let mut strip = Vec::with_capacity(n * row_len);
                    for r in (left.end..top).rev() {
                        strip.extend(dequantize(row(r), &block.scales[r * cols..(r + 1) * cols]));
                    }
                    Strip::Float32(strip)
                } else {
                    let mut strip = Vec::with_capacity(n * row_len);
                    for r in (left.end..top).rev() {
                        strip.extend_from_slice(row(r));
                    }
                    Strip::Int8(strip)
                }))
            };
            geotiff::write_128_band(
                out,
                cols,
                rows,
                strip_rows,
                self.dequantize,
                &transform,
                &mut next,
            )
            .map_err(|e| QueryError::Write {
                path: out.to_path_buf(),
                source: Box::new(e),
            })
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

/// Output rows of one year: embeddings (rows x cols x 128) and scales (rows x cols).
#[derive(Default)]
struct Block {
    embeddings: Vec<i8>,
    scales: Vec<f32>,
}

/// One strip of a block: band rows within one inner-chunk row of one part, and the block's
/// slices they fill.
struct ChunkRowStrip<'a> {
    part: usize,
    year: usize,
    band_rows: Range<usize>,
    embeddings: &'a mut [i8],
    scales: &'a mut [f32],
}

/// Each thread's decoded chunks, reused from chunk to chunk.
#[derive(Default)]
struct ChunkBuffers {
    embeddings: Vec<i8>,
    scales: Vec<f32>,
}

/// The blocks of [`QueryPlan::overlapped`] as they are read.
struct BlockStream {
    full: mpsc::Receiver<Result<(Block, Range<usize>), QueryError>>,
    empty: mpsc::Sender<Block>,
}

impl BlockStream {
    /// The next block in order, `None` after the last.
    fn next(&mut self) -> Result<Option<(Block, Range<usize>)>, QueryError> {
        self.full.recv().ok().transpose()
    }

    /// Hand a written block's buffers back to the reader.
    fn recycle(&self, block: Block) {
        let _ = self.empty.send(block);
    }
}

/// `embeddings * scales` per pixel, NaN where the scale is NaN.
pub fn dequantize(emb: &[i8], scales: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; emb.len()];
    for ((o, e), &s) in out
        .chunks_exact_mut(CHANNELS)
        .zip(emb.chunks_exact(CHANNELS))
        .zip(scales)
    {
        for (o, &v) in o.iter_mut().zip(e) {
            *o = v as f32 * s;
        }
    }
    out
}

fn i8_bytes(v: &[i8]) -> &[u8] {
    bytemuck::cast_slice(v)
}

/// Little-endian bytes of `v` (npy and the sidecar say `<f4`): the values themselves on a
/// little-endian machine.
fn f32_bytes(v: &[f32]) -> std::borrow::Cow<'_, [u8]> {
    if cfg!(target_endian = "little") {
        std::borrow::Cow::Borrowed(bytemuck::cast_slice(v))
    } else {
        std::borrow::Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect())
    }
}
