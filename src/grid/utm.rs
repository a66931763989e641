//! Tile geometry: each cell's UTM projection, origin and pixel size, by the rule TESSERA's own
//! tools use (DESIGN.md section 1), computed with PROJ.

use std::cell::RefCell;
use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::rc::Rc;
use std::sync::Mutex;

use super::cell::Cell;

/// Source pixel size in metres.
pub const PIXEL_M: f64 = 10.0;

/// A UTM zone on one hemisphere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UtmZone {
    /// Zone number 1..=60.
    pub zone: u8,
    /// True for the southern-hemisphere CRS (false northing 10 000 km).
    pub south: bool,
}

impl UtmZone {
    /// The zone TESSERA assigns to a cell: from the cell centre, no Norway/Svalbard exceptions.
    pub fn for_cell(cell: Cell) -> UtmZone {
        let zone = ((cell.lon_centre_hundredths() + 18000) / 600 + 1) as u8;
        UtmZone {
            zone,
            south: cell.lat_centre_hundredths() < 0,
        }
    }

    /// EPSG code of the WGS 84 / UTM CRS (326zz north, 327zz south).
    pub fn epsg(self) -> u32 {
        (if self.south { 32700 } else { 32600 }) + self.zone as u32
    }

    /// Longitude of the central meridian in degrees.
    pub fn central_meridian(self) -> f64 {
        -183.0 + 6.0 * self.zone as f64
    }

    /// A PROJ string for this CRS; needs no PROJ database at run time.
    pub fn proj_string(self) -> String {
        format!(
            "+proj=utm +zone={}{} +datum=WGS84 +units=m +no_defs",
            self.zone,
            if self.south { " +south" } else { "" }
        )
    }
}

/// Errors from PROJ.
#[derive(Debug, thiserror::Error)]
pub enum GeometryError {
    #[error("PROJ could not create {definition}")]
    Create {
        definition: String,
        #[source]
        source: proj::ProjCreateError,
    },
    #[error("PROJ could not project ({lon}, {lat})")]
    Project {
        lon: f64,
        lat: f64,
        #[source]
        source: proj::ProjError,
    },
}

/// Forward (and inverse) projection between WGS 84 lon/lat degrees and one UTM zone, through PROJ.
///
/// Not `Send`: PROJ objects belong to one thread. Create one per thread or per cell.
pub struct UtmProjection {
    zone: UtmZone,
    proj: ManuallyDrop<proj::Proj>,
}

/// The proj crate calls `proj_cleanup()` whenever a projection is dropped; it clears caches
/// shared by the whole process and is not thread-safe, so two threads dropping projections at
/// once (rayon threads ending, each with its cached projections) crashed PROJ. Creating and
/// dropping projections is therefore serialised on this lock; using them is not.
static PROJ_LIFECYCLE: Mutex<()> = Mutex::new(());

fn proj_lifecycle() -> std::sync::MutexGuard<'static, ()> {
    PROJ_LIFECYCLE.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for UtmProjection {
    fn drop(&mut self) {
        let _serialised = proj_lifecycle();
        // SAFETY: dropped once, here; the field is never used again.
        unsafe { ManuallyDrop::drop(&mut self.proj) }
    }
}

impl UtmProjection {
    /// Create the projection for a zone.
    pub fn new(zone: UtmZone) -> Result<UtmProjection, GeometryError> {
        let definition = zone.proj_string();
        let proj = {
            let _serialised = proj_lifecycle();
            proj::Proj::new(&definition).map_err(|source| GeometryError::Create {
                definition: definition.clone(),
                source,
            })?
        };
        Ok(UtmProjection {
            zone,
            proj: ManuallyDrop::new(proj),
        })
    }

    /// The zone this projection serves.
    pub fn zone(&self) -> UtmZone {
        self.zone
    }

    /// Project (lon, lat) in degrees to (easting, northing) in metres.
    pub fn forward(&self, lon: f64, lat: f64) -> Result<(f64, f64), GeometryError> {
        self.proj
            .project((lon.to_radians(), lat.to_radians()), false)
            .map_err(|source| GeometryError::Project { lon, lat, source })
    }

    /// Project many points in place: each `(lon, lat)` in degrees becomes `(e, n)` in metres.
    pub fn forward_many(&self, points: &mut [(f64, f64)]) -> Result<(), GeometryError> {
        for p in points.iter_mut() {
            *p = self.forward(p.0, p.1)?;
        }
        Ok(())
    }

    /// Unproject (easting, northing) to (lon, lat) in degrees.
    pub fn inverse(&self, e: f64, n: f64) -> Result<(f64, f64), GeometryError> {
        let (lon, lat) =
            self.proj
                .project((e, n), true)
                .map_err(|source| GeometryError::Project {
                    lon: e,
                    lat: n,
                    source,
                })?;
        Ok((lon.to_degrees(), lat.to_degrees()))
    }
}

thread_local! {
    static PROJECTIONS: RefCell<HashMap<UtmZone, Rc<UtmProjection>>> = RefCell::default();
}

