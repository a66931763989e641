//! Landmasks: one GeoTIFF per cell (uint8, 0 = water), the same for every year, found in a
//! folder (`global_0.1_degree_tiff_all`), under a listed prefix, or from TESSERA's
//! `landmasks.parquet`, which lists them so that nothing has to be listed.
//!
//! `landmasks.parquet` as geotessera writes it (`geotessera-registry s3scan`) has the columns
//! lon, lat (the cell centre), file_size (bytes), mtime, key (the object's `s3://` URL), lon_i,
//! lat_i; its older GeoParquet form has lat, lon, hash, file_size, lon_i, lat_i, geometry.
//! geotessera itself requires lon, lat and file_size, and finds the file as
//! `grid_{lon:.2f}_{lat:.2f}.tiff` in the parquet's folder. Read here: lon, lat and file_size
//! (required), and the file from the first of `path` (what `mosaic manifest` writes), `key`,
//! or that name; a path is relative to the parquet's folder unless it is absolute or a URL.
//! Other columns are not read. Every row is checked; a malformed one is an error naming it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::schema::types::Type;
use zarrs::storage::Bytes;

use super::catalogue::{Catalogue, TileProblem};
use super::manifest::{Column, WriteError, cell_at_centre, number, text, write_table};
use crate::grid::Cell;
use parquet::errors::ParquetError;

/// The landmask list's file name, beside `manifest.parquet`.
pub const LANDMASKS_NAME: &str = "landmasks.parquet";

/// One landmask, as `landmasks.parquet` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct LandmaskRow {
    /// The cell (from lon, lat).
    pub cell: Cell,
    /// Size of the GeoTIFF in bytes.
    pub file_size: u64,
    /// The GeoTIFF: relative to the parquet's folder, absolute, or a URL.
    pub path: String,
}

/// Errors of a `landmasks.parquet`. Each names the file, and the row where one is at fault.
#[derive(Debug, thiserror::Error)]
pub enum LandmasksError {
    #[error("landmasks {location}: cannot read it")]
    Io {
        location: String,
        #[source]
        source: std::io::Error,
    },
    #[error("landmasks {location}: cannot fetch it: {message}")]
    Fetch { location: String, message: String },
    #[error("landmasks {location}: not a readable Parquet file")]
    Parquet {
        location: String,
        #[source]
        source: ParquetError,
    },
    #[error(
        "landmasks {location}: no column `{column}` (TESSERA's landmasks.parquet has lon, lat, file_size; the file is named by `path`, `key` or grid_{{lon}}_{{lat}}.tiff beside it)"
    )]
    MissingColumn { location: String, column: String },
    #[error("landmasks {location}, row {row}: cannot decode it")]
    RowDecode {
        location: String,
        row: usize,
        #[source]
        source: ParquetError,
    },
    #[error("landmasks {location}, row {row}: {message}")]
    BadRow {
        location: String,
        row: usize,
        message: String,
    },
    #[error("cannot write landmasks {path}")]
    Write {
        path: String,
        #[source]
        source: WriteError,
    },
}

const REQUIRED: [&str; 3] = ["lon", "lat", "file_size"];

/// Parse a `landmasks.parquet`'s bytes; `location` names it in messages.
pub fn parse_landmasks(bytes: Bytes, location: &str) -> Result<Vec<LandmaskRow>, LandmasksError> {
    let unreadable = |source: ParquetError| LandmasksError::Parquet {
        location: location.to_string(),
        source,
    };
    let reader = SerializedFileReader::new(bytes).map_err(unreadable)?;
    let root = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema();
    let fields = root.get_fields();
    let has = |c: &str| fields.iter().any(|f| f.name() == c);
    if let Some(column) = REQUIRED.iter().find(|c| !has(c)) {
        return Err(LandmasksError::MissingColumn {
            location: location.to_string(),
            column: column.to_string(),
        });
    }
    let path_column = ["path", "key"].into_iter().find(|c| has(c));
    let wanted: Vec<Arc<Type>> = fields
        .iter()
        .filter(|f| REQUIRED.contains(&f.name()) || Some(f.name()) == path_column)
        .cloned()
        .collect();
    let projection = Type::group_type_builder(root.name())
        .with_fields(wanted)
        .build()
        .map_err(unreadable)?;
    let rows = reader.get_row_iter(Some(projection)).map_err(unreadable)?;
    let mut out = Vec::with_capacity(reader.metadata().file_metadata().num_rows() as usize);
    let mut first_row = std::collections::HashMap::new();
    for (i, row) in rows.enumerate() {
        let bad = |m: String| LandmasksError::BadRow {
            location: location.to_string(),
            row: i,
            message: m,
        };
        let row = row.map_err(|source| LandmasksError::RowDecode {
            location: location.to_string(),
            row: i,
            source,
        })?;
        let (mut lon, mut lat, mut size, mut path) = (None, None, None, None);
        for (name, field) in row.get_column_iter() {
            match name.as_str() {
                "lon" => lon = number(field),
                "lat" => lat = number(field),
                "file_size" => size = number(field),
                _ => path = text(field),
            }
        }
        let need = |v: Option<f64>, what: &str| {
            v.ok_or_else(|| bad(format!("`{what}` is empty or not a number")))
        };
        let (lon, lat) = (need(lon, "lon")?, need(lat, "lat")?);
        let cell = cell_at_centre(lon, lat).map_err(bad)?;
        let size = need(size, "file_size")?;
        if size.fract() != 0.0 || size <= 0.0 {
            return Err(bad(format!(
                "file_size {size} is not a positive byte count"
            )));
        }
        let path = match path_column {
            None => format!("{}.tiff", cell.name()),
            Some(column) => path
                .filter(|p| !p.trim().is_empty())
                .ok_or_else(|| bad(format!("`{column}` is empty")))?,
        };
        if let Some(first) = first_row.insert(cell, i) {
            return Err(bad(format!(
                "a second landmask for {cell} (the first is in row {first})"
            )));
        }
        out.push(LandmaskRow {
            cell,
            file_size: size as u64,
            path,
        });
    }
    Ok(out)
}

