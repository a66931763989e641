//! Synthetic TESSERA trees: tiles with the exact real geometry and realistic content.
//!
//! Content is a function of the global position, so neighbouring tiles join seamlessly. The
//! default ([`Content::Landscape`]) compresses like real TESSERA embeddings (blosc zstd 3 with
//! bitshuffle on 32 x 32 chunks keeps about 0.45 of the raw bytes, as TESSERA's own Zarr does):
//! - patches (fields, forest; a few hundred metres, Voronoi cells with sharp borders) of
//!   near-identical vectors, each patch one of a few land-cover classes that come in regions,
//!   some patches changing class from year to year (crop rotation);
//! - channels correlated: every vector is a mix of 8 basis vectors (class, patch offset and
//!   smooth gradients from a few fractal fields);
//! - per-pixel quantisation as TESSERA's (the largest channel is +-127, the scale carries the
//!   magnitude), so the int8 values spread over the whole range and the scales vary smoothly;
//! - per-pixel noise of about 0.37 int8 steps in every channel, so no two neighbouring
//!   pixels carry the same vector (a misplaced pixel is caught);
//! - water where a land field falls below a threshold (its own vector), and a few invalid scale
//!   sentinels (NaN, 0, negative, FLT_MAX, inf).
//!
//! [`Content::Noise`] keeps the earlier content (smooth fields plus strong per-pixel noise,
//! nearly incompressible). Everything is a pure function of (seed, year, cell, pixel):
//! deterministic for a seed.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::LANDMASK_DIR;
use super::geotiff::{self, GeoTransform};
use super::npy::{self, NpyDtype};
use crate::grid::{CHANNELS, Cell, GeometryError, PIXEL_M, TileGeometry, UtmProjection, UtmZone};
use crate::hash::splitmix64;

/// What to synthesise.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    /// Output root (becomes the TESSERA `ROOT`).
    pub out: PathBuf,
    /// Candidate cells.
    pub cells: Vec<Cell>,
    /// When true every candidate cell gets a tile; otherwise all-water cells are left out.
    pub keep_water_cells: bool,
    /// Years to write.
    pub years: Vec<u16>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Approximate fraction of land pixels (0..=1).
    pub land_fraction: f64,
    /// Also write landmask GeoTIFFs (0 = water).
    pub landmasks: bool,
    /// What the tiles hold.
    pub content: Content,
}

/// What synthetic tiles hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Content {
    /// Patches of similar vectors, correlated channels, smooth gradients and scales, light
    /// per-pixel noise: compresses like real TESSERA embeddings.
    #[default]
    Landscape,
    /// Smooth fields plus strong per-pixel noise: nearly incompressible (the earlier content).
    Noise,
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct SynthSummary {
    /// Tiles written (cells x years).
    pub tiles: usize,
    /// Cells with a tile.
    pub cells: usize,
    /// Candidate cells left out because they are all water.
    pub water_cells: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// Errors while synthesising.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Geometry(#[from] GeometryError),
    #[error("cannot write landmask {path}: {source}")]
    Landmask {
        path: PathBuf,
        source: geotiff::GeoTiffError,
    },
}

/// The seeded landscape every tile samples.
#[derive(Debug, Clone)]
pub struct Landscape {
    seed: u64,
    land_threshold: f64,
    content: Content,
    /// Channel weights of the smooth fields (noise content): [channel][field].
    weights: Vec<[f32; FIELDS]>,
    water_signature: Vec<f32>,
    /// The basis every landscape vector is a mix of: [component][channel].
    basis: Vec<[f32; CHANNELS]>,
    /// Mixing coefficients of each land-cover class: [class][component].
    classes: Vec<[f32; RANK]>,
    /// Mixing coefficients of water.
    water: [f32; RANK],
    /// How the smooth fields enter the mix: [field][component].
    gradients: [[f32; RANK]; FIELDS],
    /// Standard deviation of the per-pixel noise, in int8 steps.
    noise: f32,
}

const FIELDS: usize = 4;
/// Components of the landscape vectors (so the 128 channels are correlated).
const RANK: usize = 8;
/// Land-cover classes.
const CLASSES: usize = 10;
/// Patch size (Voronoi lattice step) in degrees of latitude: about 330 m.
const PATCH_DEG: f64 = 0.003;
/// Per-pixel noise in int8 steps; calibrated so that blosc zstd 3 + bitshuffle on 32 x 32
/// chunks keeps about 0.45 of a tile's bytes (`tests::landscape_compresses_like_tessera`).
const NOISE_STEPS: f32 = 0.37;

