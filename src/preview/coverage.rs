//! Which cells are present: one renderer for `mosaic preview --coverage` (per band, one panel
//! per year) and the map's coverage layer (one pixel per cell of the globe).

use std::collections::BTreeSet;
use std::ops::Range;

use super::{Image, PreviewError};
use crate::grid::{BBox, Cell, LON_CELLS};
use crate::zarr::MosaicStore;

/// Panel colours of `preview --coverage`: present, absent, and the line between years.
const PRESENT: [u8; 4] = [64, 200, 160, 255];
const ABSENT: [u8; 4] = [30, 30, 40, 255];
const SEPARATOR: [u8; 4] = [200, 200, 200, 255];

/// One pixel per cell over latitude cells `lats` and `lon_count` longitude cells from column
/// `lon_start` (wrapping across the antimeridian): present cells in `present`, the others in
/// `absent`. Row 0 is the northern row.
pub fn cell_image<'a>(
    cells: impl IntoIterator<Item = &'a Cell>,
    lats: Range<u16>,
    lon_start: u16,
    lon_count: usize,
    present: [u8; 4],
    absent: [u8; 4],
) -> Image {
    let mut image = Image::filled(lon_count, lats.len(), absent);
    for c in cells {
        if !lats.contains(&c.lat_index) {
            continue;
        }
        let col =
            (c.lon_index as usize + LON_CELLS as usize - lon_start as usize) % LON_CELLS as usize;
        if col >= lon_count {
            continue;
        }
        let row = (lats.end - 1 - c.lat_index) as usize;
        let p = (row * lon_count + col) * 4;
        image.rgba[p..p + 4].copy_from_slice(&present);
    }
    image
}

/// A coverage map of a band: one panel per year (oldest on top), one square per cell of the
/// box (default: around every built cell), present cells light, absent cells dark, a light
/// line between panels. Returns the image, the years drawn and the box.
pub fn render_coverage(
    store: &MosaicStore,
    band: &str,
    bbox: Option<BBox>,
) -> Result<(Image, Vec<u16>, BBox), PreviewError> {
    let arrays = store.band_arrays(band)?;
    let present = store.built_cells(&arrays)?;
    let years = arrays.layout.year_values();
    let bbox = match bbox {
        Some(b) => b,
        None => BBox::around_cells(present.values().flatten())
            .ok_or_else(|| PreviewError::Empty(format!("band {band} has no tiles yet")))?,
    };
    let grid = &arrays.layout.grid;
    let lon_cells = (bbox.lon_width() * 10.0).round().max(1.0) as usize;
    let lat0 = bbox.lat0.max(grid.lat_min());
    let lat1 = bbox.lat1.min(grid.lat_max());
    let lat_cells = ((lat1 - lat0) * 10.0).round().max(1.0) as usize;
    let k = (1024 / lon_cells).clamp(1, 32);
    let first = Cell::containing(bbox.lon0 + 0.05, lat0 + 0.05).unwrap_or(Cell {
        lat_index: 0,
        lon_index: 0,
    });
    let lats = first.lat_index..first.lat_index + lat_cells as u16;
    let (panel_height, sep) = (lat_cells * k, 2);
    let height = years.len() * panel_height + years.len().saturating_sub(1) * sep;
    let mut image = Image::filled(lon_cells * k, height, SEPARATOR);
    let none = BTreeSet::new();
    for (i, year) in years.iter().enumerate() {
        let cells = present.get(year).unwrap_or(&none);
        let panel = cell_image(
            cells,
            lats.clone(),
            first.lon_index,
            lon_cells,
            PRESENT,
            ABSENT,
        );
        image.paste(&panel.scaled(k), i * (panel_height + sep));
    }
    Ok((image, years, bbox))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_image_puts_north_on_top_and_wraps() {
        let at = |lon: f64, lat: f64| Cell::containing(lon + 0.05, lat + 0.05).unwrap();
        let cells = [at(179.9, 70.0), at(-180.0, 70.1)];
        let lats = at(0.0, 70.0).lat_index..at(0.0, 70.2).lat_index;
        let image = cell_image(&cells, lats, at(179.9, 0.0).lon_index, 3, [9; 4], [0; 4]);
        assert_eq!((image.width, image.height), (3, 2));
        let lit: Vec<usize> = image
            .rgba
            .chunks(4)
            .enumerate()
            .filter(|(_, p)| p[0] == 9)
            .map(|(i, _)| i)
            .collect();
        // Row 0 (north, 70.1) column 1 (-180.0); row 1 (70.0) column 0 (179.9).
        assert_eq!(lit, [1, 3]);
    }
}