/// This thread's projection for a zone, created on first use: creating one (a PROJ context)
/// costs more than computing a tile's geometry or placing a whole cell with it, and PROJ
/// objects cannot cross threads.
pub fn projection(zone: UtmZone) -> Result<Rc<UtmProjection>, GeometryError> {
    if let Some(p) = PROJECTIONS.with_borrow(|m| m.get(&zone).cloned()) {
        return Ok(p);
    }
    let p = Rc::new(UtmProjection::new(zone)?);
    PROJECTIONS.with_borrow_mut(|m| m.insert(zone, p.clone()));
    Ok(p)
}

/// Drop this thread's cached projections now. Call it on every thread of a pool before the
/// pool ends (`rayon::broadcast`), while no thread projects: otherwise the threads drop them in
/// their exit destructors, whose `proj_cleanup()` can race the process's own exit (seen as
/// "double free or corruption" in a build under load).
pub fn release_thread_projections() {
    let cached = PROJECTIONS.with_borrow_mut(std::mem::take);
    drop(cached);
}

/// Where a tile's pixels are: its CRS, the outer corner of pixel (0, 0) and its size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TileGeometry {
    /// The cell the tile covers.
    pub cell: Cell,
    /// The tile's UTM zone.
    pub zone: UtmZone,
    /// Easting of the west edge of column 0, metres.
    pub origin_e: f64,
    /// Northing of the north edge of row 0, metres.
    pub origin_n: f64,
    /// Rows (H).
    pub height: usize,
    /// Columns (W).
    pub width: usize,
}

impl TileGeometry {
    /// Compute a cell's tile geometry with a projection for its zone.
    ///
    /// Projects the 4 cell corners; origin = (min west easting, max north northing);
    /// H, W = rounded extents / 10 m.
    pub fn with_projection(
        cell: Cell,
        proj: &UtmProjection,
    ) -> Result<TileGeometry, GeometryError> {
        debug_assert_eq!(proj.zone(), UtmZone::for_cell(cell));
        // The corners exactly as the rule states them: centre +- 0.05 degrees.
        let (lon_c, lat_c) = (cell.lon_centre(), cell.lat_centre());
        let (w, e, s, n) = (lon_c - 0.05, lon_c + 0.05, lat_c - 0.05, lat_c + 0.05);
        let ul = proj.forward(w, n)?;
        let ur = proj.forward(e, n)?;
        let ll = proj.forward(w, s)?;
        let lr = proj.forward(e, s)?;
        let origin_e = ul.0.min(ll.0);
        let origin_n = ul.1.max(ur.1);
        let height = ((origin_n - ll.1.min(lr.1)) / PIXEL_M).round() as usize;
        let width = ((ur.0.max(lr.0) - origin_e) / PIXEL_M).round() as usize;
        Ok(TileGeometry {
            cell,
            zone: proj.zone(),
            origin_e,
            origin_n,
            height,
            width,
        })
    }

    /// Compute a cell's tile geometry with this thread's projection for its zone.
    pub fn for_cell(cell: Cell) -> Result<TileGeometry, GeometryError> {
        Self::with_projection(cell, &*projection(UtmZone::for_cell(cell))?)
    }

    /// EPSG code of the tile's CRS.
    pub fn epsg(&self) -> u32 {
        self.zone.epsg()
    }

    /// Centre of pixel (row, col) in UTM metres.
    pub fn pixel_centre(&self, row: usize, col: usize) -> (f64, f64) {
        (
            self.origin_e + PIXEL_M * col as f64 + PIXEL_M / 2.0,
            self.origin_n - PIXEL_M * row as f64 - PIXEL_M / 2.0,
        )
    }

    /// The source pixel containing a UTM position, or `None` outside the tile.
    pub fn pixel_at(&self, e: f64, n: f64) -> Option<(usize, usize)> {
        let c = ((e - self.origin_e) / PIXEL_M).floor();
        let r = ((self.origin_n - n) / PIXEL_M).floor();
        (c >= 0.0 && r >= 0.0 && (c as usize) < self.width && (r as usize) < self.height)
            .then_some((r as usize, c as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_and_epsg() {
        let z = UtmZone::for_cell(Cell::parse_name("grid_-99.95_80.05").unwrap());
        assert_eq!(z.epsg(), 32614);
        assert_eq!(
            UtmZone::for_cell(Cell::parse_name("grid_179.95_-0.05").unwrap()).epsg(),
            32760
        );
        assert_eq!(
            UtmZone::for_cell(Cell::parse_name("grid_-179.95_0.05").unwrap()).epsg(),
            32601
        );
        assert_eq!(
            UtmZone::for_cell(Cell::parse_name("grid_5.95_10.05").unwrap()).epsg(),
            32631
        );
        assert_eq!(
            UtmZone::for_cell(Cell::parse_name("grid_6.05_10.05").unwrap()).epsg(),
            32632
        );
    }

    #[test]
    fn pixel_lookup_inverts_pixel_centre() {
        let g = TileGeometry::for_cell(Cell::parse_name("grid_0.85_49.95").unwrap()).unwrap();
        let (e, n) = g.pixel_centre(17, 401);
        assert_eq!(g.pixel_at(e, n), Some((17, 401)));
        assert_eq!(g.pixel_at(g.origin_e - 0.001, n), None);
        let (e, n) = g.pixel_centre(g.height - 1, g.width - 1);
        assert_eq!(g.pixel_at(e, n), Some((g.height - 1, g.width - 1)));
        assert_eq!(g.pixel_at(e + 10.0, n), None);
    }
}