impl Landscape {
    /// Build the landscape; the land threshold is the quantile that gives `land_fraction`
    /// over the given cells.
    pub fn new(seed: u64, land_fraction: f64, cells: &[Cell]) -> Landscape {
        let gauss = |a: u64, b: u64, c: u64| {
            let h = hash3(seed, a, b, c);
            (unit(h) + unit(splitmix64(h)) + unit(splitmix64(h ^ 1))) as f32
        };
        let mut ls = Landscape {
            seed,
            land_threshold: 0.0,
            content: Content::Landscape,
            basis: (0..RANK)
                .map(|r| std::array::from_fn(|ch| gauss(0xBA515, r as u64, ch as u64)))
                .collect(),
            classes: (0..CLASSES)
                .map(|k| std::array::from_fn(|r| gauss(0xC1A55, k as u64, r as u64)))
                .collect(),
            water: std::array::from_fn(|r| 0.7 * gauss(0xEA7E4, 1, r as u64)),
            gradients: std::array::from_fn(|k| {
                std::array::from_fn(|r| 0.6 * gauss(0x6AD, k as u64, r as u64))
            }),
            noise: NOISE_STEPS,
            weights: (0..CHANNELS)
                .map(|ch| {
                    std::array::from_fn(|k| unit(hash3(seed, 0xC0FFEE, ch as u64, k as u64)) as f32)
                })
                .collect(),
            water_signature: (0..CHANNELS)
                .map(|ch| 0.6 * unit(hash3(seed, 0xEA7E4, ch as u64, 0)) as f32)
                .collect(),
        };
        let fraction = land_fraction.clamp(0.0, 1.0);
        ls.land_threshold = if fraction >= 1.0 {
            f64::NEG_INFINITY
        } else if fraction <= 0.0 || cells.is_empty() {
            f64::INFINITY
        } else {
            let mut samples: Vec<f64> = (0..4096u64)
                .map(|i| {
                    let c = cells[(hash3(seed, 7, i, 0) % cells.len() as u64) as usize];
                    let lon = c.lon_min() + 0.1 * to01(hash3(seed, 8, i, 0));
                    let lat = c.lat_min() + 0.1 * to01(hash3(seed, 9, i, 0));
                    ls.land_field(lon, lat)
                })
                .collect();
            samples.sort_by(f64::total_cmp);
            samples[((1.0 - fraction) * (samples.len() - 1) as f64) as usize]
        };
        ls
    }

    /// The same landscape with another content.
    pub fn with_content(mut self, content: Content) -> Landscape {
        self.content = content;
        self
    }

    /// The same landscape with per-pixel noise of `steps` int8 steps (landscape content).
    pub fn with_noise(mut self, steps: f32) -> Landscape {
        self.noise = steps;
        self
    }

    /// The patch (a cell of a jittered Voronoi lattice about 330 m across) holding a point:
    /// a hash that names it.
    fn patch(&self, lon: f64, lat: f64) -> u64 {
        // Longitude shrinks by the cosine of the latitude, taken constant over each 1-degree
        // band of latitude (a varying one would shear the patches into slivers).
        let shrink = (lat.floor() + 0.5).to_radians().cos().max(0.05);
        let x = (lon + 180.0) * shrink / PATCH_DEG;
        let y = (lat + 90.0) / PATCH_DEG;
        let (i0, j0) = (x.floor() as i64, y.floor() as i64);
        let mut best = (f64::INFINITY, 0);
        for j in j0 - 1..=j0 + 1 {
            for i in i0 - 1..=i0 + 1 {
                let h = hash3(self.seed, 0x9A7C4, i as u64, j as u64);
                let px = i as f64 + to01(h);
                let py = j as f64 + to01(splitmix64(h));
                let d = (px - x).powi(2) + (py - y).powi(2);
                if d < best.0 {
                    best = (d, h);
                }
            }
        }
        best.1
    }

    /// The land-cover class of a patch in a year: classes come in regions (a smooth field),
    /// mixed per patch, and about 15% of patches change class each year (crop rotation).
    fn class(&self, patch: u64, lon: f64, lat: f64, year: u16) -> usize {
        let region = fbm(self.seed ^ 0xC1A55, lon, lat, 0.08, 3) + 0.6 * unit(splitmix64(patch));
        let mut class = (((region + 1.6) / 3.2 * CLASSES as f64).floor() as i64)
            .clamp(0, CLASSES as i64 - 1) as usize;
        let rotation = hash3(patch, 0x7EA5, year as u64, 0);
        if to01(rotation) < 0.15 {
            class = (class + 1 + (rotation >> 60) as usize % (CLASSES - 1)) % CLASSES;
        }
        class
    }