/// Read a `landmasks.parquet` from a local file.
pub fn read_landmasks_file(path: &Path) -> Result<Vec<LandmaskRow>, LandmasksError> {
    let location = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| LandmasksError::Io {
        location: location.clone(),
        source,
    })?;
    parse_landmasks(Bytes::from(bytes), &location)
}

/// Write a `landmasks.parquet`: lon, lat, file_size, mtime (microseconds since the epoch,
/// written as timestamp[us, UTC] like geotessera's), path
/// (relative to its folder), lon_i, lat_i (hundredths of a degree, as geotessera adds them).
pub fn write_landmasks(
    path: &Path,
    rows: &[LandmaskRow],
    mtimes: &[i64],
) -> Result<(), LandmasksError> {
    let doubles = |f: fn(Cell) -> f64| Column::Doubles(rows.iter().map(|r| f(r.cell)).collect());
    let ints = |f: fn(Cell) -> i32| Column::Ints(rows.iter().map(|r| f(r.cell)).collect());
    write_table(
        path,
        vec![
            ("lon", doubles(Cell::lon_centre)),
            ("lat", doubles(Cell::lat_centre)),
            (
                "file_size",
                Column::Longs(rows.iter().map(|r| r.file_size as i64).collect()),
            ),
            ("mtime", Column::MicrosUtc(mtimes.to_vec())),
            (
                "path",
                Column::Strings(rows.iter().map(|r| r.path.clone()).collect()),
            ),
            ("lon_i", ints(Cell::lon_centre_hundredths)),
            ("lat_i", ints(Cell::lat_centre_hundredths)),
        ],
    )
    .map_err(|source| LandmasksError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// The cell of a landmask file name (`grid_{lon}_{lat}.tiff` or `.tif`); `None` for other files.
pub(crate) fn landmask_cell(name: &str) -> Option<Result<Cell, String>> {
    let stem = name
        .strip_suffix(".tiff")
        .or_else(|| name.strip_suffix(".tif"))?;
    Some(Cell::parse_name(stem).map_err(|e| format!("bad landmask name: {e}")))
}

/// Add the landmasks of a local folder to a catalogue (a bad name is a problem).
pub(crate) fn scan_landmask_dir(catalogue: &mut Catalogue, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        catalogue
            .problems
            .push(TileProblem::new(dir, "landmask folder cannot be read"));
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match landmask_cell(&entry.file_name().to_string_lossy()) {
            None => {}
            Some(Ok(cell)) => {
                catalogue.landmasks.insert(cell, path);
            }
            Some(Err(e)) => catalogue.problems.push(TileProblem::new(&path, e)),
        }
    }
}

/// Add the landmasks a `landmasks.parquet` lists to a catalogue (cells in `lat_index_range`
/// only, if given); `locate` gives a row's file (see `manifest::resolve_listed`: the listed
/// path where it is relative or lies under the parquet's folder, else
/// `grid_{lon}_{lat}.tiff` in that folder, as geotessera finds it). Returns the
/// expected size of each file, by location.
pub(crate) fn add_listed_landmasks(
    catalogue: &mut Catalogue,
    rows: &[LandmaskRow],
    lat_index_range: Option<&std::ops::Range<u16>>,
    locate: impl Fn(&LandmaskRow) -> PathBuf,
) -> Vec<(PathBuf, u64)> {
    let mut sizes = Vec::with_capacity(rows.len());
    for r in rows {
        if lat_index_range.is_some_and(|range| !range.contains(&r.cell.lat_index)) {
            continue;
        }
        let path = locate(r);
        sizes.push((path.clone(), r.file_size));
        catalogue.landmasks.insert(r.cell, path);
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_landmasks_read_back() {
        let rows = vec![
            LandmaskRow {
                cell: Cell::parse_name("grid_-0.05_80.05").unwrap(),
                file_size: 1234,
                path: "global_0.1_degree_tiff_all/grid_-0.05_80.05.tiff".into(),
            },
            LandmaskRow {
                cell: Cell::parse_name("grid_12.35_-45.65").unwrap(),
                file_size: 99,
                path: "s3://bucket/landmasks/v1/grid_12.35_-45.65.tiff".into(),
            },
        ];
        let path = std::env::temp_dir().join(format!("landmasks-{}.parquet", std::process::id()));
        write_landmasks(&path, &rows, &[1, 2]).unwrap();
        assert_eq!(read_landmasks_file(&path).unwrap(), rows);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn names_of_landmask_files() {
        let cell = Cell::parse_name("grid_0.15_52.25").unwrap();
        assert_eq!(landmask_cell("grid_0.15_52.25.tiff"), Some(Ok(cell)));
        assert_eq!(landmask_cell("grid_0.15_52.25.tif"), Some(Ok(cell)));
        assert_eq!(landmask_cell("SHA256SUM"), None);
        assert!(matches!(landmask_cell("grid_0.1_52.25.tiff"), Some(Err(_))));
    }
}
