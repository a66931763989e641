//! TESSERA's Parquet manifest: one row per (year, tile) naming the two files and their sizes, so
//! that a year of ~1.8 million tiles is catalogued without listing or opening a single object.
//!
//! Columns (geotessera's registry): version, variant, lon, lat (the cell centre), year,
//! grid_size, scales_size (bytes), grid_path, scales_path (relative to the manifest's folder, or
//! absolute URLs), grid_mtime, scales_mtime. Only the columns the catalogue needs are decoded;
//! `version` and `variant` are optional, the mtimes are not read. Every row is checked, and a
//! malformed one is an error that names the row.

use std::path::Path;
use std::sync::Arc;

use parquet::basic::{
    Compression, LogicalType, Repetition, TimeUnit, TimestampType, Type as PhysicalType, ZstdLevel,
};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::Field;
use parquet::schema::types::Type;
use zarrs::storage::Bytes;

use crate::grid::Cell;

/// The manifest's file name in a year tree's root.
pub const MANIFEST_NAME: &str = "manifest.parquet";

/// One tile of one year, as the manifest lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestRow {
    /// Dataset version (`1.0`, `1.1`), if the manifest says.
    pub version: Option<String>,
    /// Dataset variant (a mirror's name), if the manifest says.
    pub variant: Option<String>,
    /// The cell (from lon, lat).
    pub cell: Cell,
    /// Year.
    pub year: u16,
    /// Size of the embeddings `.npy` in bytes.
    pub grid_size: u64,
    /// Size of the scales `.npy` in bytes.
    pub scales_size: u64,
    /// The embeddings file: relative to the manifest's folder, or a URL.
    pub grid_path: String,
    /// The scales file.
    pub scales_path: String,
}

/// Errors of a manifest. Each names the manifest, and the row where one is at fault.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest {location}: cannot read it")]
    Io {
        location: String,
        #[source]
        source: std::io::Error,
    },
    #[error("manifest {location}: cannot fetch it: {message}")]
    Fetch { location: String, message: String },
    #[error("manifest {location}: not a readable Parquet file")]
    Parquet {
        location: String,
        #[source]
        source: ParquetError,
    },
    #[error(
        "manifest {location}: no column `{column}` (a TESSERA manifest has version, variant, lon, lat, year, grid_size, scales_size, grid_path, scales_path, grid_mtime, scales_mtime)"
    )]
    MissingColumn { location: String, column: String },
    #[error("manifest {location}, row {row}: cannot decode it")]
    RowDecode {
        location: String,
        row: usize,
        #[source]
        source: ParquetError,
    },
    #[error("manifest {location}, row {row}: {message}")]
    BadRow {
        location: String,
        row: usize,
        message: String,
    },
    #[error(
        "manifest {location} has no rows for {choice} (it holds {present}); choose with --dataset-version and --variant"
    )]
    NoRowsForDataset {
        location: String,
        choice: super::dataset::DatasetChoice,
        present: String,
    },
    #[error("cannot write manifest {path}")]
    Write {
        path: String,
        #[source]
        source: WriteError,
    },
}

/// Why a Parquet table could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Parquet(#[from] ParquetError),
}

const REQUIRED: [&str; 7] = [
    "lon",
    "lat",
    "year",
    "grid_size",
    "scales_size",
    "grid_path",
    "scales_path",
];
const OPTIONAL: [&str; 2] = ["version", "variant"];

/// A value of a numeric column as f64 (any physical integer or float type).
pub(super) fn number(field: &Field) -> Option<f64> {
    Some(match field {
        Field::Double(v) => *v,
        Field::Float(v) => *v as f64,
        Field::Long(v) => *v as f64,
        Field::Int(v) => *v as f64,
        Field::Short(v) => *v as f64,
        Field::Byte(v) => *v as f64,
        Field::ULong(v) => *v as f64,
        Field::UInt(v) => *v as f64,
        Field::UShort(v) => *v as f64,
        Field::UByte(v) => *v as f64,
        _ => return None,
    })
}