    /// The land field: land where it is above the threshold.
    fn land_field(&self, lon: f64, lat: f64) -> f64 {
        fbm(self.seed ^ 0x1A4D, lon, lat, 3.2, 7)
    }

    /// True where the landscape is land.
    pub fn is_land(&self, lon: f64, lat: f64) -> bool {
        self.land_field(lon, lat) > self.land_threshold
    }

    fn fields(&self, lon: f64, lat: f64) -> [f32; FIELDS] {
        std::array::from_fn(|k| {
            fbm(self.seed.wrapping_add(101 + k as u64), lon, lat, 1.6, 6) as f32
        })
    }

    /// One landscape pixel: fills its 128 int8 channels and returns its scale.
    fn pixel(
        &self,
        emb: &mut [i8],
        pixel_hash: u64,
        lon: f64,
        lat: f64,
        land: bool,
        year: u16,
    ) -> f32 {
        let f = self.fields(lon, lat);
        let mut mix = [0f32; RANK];
        if land {
            let patch = self.patch(lon, lat);
            let class = &self.classes[self.class(patch, lon, lat, year)];
            for (r, m) in mix.iter_mut().enumerate() {
                // The class, a small offset of the patch, and the smooth gradients.
                *m = class[r] + 0.25 * unit(hash3(patch, 0x0FF5E7, r as u64, 0)) as f32;
                for (k, g) in self.gradients.iter().enumerate() {
                    *m += g[r] * f[k];
                }
            }
        } else {
            for (r, m) in mix.iter_mut().enumerate() {
                *m = self.water[r] + 0.15 * self.gradients[0][r] * f[0];
            }
        }
        let mut v = [0f32; CHANNELS];
        for (r, basis) in self.basis.iter().enumerate() {
            for (x, b) in v.iter_mut().zip(basis) {
                *x += mix[r] * b;
            }
        }
        // Quantised per pixel as TESSERA's are: the largest channel is +-127.
        let peak = v.iter().fold(1e-6f32, |m, x| m.max(x.abs()));
        // Per-pixel noise: the sum of two bytes per channel (triangular, unit variance).
        let mut noise = [0u8; 2 * CHANNELS];
        for (k, chunk) in noise.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(
                &splitmix64(pixel_hash ^ (k as u64).wrapping_mul(0x9E37)).to_le_bytes(),
            );
        }
        for (ch, e) in emb.iter_mut().enumerate() {
            let n = (noise[2 * ch] as f32 + noise[2 * ch + 1] as f32 - 255.0) / 104.5;
            *e = (127.0 * v[ch] / peak + self.noise * n)
                .round()
                .clamp(-127.0, 127.0) as i8;
        }
        // The magnitude goes into the scale: smooth within a patch and over the region.
        0.0005 * (1.0 + 0.3 * f[1]).max(0.2) * peak
    }

    /// One pixel of the earlier, noise-like content.
    fn noise_pixel(
        &self,
        emb: &mut [i8],
        pixel_hash: u64,
        lon: f64,
        lat: f64,
        land: bool,
        year: u16,
    ) -> f32 {
        let f = self.fields(lon, lat);
        let year_drift = (year as f32 - 2020.0) * 0.04;
        // Per-pixel noise bytes, 8 per 64-bit hash.
        let mut noise = [0u8; CHANNELS];
        for (k, chunk) in noise.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(
                &splitmix64(pixel_hash ^ (k as u64).wrapping_mul(0x9E37)).to_le_bytes(),
            );
        }
        for (ch, e) in emb.iter_mut().enumerate() {
            let w = &self.weights[ch];
            let smooth = if land {
                w[0] * f[0]
                    + w[1] * f[1]
                    + w[2] * f[2]
                    + w[3] * f[3]
                    + year_drift * w[(ch + 1) % FIELDS]
            } else {
                self.water_signature[ch] + 0.1 * w[0] * f[0]
            };
            let v = 70.0 * smooth + (noise[ch] as f32 - 127.5) * 0.12;
            *e = v.round().clamp(-127.0, 127.0) as i8;
        }
        0.02 * (1.0 + 0.3 * f[1]) * (1.0 + 0.05 * ((pixel_hash >> 40) as f32 / 16_777_216.0 - 0.5))
    }

    /// True when some part of the cell is land (sampled on a 9 x 9 lattice).
    pub fn cell_has_land(&self, cell: Cell) -> bool {
        (0..81).any(|i| {
            let lon = cell.lon_min() + 0.1 * ((i % 9) as f64 + 0.5) / 9.0;
            let lat = cell.lat_min() + 0.1 * ((i / 9) as f64 + 0.5) / 9.0;
            self.is_land(lon, lat)
        })
    }
}

