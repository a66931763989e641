//! `bands.toml`: which latitude bands to build and how to lay out and compress them.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The whole band configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandsConfig {
    /// Output rows per 0.1-degree cell (R), common to every band.
    pub rows_per_cell: usize,
    /// Inner chunk layout.
    pub chunks: ChunkConfig,
    /// Compression of the inner chunks.
    pub compression: CompressionConfig,
    /// Fill value of the `embeddings` array (the `scales` fill is always NaN).
    #[serde(default)]
    pub embeddings_fill: i8,
    /// The bands, in any order; they must not overlap.
    #[serde(rename = "band")]
    pub bands: Vec<BandSpec>,
}

/// Inner chunk layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkConfig {
    /// Rows per inner chunk; must divide `rows_per_cell`.
    pub rows: usize,
    /// Target columns per inner chunk; the real width is chosen per band so chunks tile a cell.
    pub target_cols: usize,
    /// Byte order of an `embeddings` inner chunk before compression (pixel-major when absent,
    /// as every store built before this setting existed).
    #[serde(default)]
    pub order: ChunkOrder,
}

/// The byte order of an `embeddings` inner chunk as stored (before compression).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkOrder {
    /// (lat, lon, channel): each pixel's 128 channels together, the array's own order.
    #[default]
    PixelMajor,
    /// (channel, lat, lon): one plane per channel, written with the Zarr v3 core `transpose`
    /// codec (order [0, 3, 1, 2]) before `bytes`, so every reader restores (year, lat, lon,
    /// channel) by itself.
    ChannelPlanar,
}

/// A compression codec for the inner chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "codec", rename_all = "lowercase", deny_unknown_fields)]
pub enum CompressionConfig {
    /// No compression.
    None,
    /// Zstandard at a level (1..=22).
    Zstd {
        /// Compression level.
        level: i32,
    },
    /// Blosc (zstd or lz4 inside) with byte or bit shuffle.
    Blosc {
        /// Inner compressor: `zstd`, `lz4`, `lz4hc`, `zlib` or `blosclz`.
        cname: String,
        /// Compression level 0..=9.
        clevel: u8,
        /// `noshuffle`, `shuffle` or `bitshuffle`.
        shuffle: String,
    },
}

/// One latitude band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandSpec {
    /// Group name in the store, e.g. `70-80`.
    pub name: String,
    /// Southern edge in degrees (a multiple of 0.1).
    pub lat_min: f64,
    /// Northern edge in degrees (a multiple of 0.1).
    pub lat_max: f64,
}

impl BandSpec {
    /// Southern edge as a cell latitude index.
    pub fn lat_start_index(&self) -> u16 {
        ((self.lat_min + 90.0) * 10.0).round() as u16
    }

    /// Northern edge (exclusive) as a cell latitude index.
    pub fn lat_end_index(&self) -> u16 {
        ((self.lat_max + 90.0) * 10.0).round() as u16
    }
}

/// The conventional name of a band: `70-80`, `0-10`, `S10-0`, `S60-S50`, `79.5-80.3`.
pub fn band_name(lat_min: f64, lat_max: f64) -> String {
    let part = |x: f64| {
        let x = (x * 10.0).round() / 10.0;
        let text = if x.fract() == 0.0 {
            format!("{}", x.abs() as i64)
        } else {
            format!("{:.1}", x.abs())
        };
        if x < 0.0 { format!("S{text}") } else { text }
    };
    format!("{}-{}", part(lat_min), part(lat_max))
}

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum BandsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: std::path::PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid band configuration: {0}")]
    Invalid(String),
    #[error("no band named `{name}` (known: {known})")]
    UnknownBand { name: String, known: String },
}

impl Default for BandsConfig {
    /// 10-degree bands from -90 to 90 with the default layout.
    fn default() -> Self {
        let bands = (-9..9)
            .map(|i| {
                let (a, b) = (i as f64 * 10.0, (i + 1) as f64 * 10.0);
                BandSpec {
                    name: band_name(a, b),
                    lat_min: a,
                    lat_max: b,
                }
            })
            .collect();
        BandsConfig {
            rows_per_cell: 1170,
            chunks: ChunkConfig {
                rows: 39,
                target_cols: 40,
                order: ChunkOrder::PixelMajor,
            },
            compression: CompressionConfig::Zstd { level: 3 },
            embeddings_fill: 0,
            bands,
        }
    }
}

