//! The 0.1-degree cell: TESSERA's unit of tiling, and its `grid_{lon}_{lat}` name.
//!
//! A cell is identified by two integer indices so that no floating-point rounding ever
//! decides which cell a name denotes: `lon_index` counts 0.1-degree columns east of -180,
//! `lat_index` counts 0.1-degree rows north of -90.

use std::fmt;
use std::str::FromStr;

/// Number of 0.1-degree cells around a parallel.
pub const LON_CELLS: u16 = 3600;
/// Number of 0.1-degree cells from pole to pole.
pub const LAT_CELLS: u16 = 1800;
/// Cell size in degrees.
pub const CELL_DEG: f64 = 0.1;

/// Latitude in degrees of the southern edge of cell row `lat_index` (exact for every edge:
/// the nearest double to the decimal value).
pub fn lat_of_index(lat_index: u16) -> f64 {
    (lat_index as f64 - 900.0) / 10.0
}

/// One 0.1 x 0.1 degree cell of the global grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    /// Latitude index (0 = the row -90.0..-89.9). Ordered first so cells sort south to north.
    pub lat_index: u16,
    /// Longitude index (0 = the column -180.0..-179.9).
    pub lon_index: u16,
}

/// Why a string is not a valid tile name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CellNameError {
    #[error("name does not start with `grid_`")]
    MissingPrefix,
    #[error("expected `grid_{{lon}}_{{lat}}`, found {0} underscore-separated parts")]
    WrongParts(usize),
    #[error("coordinate `{0}` is not a number with exactly two decimals")]
    BadNumber(String),
    #[error("coordinate `{0}` is not a cell centre (centres end in .x5)")]
    NotCentre(String),
    #[error("coordinate `{0}` is out of range")]
    OutOfRange(String),
    #[error("coordinate `{0}` is not written canonically (no leading zeros)")]
    NotCanonical(String),
}

impl Cell {
    /// The cell with the given indices, or `None` when they are outside the globe.
    pub fn new(lon_index: u16, lat_index: u16) -> Option<Cell> {
        (lon_index < LON_CELLS && lat_index < LAT_CELLS).then_some(Cell {
            lat_index,
            lon_index,
        })
    }

    /// The cell containing a point (lon, lat) in degrees; points on an edge go to the
    /// cell east / north of it, and lon 180 / lat 90 to the last cell.
    pub fn containing(lon: f64, lat: f64) -> Option<Cell> {
        if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
            return None;
        }
        let i = (((lon + 180.0) * 10.0).floor() as i64).clamp(0, LON_CELLS as i64 - 1);
        let j = (((lat + 90.0) * 10.0).floor() as i64).clamp(0, LAT_CELLS as i64 - 1);
        Cell::new(i as u16, j as u16)
    }

    /// Cell centre longitude in hundredths of a degree (exact).
    pub fn lon_centre_hundredths(self) -> i32 {
        -18000 + 10 * self.lon_index as i32 + 5
    }

    /// Cell centre latitude in hundredths of a degree (exact).
    pub fn lat_centre_hundredths(self) -> i32 {
        -9000 + 10 * self.lat_index as i32 + 5
    }

    /// Cell centre longitude in degrees.
    pub fn lon_centre(self) -> f64 {
        self.lon_centre_hundredths() as f64 / 100.0
    }

    /// Cell centre latitude in degrees.
    pub fn lat_centre(self) -> f64 {
        self.lat_centre_hundredths() as f64 / 100.0
    }

    /// Western edge in degrees.
    pub fn lon_min(self) -> f64 {
        (self.lon_index as i32 - 1800) as f64 / 10.0
    }

    /// Southern edge in degrees.
    pub fn lat_min(self) -> f64 {
        (self.lat_index as i32 - 900) as f64 / 10.0
    }

    /// The TESSERA name of this cell's tile, e.g. `grid_-99.95_80.05`.
    pub fn name(self) -> String {
        format!(
            "grid_{}_{}",
            format_hundredths(self.lon_centre_hundredths()),
            format_hundredths(self.lat_centre_hundredths())
        )
    }

    /// The cell whose centre is (lon, lat) in hundredths of a degree (both `x.x5`).
    pub fn from_centre_hundredths(lon: i32, lat: i32) -> Result<Cell, CellNameError> {
        Cell::parse_name(&format!(
            "grid_{}_{}",
            format_hundredths(lon),
            format_hundredths(lat)
        ))
    }

    /// Parse a tile name `grid_{lon}_{lat}` (exactly two decimals, a cell centre).
    pub fn parse_name(name: &str) -> Result<Cell, CellNameError> {
        let rest = name
            .strip_prefix("grid_")
            .ok_or(CellNameError::MissingPrefix)?;
        let parts: Vec<&str> = rest.split('_').collect();
        if parts.len() != 2 {
            return Err(CellNameError::WrongParts(parts.len()));
        }
        let lon = parse_hundredths(parts[0])?;
        let lat = parse_hundredths(parts[1])?;
        let index = |v: i32, half_range: i32, text: &str| -> Result<u16, CellNameError> {
            if v.rem_euclid(10) != 5 {
                return Err(CellNameError::NotCentre(text.to_string()));
            }
            if v <= -half_range || v >= half_range {
                return Err(CellNameError::OutOfRange(text.to_string()));
            }
            Ok(((v + half_range - 5) / 10) as u16)
        };
        Ok(Cell {
            lon_index: index(lon, 18000, parts[0])?,
            lat_index: index(lat, 9000, parts[1])?,
        })
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl serde::Serialize for Cell {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Cell {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Cell::parse_name(&name).map_err(serde::de::Error::custom)
    }
}

impl FromStr for Cell {
    type Err = CellNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cell::parse_name(s)
    }
}