/// One synthesised tile in memory.
pub struct SynthTile {
    /// Geometry (the real one).
    pub geometry: TileGeometry,
    /// int8 (H, W, 128), C order.
    pub embeddings: Vec<i8>,
    /// float32 (H, W).
    pub scales: Vec<f32>,
    /// 1 = land, 0 = water, (H, W).
    pub landmask: Vec<u8>,
}

/// Per-pixel lon/lat of a tile (interpolated from PROJ on a 32-pixel lattice; the content only
/// needs smooth positions).
fn pixel_lonlat(g: &TileGeometry, proj: &UtmProjection) -> Result<Vec<(f64, f64)>, GeometryError> {
    const STEP: usize = 32;
    let node_rows: Vec<usize> = (0..g.height).step_by(STEP).chain([g.height - 1]).collect();
    let node_cols: Vec<usize> = (0..g.width).step_by(STEP).chain([g.width - 1]).collect();
    let mut nodes = Vec::with_capacity(node_rows.len() * node_cols.len());
    for &r in &node_rows {
        for &c in &node_cols {
            let (e, n) = g.pixel_centre(r, c);
            nodes.push(proj.inverse(e, n)?);
        }
    }
    let mut out = vec![(0.0, 0.0); g.height * g.width];
    let locate = |nodes_at: &[usize], v: usize| {
        let i = (v / STEP).min(nodes_at.len() - 2);
        let (a, b) = (nodes_at[i], nodes_at[i + 1]);
        (
            i,
            if b > a {
                (v - a) as f64 / (b - a) as f64
            } else {
                0.0
            },
        )
    };
    out.par_chunks_mut(g.width)
        .enumerate()
        .for_each(|(r, row)| {
            let (i, fy) = locate(&node_rows, r);
            for (c, px) in row.iter_mut().enumerate() {
                let (j, fx) = locate(&node_cols, c);
                let at = |a: usize, b: usize| nodes[a * node_cols.len() + b];
                let (p00, p01, p10, p11) = (at(i, j), at(i, j + 1), at(i + 1, j), at(i + 1, j + 1));
                let lerp = |a: f64, b: f64, t: f64| a + (b - a) * t;
                *px = (
                    lerp(lerp(p00.0, p01.0, fx), lerp(p10.0, p11.0, fx), fy),
                    lerp(lerp(p00.1, p01.1, fx), lerp(p10.1, p11.1, fx), fy),
                );
            }
        });
    Ok(out)
}

/// Synthesise one tile of one year.
pub fn synth_tile(
    landscape: &Landscape,
    geometry: &TileGeometry,
    proj: &UtmProjection,
    year: u16,
) -> Result<SynthTile, GeometryError> {
    let g = geometry;
    let lonlat = pixel_lonlat(g, proj)?;
    let npx = g.height * g.width;
    let mut embeddings = vec![0i8; npx * CHANNELS];
    let mut scales = vec![0f32; npx];
    let mut landmask = vec![0u8; npx];
    let seed = landscape.seed;
    let cell_key = ((g.cell.lat_index as u64) << 16) | g.cell.lon_index as u64;
    embeddings
        .par_chunks_mut(CHANNELS)
        .zip(scales.par_iter_mut())
        .zip(landmask.par_iter_mut())
        .enumerate()
        .for_each(|(p, ((emb, scale), mask))| {
            let (lon, lat) = lonlat[p];
            let land = landscape.is_land(lon, lat);
            *mask = land as u8;
            let pixel_hash = hash3(seed, year as u64, cell_key, p as u64);
            *scale = match landscape.content {
                Content::Landscape => landscape.pixel(emb, pixel_hash, lon, lat, land, year),
                Content::Noise => landscape.noise_pixel(emb, pixel_hash, lon, lat, land, year),
            };
            // A few invalid scale sentinels (about 1 in 5000 pixels).
            if pixel_hash % 5000 == 17 {
                *scale = [f32::NAN, 0.0, -1.0, f32::MAX, f32::INFINITY, 3.0e38]
                    [(pixel_hash >> 32) as usize % 6];
            }
        });
    Ok(SynthTile {
        geometry: *g,
        embeddings,
        scales,
        landmask,
    })
}