impl BandsConfig {
    /// Read and validate a `bands.toml`.
    pub fn load(path: &Path) -> Result<BandsConfig, BandsError> {
        let text = std::fs::read_to_string(path).map_err(|source| BandsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config: BandsConfig = toml::from_str(&text).map_err(|source| BandsError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Check edges, names, overlaps and the chunk layout.
    pub fn validate(&self) -> Result<(), BandsError> {
        let invalid = |m: String| Err(BandsError::Invalid(m));
        if self.rows_per_cell == 0 || self.chunks.rows == 0 || self.chunks.target_cols == 0 {
            return invalid("rows_per_cell and chunk sizes must be positive".into());
        }
        if !self.rows_per_cell.is_multiple_of(self.chunks.rows) {
            return invalid(format!(
                "chunks.rows = {} does not divide rows_per_cell = {}",
                self.chunks.rows, self.rows_per_cell
            ));
        }
        let mut sorted: Vec<&BandSpec> = self.bands.iter().collect();
        sorted.sort_by(|a, b| a.lat_min.total_cmp(&b.lat_min));
        for b in &sorted {
            let on_grid = |x: f64| ((x * 10.0).round() - x * 10.0).abs() < 1e-6;
            if !(on_grid(b.lat_min) && on_grid(b.lat_max)) {
                return invalid(format!(
                    "band {}: edges must be multiples of 0.1 degree",
                    b.name
                ));
            }
            if !(-90.0..=90.0).contains(&b.lat_min)
                || !(-90.0..=90.0).contains(&b.lat_max)
                || b.lat_start_index() >= b.lat_end_index()
            {
                return invalid(format!(
                    "band {}: needs -90 <= lat_min < lat_max <= 90, has {}..{}",
                    b.name, b.lat_min, b.lat_max
                ));
            }
            let ok_name = !b.name.is_empty()
                && !b.name.starts_with("__")
                && b.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
                && b.name.chars().any(|c| c != '.');
            if !ok_name {
                return invalid(format!("band name `{}` is not a valid group name", b.name));
            }
        }
        for w in sorted.windows(2) {
            if w[0].lat_end_index() > w[1].lat_start_index() {
                return invalid(format!("bands {} and {} overlap", w[0].name, w[1].name));
            }
        }
        let mut names: Vec<&str> = self.bands.iter().map(|b| b.name.as_str()).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return invalid(format!("band name {} used twice", w[0]));
        }
        Ok(())
    }

    /// The band with this name.
    pub fn band(&self, name: &str) -> Result<&BandSpec, BandsError> {
        self.bands
            .iter()
            .find(|b| b.name == name)
            .ok_or_else(|| BandsError::UnknownBand {
                name: name.to_string(),
                known: self
                    .bands
                    .iter()
                    .map(|b| b.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The band containing a cell latitude index, if any.
    pub fn band_of_lat_index(&self, lat_index: u16) -> Option<&BandSpec> {
        self.bands
            .iter()
            .find(|b| (b.lat_start_index()..b.lat_end_index()).contains(&lat_index))
    }

    /// Render as TOML (used to print proposed bands).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("config serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_names_are_conventional() {
        let c = BandsConfig::default();
        c.validate().unwrap();
        assert_eq!(c.bands.len(), 18);
        assert!(c.band("70-80").is_ok());
        assert!(c.band("S10-0").is_ok());
        assert!(c.band("S60-S50").is_ok());
        assert_eq!(band_name(79.5, 80.3), "79.5-80.3");
        let back: BandsConfig = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn shipped_bands_toml_is_the_default() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bands.toml");
        assert_eq!(BandsConfig::load(&path).unwrap(), BandsConfig::default());
    }

    #[test]
    fn rejects_bad_configs() {
        let mut c = BandsConfig::default();
        c.bands[1].lat_min = -85.0;
        assert!(c.validate().is_err(), "overlap");
        let mut c = BandsConfig::default();
        c.bands[0].lat_max = -80.05;
        assert!(c.validate().is_err(), "off grid");
        let mut c = BandsConfig::default();
        c.chunks.rows = 100;
        assert!(c.validate().is_err(), "chunk does not divide");
        let mut c = BandsConfig::default();
        c.bands[2].name = c.bands[3].name.clone();
        assert!(c.validate().is_err(), "duplicate name");
    }
}
