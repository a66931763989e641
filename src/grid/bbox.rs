//! The one lon/lat box of the crate: what `--bbox`, query's `--lat`/`--lon`, a picture, a map
//! tile and a STAC item's extent all are. Parsed once at the command line's edge (it implements
//! `FromStr`, so clap checks it), so no command repeats the range checks.
//!
//! A box whose west edge lies east of its east edge crosses the antimeridian (RFC 7946 5.2):
//! `170,60,-170,70` is the 20 degrees around 180, not the 340 degrees between.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use super::cell::{CELL_DEG, Cell, LAT_CELLS, LON_CELLS};

/// A lon/lat box in degrees: west, south, east, north.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    /// West edge (-180..=180).
    pub lon0: f64,
    /// South edge (-90..=90).
    pub lat0: f64,
    /// East edge (-180..=180); less than `lon0` when the box crosses the antimeridian.
    pub lon1: f64,
    /// North edge, greater than `lat0`.
    pub lat1: f64,
}

/// Why a box or a range was refused; the text names the value given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{text}: {reason}")]
pub struct BoxError {
    /// What was given.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl BBox {
    /// A checked box: longitudes within -180..=180, latitudes within -90..=90, south below
    /// north, west and east different (west > east crosses the antimeridian).
    pub fn new(lon0: f64, lat0: f64, lon1: f64, lat1: f64) -> Result<BBox, BoxError> {
        let text = format!("{lon0},{lat0},{lon1},{lat1}");
        let bad = |reason: &str| BoxError {
            text: text.clone(),
            reason: reason.into(),
        };
        if ![lon0, lon1].iter().all(|l| (-180.0..=180.0).contains(l)) {
            return Err(bad("longitudes must lie within -180..180"));
        }
        if ![lat0, lat1].iter().all(|l| (-90.0..=90.0).contains(l)) {
            return Err(bad("latitudes must lie within -90..90"));
        }
        if lat0 >= lat1 {
            return Err(bad("the south edge must be below the north edge"));
        }
        if lon0 == lon1 {
            return Err(bad("the west and east edges must differ"));
        }
        Ok(BBox {
            lon0,
            lat0,
            lon1,
            lat1,
        })
    }

    /// The box of a latitude range and a longitude range (query's `--lat`/`--lon`).
    pub fn from_ranges(lat: LatRange, lon: LonRange) -> Result<BBox, BoxError> {
        BBox::new(lon.0, lat.0, lon.1, lat.1)
    }

    /// True when the box crosses the antimeridian (west > east).
    pub fn crosses_antimeridian(&self) -> bool {
        self.lon0 > self.lon1
    }

    /// Width in degrees of longitude, across the antimeridian where the box crosses it.
    pub fn lon_width(&self) -> f64 {
        if self.crosses_antimeridian() {
            self.lon1 + 360.0 - self.lon0
        } else {
            self.lon1 - self.lon0
        }
    }

    /// Whether a longitude lies within the box (edges included).
    pub fn contains_lon(&self, lon: f64) -> bool {
        if self.crosses_antimeridian() {
            lon >= self.lon0 || lon <= self.lon1
        } else {
            lon >= self.lon0 && lon <= self.lon1
        }
    }

    /// `[west, south, east, north]`, as GeoJSON and STAC write a bbox.
    pub fn to_array(&self) -> [f64; 4] {
        [self.lon0, self.lat0, self.lon1, self.lat1]
    }

    /// The cells whose centres lie in the box.
    pub fn cells(&self) -> Vec<Cell> {
        let mut cells = Vec::new();
        for lat_index in 0..LAT_CELLS {
            for lon_index in 0..LON_CELLS {
                let c = Cell {
                    lat_index,
                    lon_index,
                };
                let lat = c.lat_centre();
                if lat >= self.lat0 && lat <= self.lat1 && self.contains_lon(c.lon_centre()) {
                    cells.push(c);
                }
            }
        }
        cells
    }

    /// The smallest box holding whole cells; it crosses the antimeridian only when that makes it
    /// narrower (ties keep the box that does not cross). `None` for no cells.
    pub fn around_cells<'a>(cells: impl IntoIterator<Item = &'a Cell>) -> Option<BBox> {
        let mut columns = BTreeSet::new();
        let (mut south, mut north) = (u16::MAX, 0u16);
        for c in cells {
            columns.insert(c.lon_index);
            south = south.min(c.lat_index);
            north = north.max(c.lat_index + 1);
        }
        let columns: Vec<u16> = columns.into_iter().collect();
        let (first, last) = (*columns.first()?, *columns.last()?);
        // The empty stretch of columns across the antimeridian, then every other: the box
        // leaves out the longest one.
        let mut gap = first as i32 + LON_CELLS as i32 - last as i32 - 1;
        let (mut west, mut east) = (first, last + 1);
        for w in columns.windows(2) {
            let g = (w[1] - w[0]) as i32 - 1;
            if g > gap {
                gap = g;
                west = w[1];
                east = w[0] + 1;
            }
        }
        let edge_lon = |i: u16| (i as i32 - (LON_CELLS / 2) as i32) as f64 * CELL_DEG;
        let edge_lat = |i: u16| (i as i32 - (LAT_CELLS / 2) as i32) as f64 * CELL_DEG;
        Some(BBox {
            lon0: round_tenth(edge_lon(west)),
            lat0: round_tenth(edge_lat(south)),
            lon1: round_tenth(edge_lon(east)),
            lat1: round_tenth(edge_lat(north)),
        })
    }
}