/// Write a synthetic TESSERA tree. `progress` is called after each tile.
pub fn synthesize(
    options: &SynthOptions,
    progress: &(dyn Fn(&Path) + Sync),
) -> Result<SynthSummary, SynthError> {
    let landscape = Landscape::new(options.seed, options.land_fraction, &options.cells)
        .with_content(options.content);
    let cells: Vec<Cell> = if options.keep_water_cells {
        options.cells.clone()
    } else {
        options
            .cells
            .par_iter()
            .copied()
            .filter(|&c| landscape.cell_has_land(c))
            .collect()
    };
    let mut summary = SynthSummary {
        cells: cells.len(),
        water_cells: options.cells.len() - cells.len(),
        ..Default::default()
    };
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SynthError::Write { path, source }
    };
    for &cell in &cells {
        let proj = UtmProjection::new(UtmZone::for_cell(cell))?;
        let geometry = TileGeometry::with_projection(cell, &proj)?;
        for (i, &year) in options.years.iter().enumerate() {
            let tile = synth_tile(&landscape, &geometry, &proj, year)?;
            let name = cell.name();
            let dir = options.out.join(year.to_string()).join(&name);
            std::fs::create_dir_all(&dir).map_err(write_err(&dir))?;
            let (h, w) = (geometry.height, geometry.width);
            let emb_path = dir.join(format!("{name}.npy"));
            let bytes: &[u8] = bytemuck::cast_slice(&tile.embeddings);
            npy::write_npy(&emb_path, NpyDtype::Int8, &[h, w, CHANNELS], bytes)
                .map_err(write_err(&emb_path))?;
            let scales_path = dir.join(format!("{name}_scales.npy"));
            let scale_bytes: Vec<u8> = tile.scales.iter().flat_map(|s| s.to_le_bytes()).collect();
            npy::write_npy(&scales_path, NpyDtype::Float32, &[h, w], &scale_bytes)
                .map_err(write_err(&scales_path))?;
            summary.tiles += 1;
            summary.bytes += (bytes.len() + scale_bytes.len()) as u64;
            if options.landmasks && i == 0 {
                let mask_dir = options.out.join(LANDMASK_DIR);
                std::fs::create_dir_all(&mask_dir).map_err(write_err(&mask_dir))?;
                let path = mask_dir.join(format!("{name}.tiff"));
                let transform = GeoTransform {
                    epsg: geometry.epsg(),
                    x0: geometry.origin_e,
                    y0: geometry.origin_n,
                    dx: PIXEL_M,
                    dy: PIXEL_M,
                };
                geotiff::write_u8(&path, w, h, &tile.landmask, &transform).map_err(|source| {
                    SynthError::Landmask {
                        path: path.clone(),
                        source,
                    }
                })?;
            }
            progress(&emb_path);
        }
    }
    Ok(summary)
}

fn hash3(seed: u64, a: u64, b: u64, c: u64) -> u64 {
    splitmix64(splitmix64(splitmix64(seed ^ a).wrapping_add(b)).wrapping_add(c))
}

fn to01(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn unit(h: u64) -> f64 {
    2.0 * to01(h) - 1.0
}

/// Value noise on a lattice of `wavelength` degrees, periodic around the globe in longitude.
fn value_noise(seed: u64, lon: f64, lat: f64, wavelength: f64) -> f64 {
    let period = (360.0 / wavelength).round() as i64;
    let x = (lon + 180.0) / wavelength;
    let y = (lat + 90.0) / wavelength;
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let smooth = |t: f64| t * t * (3.0 - 2.0 * t);
    let (sx, sy) = (smooth(fx), smooth(fy));
    let v = |i: i64, j: i64| unit(hash3(seed, i.rem_euclid(period) as u64, j as u64, 0x5EED));
    let (i, j) = (x0 as i64, y0 as i64);
    let a = v(i, j) + (v(i + 1, j) - v(i, j)) * sx;
    let b = v(i, j + 1) + (v(i + 1, j + 1) - v(i, j + 1)) * sx;
    a + (b - a) * sy
}

/// Fractal sum of `octaves` value-noise layers, halving wavelength and amplitude each time.
fn fbm(seed: u64, lon: f64, lat: f64, wavelength: f64, octaves: u32) -> f64 {
    let mut total = 0.0;
    let mut amplitude = 1.0;
    let mut w = wavelength;
    for o in 0..octaves {
        total += amplitude * value_noise(seed.wrapping_add(o as u64 * 7919), lon, lat, w);
        amplitude *= 0.55;
        w /= 2.0;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_continuous_across_the_antimeridian() {
        let a = fbm(3, 179.999_999, 10.0, 1.6, 6);
        let b = fbm(3, -179.999_999, 10.0, 1.6, 6);
        assert!((a - b).abs() < 1e-3, "{a} {b}");
    }
}