/// Format hundredths as a decimal with exactly two places: -9995 -> "-99.95", 5 -> "0.05".
fn format_hundredths(v: i32) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

/// Parse `-?D+.DD` into hundredths, rejecting anything else (no exponent, no `+`).
fn parse_hundredths(text: &str) -> Result<i32, CellNameError> {
    let bad = || CellNameError::BadNumber(text.to_string());
    let (negative, body) = match text.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, text),
    };
    let (int, frac) = body.split_once('.').ok_or_else(bad)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.len() != 2 || !digits(frac) || int.len() > 3 {
        return Err(bad());
    }
    if int.len() > 1 && int.starts_with('0') {
        return Err(CellNameError::NotCanonical(text.to_string()));
    }
    let v =
        int.parse::<i32>().map_err(|_| bad())? * 100 + frac.parse::<i32>().map_err(|_| bad())?;
    Ok(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_for_every_cell_of_a_row_and_column() {
        for i in 0..LON_CELLS {
            let c = Cell::new(i, 900).unwrap();
            assert_eq!(Cell::parse_name(&c.name()).unwrap(), c);
        }
        for j in 0..LAT_CELLS {
            let c = Cell::new(1799, j).unwrap();
            assert_eq!(Cell::parse_name(&c.name()).unwrap(), c);
        }
    }

    #[test]
    fn known_names() {
        let c = Cell::parse_name("grid_-99.95_80.05").unwrap();
        assert_eq!(c.lon_min(), -100.0);
        assert_eq!(c.lat_min(), 80.0);
        assert_eq!(c.name(), "grid_-99.95_80.05");
        assert_eq!(
            Cell::parse_name("grid_-0.05_-0.05").unwrap().name(),
            "grid_-0.05_-0.05"
        );
        assert_eq!(
            Cell::parse_name("grid_179.95_89.95").unwrap(),
            Cell::new(3599, 1799).unwrap()
        );
        assert_eq!(
            Cell::parse_name("grid_-179.95_-89.95").unwrap(),
            Cell::new(0, 0).unwrap()
        );
        assert_eq!(Cell::containing(-99.95, 80.05), Some(c));
        assert_eq!(Cell::containing(180.0, 90.0), Cell::new(3599, 1799));
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in [
            "grid_0.85",
            "grid_0.8_49.95",
            "grid_0.850_49.95",
            "grid_0.84_49.95",
            "grid_0.85_90.05",
            "grid_180.05_0.05",
            "grid_+0.85_49.95",
            "grid_1e2_49.95",
            "grid_0.85_49.95_x",
            "tile_0.85_49.95",
            "grid_-_49.95",
            "grid_.85_49.95",
            "grid_00.85_49.95",
            "grid_-00.05_49.95",
        ] {
            assert!(Cell::parse_name(bad).is_err(), "{bad} accepted");
        }
    }
}