/// A cell edge in degrees, exactly as written in decimal (`0.1 * 7` is not `0.7`).
fn round_tenth(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

impl FromStr for BBox {
    type Err = BoxError;

    /// `W,S,E,N` in degrees.
    fn from_str(text: &str) -> Result<BBox, BoxError> {
        let numbers = parse_numbers(text, ',', 4, "expected four numbers W,S,E,N")?;
        BBox::new(numbers[0], numbers[1], numbers[2], numbers[3]).map_err(|e| BoxError {
            text: text.into(),
            reason: e.reason,
        })
    }
}

impl fmt::Display for BBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{},{},{}", self.lon0, self.lat0, self.lon1, self.lat1)
    }
}

/// A latitude range `LO:HI` (LO < HI, within -90..90).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatRange(pub f64, pub f64);

/// A longitude range `WEST:EAST` (within -180..180; WEST > EAST crosses the antimeridian).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LonRange(pub f64, pub f64);

impl FromStr for LatRange {
    type Err = BoxError;

    fn from_str(text: &str) -> Result<LatRange, BoxError> {
        let [lo, hi] = parse_range(text, 90.0)?;
        if lo >= hi {
            return Err(BoxError {
                text: text.into(),
                reason: format!("LO ({lo}) must be less than HI ({hi})"),
            });
        }
        Ok(LatRange(lo, hi))
    }
}

impl FromStr for LonRange {
    type Err = BoxError;

    fn from_str(text: &str) -> Result<LonRange, BoxError> {
        let [west, east] = parse_range(text, 180.0)?;
        if west == east {
            return Err(BoxError {
                text: text.into(),
                reason: "WEST and EAST must differ".into(),
            });
        }
        Ok(LonRange(west, east))
    }
}

/// `A:B`, both within `-limit..=limit`.
fn parse_range(text: &str, limit: f64) -> Result<[f64; 2], BoxError> {
    let n = parse_numbers(text, ':', 2, "expected LO:HI, e.g. 50:55")?;
    if n.iter().any(|v| !(-limit..=limit).contains(v)) {
        return Err(BoxError {
            text: text.into(),
            reason: format!("values must lie within -{limit}..{limit}"),
        });
    }
    Ok([n[0], n[1]])
}

/// `count` finite numbers separated by `sep`.
fn parse_numbers(
    text: &str,
    sep: char,
    count: usize,
    expected: &str,
) -> Result<Vec<f64>, BoxError> {
    let bad = |reason: String| BoxError {
        text: text.into(),
        reason,
    };
    let parts: Vec<&str> = text.split(sep).collect();
    if parts.len() != count {
        return Err(bad(expected.into()));
    }
    parts
        .iter()
        .map(|p| match p.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(bad(format!("`{}` is not a number ({expected})", p.trim()))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(lon: f64, lat: f64) -> Cell {
        Cell::containing(lon + 0.05, lat + 0.05).unwrap()
    }

    #[test]
    fn parses_and_checks_boxes() {
        let b: BBox = "10,69.9,10.3,70.1".parse().unwrap();
        assert_eq!(b.to_array(), [10.0, 69.9, 10.3, 70.1]);
        assert!(!b.crosses_antimeridian());
        let across: BBox = "170,60,-170,70".parse().unwrap();
        assert!(across.crosses_antimeridian());
        assert!((across.lon_width() - 20.0).abs() < 1e-9);
        assert!(across.contains_lon(179.0) && across.contains_lon(-175.0));
        assert!(!across.contains_lon(0.0));
        for bad in [
            "1,2,3",
            "a,1,2,3",
            "0,70,1,69",
            "0,70,0,71",
            "0,91,1,92",
            "181,0,182,1",
        ] {
            let e = bad.parse::<BBox>().unwrap_err();
            assert_eq!(e.text, bad, "{e}");
        }
    }

    #[test]
    fn parses_ranges() {
        assert_eq!("50:55".parse::<LatRange>().unwrap(), LatRange(50.0, 55.0));
        assert!("55:50".parse::<LatRange>().is_err());
        assert!("-91:0".parse::<LatRange>().is_err());
        assert_eq!(
            "179:-179".parse::<LonRange>().unwrap(),
            LonRange(179.0, -179.0)
        );
        assert!("nan:1".parse::<LonRange>().is_err());
        let b = BBox::from_ranges(LatRange(50.0, 55.0), LonRange(100.0, 110.0)).unwrap();
        assert_eq!(b.to_array(), [100.0, 50.0, 110.0, 55.0]);
    }

    #[test]
    fn bbox_crosses_the_antimeridian_only_when_smaller() {
        let cells = [
            cell(5.9, 70.0),
            cell(6.0, 70.0),
            cell(179.9, 70.0),
            cell(-180.0, 70.1),
        ];
        let b = BBox::around_cells(cells.iter()).unwrap();
        assert_eq!(b.to_array(), [5.9, 70.0, -179.9, 70.2]);
        let cells = [cell(5.9, 70.0), cell(6.0, 70.1)];
        assert_eq!(
            BBox::around_cells(cells.iter()).unwrap().to_array(),
            [5.9, 70.0, 6.1, 70.2]
        );
        let cells = [cell(179.9, -65.0), cell(-180.0, -64.9)];
        assert_eq!(
            BBox::around_cells(cells.iter()).unwrap().to_array(),
            [179.9, -65.0, -179.9, -64.8]
        );
        assert_eq!(BBox::around_cells([].iter()), None);
    }

    #[test]
    fn cells_of_a_box_wrap_the_antimeridian() {
        let b: BBox = "179.8,10,-179.8,10.1".parse().unwrap();
        let names: Vec<String> = b.cells().iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "grid_-179.95_10.05",
                "grid_-179.85_10.05",
                "grid_179.85_10.05",
                "grid_179.95_10.05"
            ]
        );
    }
}