/// A value of a string column.
pub(super) fn text(field: &Field) -> Option<String> {
    match field {
        Field::Str(s) => Some(s.clone()),
        Field::Bytes(b) => std::str::from_utf8(b.data()).ok().map(str::to_string),
        _ => None,
    }
}

/// A cell centre coordinate in hundredths of a degree, if it lies on the 0.05 grid of centres.
fn centre_hundredths(v: f64) -> Option<i32> {
    let h = (v * 100.0).round();
    ((v * 100.0 - h).abs() < 1e-6 && (h as i32).rem_euclid(10) == 5).then_some(h as i32)
}

/// The cell whose centre is (lon, lat), which must lie on the 0.05-degree grid of centres.
pub(super) fn cell_at_centre(lon: f64, lat: f64) -> Result<Cell, String> {
    let (Some(lon_h), Some(lat_h)) = (centre_hundredths(lon), centre_hundredths(lat)) else {
        return Err(format!(
            "lon {lon}, lat {lat} is not a cell centre on the 0.05-degree grid (x.x5)"
        ));
    };
    Cell::from_centre_hundredths(lon_h, lat_h).map_err(|e| format!("lon {lon}, lat {lat}: {e}"))
}

/// Where a file that a list (a manifest or a `landmasks.parquet`) names is, as geotessera finds
/// it from any mirror: the listed path where it is relative (to `list_dir`, the list's folder)
/// or lies under one of `roots` (the input); else `derived`, the naming rule's location under
/// the input. An absolute path or URL elsewhere belongs to the machine or bucket that wrote the
/// list (geotessera's `s3scan` writes `s3://` URLs; `file-scan` the scanning machine's paths).
pub(crate) fn resolve_listed(
    listed: &str,
    list_dir: &str,
    roots: &[&str],
    derived: impl FnOnce() -> String,
) -> String {
    let absolute = listed.contains("://") || listed.starts_with('/');
    if !absolute {
        let dir = list_dir.trim_end_matches('/');
        return if dir.is_empty() || dir == "." {
            listed.to_string()
        } else {
            format!("{dir}/{listed}")
        };
    }
    let under = |root: &str| {
        let root = root.trim_end_matches('/');
        !root.is_empty()
            && listed
                .strip_prefix(root)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    if roots.iter().any(|r| under(r)) {
        listed.to_string()
    } else {
        derived()
    }
}

/// A tile's two files by TESSERA's naming rule under `root`:
/// `{root}/{year}/grid_{lon}_{lat}/grid_{lon}_{lat}.npy` and `..._scales.npy`.
pub(crate) fn tile_paths_by_rule(root: &str, year: u16, cell: Cell) -> (String, String) {
    let root = root.trim_end_matches('/');
    let name = cell.name();
    (
        format!("{root}/{year}/{name}/{name}.npy"),
        format!("{root}/{year}/{name}/{name}_scales.npy"),
    )
}

/// Parse a manifest's bytes; `location` names it in messages.
pub fn parse_manifest(bytes: Bytes, location: &str) -> Result<Vec<ManifestRow>, ManifestError> {
    let unreadable = |source: ParquetError| ManifestError::Parquet {
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
    for column in REQUIRED {
        if !fields.iter().any(|f| f.name() == column) {
            return Err(ManifestError::MissingColumn {
                location: location.to_string(),
                column: column.to_string(),
            });
        }
    }
    // Decode only the columns the catalogue needs.
    let wanted: Vec<Arc<Type>> = fields
        .iter()
        .filter(|f| REQUIRED.contains(&f.name()) || OPTIONAL.contains(&f.name()))
        .cloned()
        .collect();
    let projection = Type::group_type_builder(root.name())
        .with_fields(wanted)
        .build()
        .map_err(unreadable)?;
    let rows = reader.get_row_iter(Some(projection)).map_err(unreadable)?;
    let mut out = Vec::with_capacity(reader.metadata().file_metadata().num_rows() as usize);
    for (i, row) in rows.enumerate() {
        let bad = |m: String| ManifestError::BadRow {
            location: location.to_string(),
            row: i,
            message: m,
        };
        let row = row.map_err(|source| ManifestError::RowDecode {
            location: location.to_string(),
            row: i,
            source,
        })?;
        let (mut lon, mut lat, mut year, mut grid_size, mut scales_size) =
            (None, None, None, None, None);
        let (mut grid_path, mut scales_path, mut version, mut variant) = (None, None, None, None);
        for (name, field) in row.get_column_iter() {
            match name.as_str() {
                "lon" => lon = number(field),
                "lat" => lat = number(field),
                "year" => year = number(field),
                "grid_size" => grid_size = number(field),
                "scales_size" => scales_size = number(field),
                "grid_path" => grid_path = text(field),
                "scales_path" => scales_path = text(field),
                "version" => version = text(field),
                "variant" => variant = text(field),
                _ => {}
            }
        }
        let need = |v: Option<f64>, what: &str| {
            v.ok_or_else(|| bad(format!("`{what}` is empty or not a number")))
        };
        let (lon, lat) = (need(lon, "lon")?, need(lat, "lat")?);
        let cell = cell_at_centre(lon, lat).map_err(bad)?;
        let year = need(year, "year")?;
        if year.fract() != 0.0 || !(1900.0..=2200.0).contains(&year) {
            return Err(bad(format!("year {year} is not a year")));
        }
        let size = |v: Option<f64>, what: &str| -> Result<u64, ManifestError> {
            let v = need(v, what)?;
            if v.fract() != 0.0 || v <= 0.0 {
                return Err(bad(format!("{what} {v} is not a positive byte count")));
            }
            Ok(v as u64)
        };
        let path = |v: Option<String>, what: &str| -> Result<String, ManifestError> {
            v.filter(|p| !p.trim().is_empty())
                .ok_or_else(|| bad(format!("`{what}` is empty")))
        };
        out.push(ManifestRow {
            version,
            variant,
            cell,
            year: year as u16,
            grid_size: size(grid_size, "grid_size")?,
            scales_size: size(scales_size, "scales_size")?,
            grid_path: path(grid_path, "grid_path")?,
            scales_path: path(scales_path, "scales_path")?,
        });
    }
    Ok(out)
}

/// Read a manifest from a local file.
pub fn read_manifest_file(path: &Path) -> Result<Vec<ManifestRow>, ManifestError> {
    let location = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ManifestError::Io {
        location: location.clone(),
        source,
    })?;
    parse_manifest(Bytes::from(bytes), &location)
}

/// Write a manifest with the columns and types geotessera's `s3scan` writes (version, variant,
/// year, lon, lat, grid_path, scales_path, grid_mtime and scales_mtime as timestamp[us, UTC],
/// grid_size, scales_size, lon_i, lat_i), zstd-compressed. `mtimes` are (grid, scales) in
/// microseconds since the epoch.
pub fn write_manifest(
    path: &Path,
    rows: &[ManifestRow],
    mtimes: &[(i64, i64)],
) -> Result<(), ManifestError> {
    let strings =
        |f: &dyn Fn(&ManifestRow) -> String| Column::Strings(rows.iter().map(f).collect());
    let longs =
        |f: &dyn Fn(&ManifestRow) -> u64| Column::Longs(rows.iter().map(|r| f(r) as i64).collect());
    let ints = |f: fn(Cell) -> i32| Column::Ints(rows.iter().map(|r| f(r.cell)).collect());
    write_table(
        path,
        vec![
            (
                "version",
                strings(&|r| r.version.clone().unwrap_or_default()),
            ),
            (
                "variant",
                strings(&|r| r.variant.clone().unwrap_or_default()),
            ),
            ("year", longs(&|r| r.year as u64)),
            (
                "lon",
                Column::Doubles(rows.iter().map(|r| r.cell.lon_centre()).collect()),
            ),
            (
                "lat",
                Column::Doubles(rows.iter().map(|r| r.cell.lat_centre()).collect()),
            ),
            ("grid_path", strings(&|r| r.grid_path.clone())),
            ("scales_path", strings(&|r| r.scales_path.clone())),
            (
                "grid_mtime",
                Column::MicrosUtc(mtimes.iter().map(|m| m.0).collect()),
            ),
            (
                "scales_mtime",
                Column::MicrosUtc(mtimes.iter().map(|m| m.1).collect()),
            ),
            ("grid_size", longs(&|r| r.grid_size)),
            ("scales_size", longs(&|r| r.scales_size)),
            ("lon_i", ints(Cell::lon_centre_hundredths)),
            ("lat_i", ints(Cell::lat_centre_hundredths)),
        ],
    )
    .map_err(|source| ManifestError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// The values of one column of a table [`write_table`] writes.
pub(super) enum Column {
    Doubles(Vec<f64>),
    Ints(Vec<i32>),
    Longs(Vec<i64>),
    /// Microseconds since the epoch, as Parquet's timestamp(UTC, micros): pandas and pyarrow
    /// read it as `timestamp[us, tz=UTC]`, like geotessera's mtimes.
    MicrosUtc(Vec<i64>),
    Strings(Vec<String>),
}

/// Write a Parquet table of required columns (one row group, zstd): the manifests' writer.
pub(super) fn write_table(path: &Path, columns: Vec<(&str, Column)>) -> Result<(), WriteError> {
    let fields = columns
        .iter()
        .map(|(name, values)| {
            let (t, logical) = match values {
                Column::Doubles(_) => (PhysicalType::DOUBLE, None),
                Column::Ints(_) => (PhysicalType::INT32, None),
                Column::Longs(_) => (PhysicalType::INT64, None),
                Column::MicrosUtc(_) => (
                    PhysicalType::INT64,
                    Some(LogicalType::Timestamp(TimestampType {
                        is_adjusted_to_u_t_c: true,
                        unit: TimeUnit::MICROS,
                    })),
                ),
                Column::Strings(_) => (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
            };
            Type::primitive_type_builder(name, t)
                .with_repetition(Repetition::REQUIRED)
                .with_logical_type(logical)
                .build()
                .map(Arc::new)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let schema = Type::group_type_builder("schema")
        .with_fields(fields)
        .build()?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let file = std::fs::File::create(path)?;
    let mut writer = SerializedFileWriter::new(file, Arc::new(schema), Arc::new(props))?;
    let mut group = writer.next_row_group()?;
    for (_, values) in &columns {
        let Some(mut w) = group.next_column()? else {
            return Err(ParquetError::General("fewer column writers than columns".into()).into());
        };
        match values {
            Column::Doubles(v) => w.typed::<DoubleType>().write_batch(v, None, None),
            Column::Ints(v) => w.typed::<Int32Type>().write_batch(v, None, None),
            Column::Longs(v) | Column::MicrosUtc(v) => {
                w.typed::<Int64Type>().write_batch(v, None, None)
            }
            Column::Strings(v) => {
                let bytes: Vec<ByteArray> = v.iter().map(|s| ByteArray::from(s.as_str())).collect();
                w.typed::<ByteArrayType>().write_batch(&bytes, None, None)
            }
        }?;
        w.close()?;
    }
    group.close()?;
    writer.close()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centres_on_the_grid_only() {
        assert_eq!(centre_hundredths(-99.95), Some(-9995));
        assert_eq!(centre_hundredths(80.05), Some(8005));
        assert_eq!(centre_hundredths(80.0), None);
        assert_eq!(centre_hundredths(80.051), None);
        let cell = Cell::from_centre_hundredths(-5, 8005).unwrap();
        assert_eq!(cell.name(), "grid_-0.05_80.05");
    }

    #[test]
    fn written_manifests_read_back() {
        let rows = vec![ManifestRow {
            version: Some("1.1".into()),
            variant: Some("local".into()),
            cell: Cell::parse_name("grid_-0.05_80.05").unwrap(),
            year: 2024,
            grid_size: 100,
            scales_size: 20,
            grid_path: "2024/grid_-0.05_80.05/grid_-0.05_80.05.npy".into(),
            scales_path: "2024/grid_-0.05_80.05/grid_-0.05_80.05_scales.npy".into(),
        }];
        let path = std::env::temp_dir().join(format!("manifest-{}.parquet", std::process::id()));
        write_manifest(&path, &rows, &[(1, 2)]).unwrap();
        assert_eq!(read_manifest_file(&path).unwrap(), rows);
        std::fs::remove_file(&path).unwrap();
    }
}
