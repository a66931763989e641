//! Reading the points of `mosaic sample`: CSV or (Geo)Parquet, in batches of rows.
//!
//! Every carried column is kept with its type: a Parquet column with its own schema (physical
//! and logical type, nullability); a CSV column as INT64 when every non-empty cell parses as an
//! integer, else DOUBLE when every non-empty cell parses as a number, else a UTF-8 string kept
//! as written (empty or blank cells are nulls; numbers are read without surrounding blanks). CSV files are read twice: once to choose the types (and check every
//! coordinate, so bad input fails before anything is written), once to stream the batches.
//! Nested Parquet columns (lists, structs) and INT96 columns are not carried (the reader lists
//! them in `dropped`).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::{LogicalType, Repetition, Type as PhysicalType};
use parquet::column::reader::ColumnReader;
use parquet::data_type::{ByteArray, FixedLenByteArray};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::schema::types::Type;

use super::SampleError;

/// The values of one column in one batch: the non-null values only.
#[derive(Debug, Clone)]
pub enum Values {
    Bool(Vec<bool>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
    Bytes(Vec<ByteArray>),
    Fixed(Vec<FixedLenByteArray>),
}

/// One column of a batch: values, and definition levels (1 = value, 0 = null) when nullable.
#[derive(Debug, Clone)]
pub struct Column {
    pub values: Values,
    pub defs: Option<Vec<i16>>,
}

/// A carried column: its name and its (primitive) Parquet type in the output.
#[derive(Debug, Clone)]
pub struct Carried {
    pub name: String,
    pub schema: Arc<Type>,
}

/// A batch of points: coordinates and the carried columns, rows `first_row ..` of the file.
pub struct Batch {
    pub first_row: usize,
    pub lon: Vec<f64>,
    pub lat: Vec<f64>,
    pub columns: Vec<Column>,
}

/// A source of points.
pub trait PointReader {
    /// The carried columns, in order.
    fn carried(&self) -> &[Carried];
    /// Columns of the input that are not carried, each with why: `name (nested)` or
    /// `name (INT96)`.
    fn dropped(&self) -> &[String];
    /// Rows in the file.
    fn total_rows(&self) -> usize;
    /// The next batch of at most `max` rows.
    fn next_batch(&mut self, max: usize) -> Result<Option<Batch>, SampleError>;
}

/// Open a points file: `.csv` (any case) as CSV, anything else as Parquet.
pub fn open_points(
    path: &Path,
    lon_col: &str,
    lat_col: &str,
) -> Result<Box<dyn PointReader>, SampleError> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if ext == "csv" {
        Ok(Box::new(CsvPoints::open(path, lon_col, lat_col)?))
    } else {
        Ok(Box::new(ParquetPoints::open(path, lon_col, lat_col)?))
    }
}

/// Check a coordinate; `row` is 1-based.
fn check_coord(value: f64, what: &str, limit: f64) -> Result<f64, String> {
    if !value.is_finite() || value < -limit || value > limit {
        return Err(format!("{what} {value} is outside -{limit}..{limit}"));
    }
    Ok(value)
}

// ---------------------------------------------------------------------------------------------
// CSV

/// An RFC 4180 record reader: quoted fields may hold commas, doubled quotes and line breaks.
struct Records {
    input: BufReader<File>,
    line: usize,
}

impl Records {
    fn open(path: &Path) -> std::io::Result<Records> {
        Ok(Records {
            input: BufReader::with_capacity(1 << 20, File::open(path)?),
            line: 0,
        })
    }

    /// The next non-blank record and the line it starts on (1-based).
    fn next(&mut self) -> Result<Option<(usize, Vec<String>)>, String> {
        let mut buf = String::new();
        loop {
            buf.clear();
            if self.input.read_line(&mut buf).map_err(|e| e.to_string())? == 0 {
                return Ok(None);
            }
            self.line += 1;
            if !buf.trim().is_empty() {
                break;
            }
        }
        let start = self.line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        loop {
            let mut chars = buf.trim_end_matches(['\n', '\r']).chars().peekable();
            while let Some(c) = chars.next() {
                match (quoted, c) {
                    (true, '"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    (true, '"') => quoted = false,
                    (true, c) => field.push(c),
                    (false, '"') if field.is_empty() => quoted = true,
                    (false, ',') => fields.push(std::mem::take(&mut field)),
                    (false, c) => field.push(c),
                }
            }
            if !quoted {
                break;
            }
            field.push('\n');
            buf.clear();
            if self.input.read_line(&mut buf).map_err(|e| e.to_string())? == 0 {
                return Err(format!("line {start}: a quoted field is not closed"));
            }
            self.line += 1;
        }
        fields.push(field);
        Ok(Some((start, fields)))
    }
}

#[derive(Clone, Copy, PartialEq)]
enum CsvType {
    Int,
    Float,
    Text,
}

struct CsvPoints {
    path: PathBuf,
    records: Records,
    lon: usize,
    lat: usize,
    types: Vec<CsvType>,
    carried: Vec<Carried>,
    total: usize,
    done: usize,
}

impl CsvPoints {
    fn open(path: &Path, lon_col: &str, lat_col: &str) -> Result<CsvPoints, SampleError> {
        let io = |m: String| SampleError::Points {
            path: path.display().to_string(),
            message: m,
        };
        let mut records = Records::open(path).map_err(SampleError::points_file(path.display()))?;
        let Some((_, mut header)) = records.next().map_err(io)? else {
            return Err(io("the file is empty (no header, no rows)".into()));
        };
        if let Some(first) = header.first_mut() {
            *first = first.trim_start_matches('\u{feff}').to_string();
        }
        let header: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
        let find = |name: &str, flag: &str| {
            header
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| SampleError::MissingColumn {
                    path: path.display().to_string(),
                    column: name.to_string(),
                    columns: header.join(", "),
                    flag: flag.to_string(),
                })
        };
        let (lon, lat) = (find(lon_col, "--lon-col")?, find(lat_col, "--lat-col")?);
        // First pass: the type of every column, and every coordinate checked.
        let mut types = vec![CsvType::Int; header.len()];
        let mut total = 0;
        while let Some((line, fields)) = records.next().map_err(io)? {
            total += 1;
            let bad = |m: String| SampleError::BadRow {
                path: path.display().to_string(),
                row: total,
                line: Some(line),
                message: m,
            };
            if fields.len() != header.len() {
                return Err(bad(format!(
                    "{} fields where the header has {}",
                    fields.len(),
                    header.len()
                )));
            }
            csv_coord(&fields[lon], lon_col, 180.0).map_err(bad)?;
            csv_coord(&fields[lat], lat_col, 90.0).map_err(bad)?;
            for (t, f) in types.iter_mut().zip(&fields) {
                let f = f.trim();
                if f.is_empty() {
                    continue;
                }
                if *t == CsvType::Int && f.parse::<i64>().is_err() {
                    *t = CsvType::Float;
                }
                if *t == CsvType::Float && f.parse::<f64>().is_err() {
                    *t = CsvType::Text;
                }
            }
        }
        if total == 0 {
            return Err(io("the file has a header but no rows".into()));
        }
        let carried = header
            .iter()
            .zip(&types)
            .map(|(name, t)| {
                let (physical, logical) = match t {
                    CsvType::Int => (PhysicalType::INT64, None),
                    CsvType::Float => (PhysicalType::DOUBLE, None),
                    CsvType::Text => (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
                };
                let schema = Type::primitive_type_builder(name, physical)
                    .with_repetition(Repetition::OPTIONAL)
                    .with_logical_type(logical)
                    .build()
                    .map_err(|e| io(format!("column `{name}`: {e}")))?;
                Ok(Carried {
                    name: name.clone(),
                    schema: Arc::new(schema),
                })
            })
            .collect::<Result<Vec<_>, SampleError>>()?;
        let mut records = Records::open(path).map_err(SampleError::points_file(path.display()))?;
        records.next().map_err(io)?;
        Ok(CsvPoints {
            path: path.to_path_buf(),
            records,
            lon,
            lat,
            types,
            carried,
            total,
            done: 0,
        })
    }
}

fn csv_coord(text: &str, what: &str, limit: f64) -> Result<f64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("{what} is empty"));
    }
    let v = t
        .parse::<f64>()
        .map_err(|_| format!("{what} `{t}` is not a number"))?;
    check_coord(v, what, limit)
}

impl PointReader for CsvPoints {
    fn carried(&self) -> &[Carried] {
        &self.carried
    }

    fn dropped(&self) -> &[String] {
        &[]
    }

    fn total_rows(&self) -> usize {
        self.total
    }

    fn next_batch(&mut self, max: usize) -> Result<Option<Batch>, SampleError> {
        let io = |m: String| SampleError::Points {
            path: self.path.display().to_string(),
            message: m,
        };
        let mut rows = Vec::new();
        while rows.len() < max {
            match self.records.next().map_err(io)? {
                Some((_, fields)) => rows.push(fields),
                None => break,
            }
        }
        if rows.is_empty() {
            return Ok(None);
        }
        let first_row = self.done;
        self.done += rows.len();
        let coord = |i: usize, limit: f64| -> Vec<f64> {
            // Checked in the first pass.
            rows.iter()
                .map(|r| {
                    r[i].trim()
                        .parse::<f64>()
                        .unwrap_or(f64::NAN)
                        .clamp(-limit, limit)
                })
                .collect()
        };
        let (lon, lat) = (coord(self.lon, 180.0), coord(self.lat, 90.0));
        let columns = self
            .types
            .iter()
            .enumerate()
            .map(|(c, t)| {
                let cells = rows.iter().map(|r| r[c].as_str());
                let defs: Vec<i16> = cells
                    .clone()
                    .map(|f| i16::from(!f.trim().is_empty()))
                    .collect();
                let present = cells.filter(|f| !f.trim().is_empty());
                // Numbers are parsed without surrounding blanks; text is kept as written.
                let values = match t {
                    CsvType::Int => {
                        Values::I64(present.map(|f| f.trim().parse().unwrap_or(0)).collect())
                    }
                    CsvType::Float => Values::F64(
                        present
                            .map(|f| f.trim().parse().unwrap_or(f64::NAN))
                            .collect(),
                    ),
                    CsvType::Text => Values::Bytes(present.map(ByteArray::from).collect()),
                };
                Column {
                    values,
                    defs: Some(defs),
                }
            })
            .collect();
        Ok(Some(Batch {
            first_row,
            lon,
            lat,
            columns,
        }))
    }
}

// ---------------------------------------------------------------------------------------------
// Parquet and GeoParquet

/// Where the coordinates come from: two carried columns, or a WKB point column.
enum Coords {
    LonLat(usize, usize),
    Wkb(usize),
}

struct ParquetPoints {
    path: PathBuf,
    reader: SerializedFileReader<File>,
    /// Leaf column index of every carried column.
    leaves: Vec<usize>,
    carried: Vec<Carried>,
    dropped: Vec<String>,
    coords: Coords,
    coord_names: (String, String),
    total: usize,
    group: usize,
    group_left: usize,
    readers: Vec<ColumnReader>,
    done: usize,
}

/// The primary geometry column named by GeoParquet's `geo` metadata.
fn geo_primary_column(reader: &SerializedFileReader<File>) -> Option<String> {
    let kv = reader.metadata().file_metadata().key_value_metadata()?;
    let geo = kv.iter().find(|k| k.key == "geo")?.value.as_ref()?;
    let doc: serde_json::Value = serde_json::from_str(geo).ok()?;
    doc.get("primary_column")?.as_str().map(str::to_string)
}

impl ParquetPoints {
    fn open(path: &Path, lon_col: &str, lat_col: &str) -> Result<ParquetPoints, SampleError> {
        let io = |m: String| SampleError::Points {
            path: path.display().to_string(),
            message: m,
        };
        let file = File::open(path).map_err(SampleError::points_file(path.display()))?;
        let reader = SerializedFileReader::new(file)
            .map_err(|e| io(format!("not a Parquet file (nor .csv): {e}")))?;
        let descr = reader.metadata().file_metadata().schema_descr_ptr();
        let root = descr.root_schema().get_fields().to_vec();
        let (mut leaves, mut carried, mut dropped) = (Vec::new(), Vec::new(), Vec::new());
        for (i, field) in root.iter().enumerate() {
            let leaf = (0..descr.num_columns()).find(|&l| descr.get_column_root_idx(l) == i);
            match leaf {
                Some(l)
                    if field.is_primitive()
                        && field.get_basic_info().repetition() != Repetition::REPEATED
                        && field.get_physical_type() != PhysicalType::INT96 =>
                {
                    leaves.push(l);
                    carried.push(Carried {
                        name: field.name().to_string(),
                        schema: field.clone(),
                    });
                }
                _ if field.is_primitive() && field.get_physical_type() == PhysicalType::INT96 => {
                    dropped.push(format!("{} (INT96)", field.name()))
                }
                _ => dropped.push(format!("{} (nested)", field.name())),
            }
        }
        let names: Vec<&str> = carried.iter().map(|c| c.name.as_str()).collect();
        let all: Vec<&str> = root.iter().map(|f| f.name()).collect();
        let position = |n: &str| names.iter().position(|c| *c == n);
        let coords = match (position(lon_col), position(lat_col)) {
            (Some(a), Some(b)) => Coords::LonLat(a, b),
            (a, b) => match geo_primary_column(&reader).and_then(|g| position(&g)) {
                Some(g) if a.is_none() && b.is_none() => Coords::Wkb(g),
                _ => {
                    let column = if a.is_none() { lon_col } else { lat_col };
                    return Err(SampleError::MissingColumn {
                        path: path.display().to_string(),
                        column: column.to_string(),
                        columns: all.join(", "),
                        flag: if a.is_none() {
                            "--lon-col"
                        } else {
                            "--lat-col"
                        }
                        .to_string(),
                    });
                }
            },
        };
        let total = reader.metadata().file_metadata().num_rows().max(0) as usize;
        if total == 0 {
            return Err(io("the file has no rows".into()));
        }
        Ok(ParquetPoints {
            path: path.to_path_buf(),
            reader,
            leaves,
            carried,
            dropped,
            coords,
            coord_names: (lon_col.to_string(), lat_col.to_string()),
            total,
            group: 0,
            group_left: 0,
            readers: Vec::new(),
            done: 0,
        })
    }
}

/// Read `n` records of a flat column.
fn read_column(
    reader: &mut ColumnReader,
    n: usize,
    nullable: bool,
) -> parquet::errors::Result<Column> {
    let mut defs = Vec::with_capacity(n);
    let d = nullable.then_some(&mut defs);
    macro_rules! read {
        ($r:expr, $variant:ident) => {{
            let mut v = Vec::with_capacity(n);
            $r.read_records(n, d, None, &mut v)?;
            Values::$variant(v)
        }};
    }
    let values = match reader {
        ColumnReader::BoolColumnReader(r) => read!(r, Bool),
        ColumnReader::Int32ColumnReader(r) => read!(r, I32),
        ColumnReader::Int64ColumnReader(r) => read!(r, I64),
        ColumnReader::FloatColumnReader(r) => read!(r, F32),
        ColumnReader::DoubleColumnReader(r) => read!(r, F64),
        ColumnReader::ByteArrayColumnReader(r) => read!(r, Bytes),
        ColumnReader::FixedLenByteArrayColumnReader(r) => read!(r, Fixed),
        ColumnReader::Int96ColumnReader(_) => {
            return Err(parquet::errors::ParquetError::General("INT96".into()));
        }
    };
    Ok(Column {
        values,
        defs: nullable.then_some(defs),
    })
}

/// Row `i`'s value of a numeric column, `None` when null; `Err` when the column is not numeric.
fn numbers(col: &Column, what: &str) -> Result<Vec<Option<f64>>, String> {
    let vals: Vec<f64> = match &col.values {
        Values::I32(v) => v.iter().map(|&x| x as f64).collect(),
        Values::I64(v) => v.iter().map(|&x| x as f64).collect(),
        Values::F32(v) => v.iter().map(|&x| x as f64).collect(),
        Values::F64(v) => v.clone(),
        _ => return Err(format!("column `{what}` is not a number column")),
    };
    Ok(expand(col, vals))
}

/// Per-row values of a column (None where null).
fn expand<T: Clone>(col: &Column, vals: Vec<T>) -> Vec<Option<T>> {
    match &col.defs {
        None => vals.into_iter().map(Some).collect(),
        Some(defs) => {
            let mut it = vals.into_iter();
            defs.iter()
                .map(|&d| if d > 0 { it.next() } else { None })
                .collect()
        }
    }
}

/// (x, y) of a WKB point (ISO or EWKB; Z/M ordinates ignored).
pub fn wkb_point(b: &[u8]) -> Result<(f64, f64), String> {
    if b.len() < 21 {
        return Err(format!(
            "geometry is {} bytes, not a WKB point (21 or more)",
            b.len()
        ));
    }
    let le = match b[0] {
        0 => false,
        1 => true,
        o => return Err(format!("geometry has WKB byte order {o} (not 0 or 1)")),
    };
    let word = |s: &[u8]| -> [u8; 8] { s.try_into().expect("8 bytes") };
    let kind = u32::from_le_bytes(b[1..5].try_into().expect("4 bytes"));
    let kind = if le { kind } else { kind.swap_bytes() };
    if (kind & 0x0fff_ffff) % 1000 != 1 {
        return Err(format!("geometry has WKB type {kind}, not a point (1)"));
    }
    let f = |s: &[u8]| {
        if le {
            f64::from_le_bytes(word(s))
        } else {
            f64::from_be_bytes(word(s))
        }
    };
    Ok((f(&b[5..13]), f(&b[13..21])))
}

impl PointReader for ParquetPoints {
    fn carried(&self) -> &[Carried] {
        &self.carried
    }

    fn dropped(&self) -> &[String] {
        &self.dropped
    }

    fn total_rows(&self) -> usize {
        self.total
    }

    fn next_batch(&mut self, max: usize) -> Result<Option<Batch>, SampleError> {
        let path = self.path.display().to_string();
        let io = |m: String| SampleError::Points {
            path: path.clone(),
            message: m,
        };
        while self.group_left == 0 {
            if self.group >= self.reader.num_row_groups() {
                return Ok(None);
            }
            let group = self
                .reader
                .get_row_group(self.group)
                .map_err(SampleError::points_file(&path))?;
            self.group_left = group.metadata().num_rows().max(0) as usize;
            self.readers = self
                .leaves
                .iter()
                .map(|&l| group.get_column_reader(l))
                .collect::<Result<_, _>>()
                .map_err(SampleError::points_file(&path))?;
            self.group += 1;
        }
        let n = max.min(self.group_left);
        self.group_left -= n;
        let first_row = self.done;
        self.done += n;
        let mut columns = Vec::with_capacity(self.readers.len());
        for (reader, c) in self.readers.iter_mut().zip(&self.carried) {
            let nullable = c.schema.get_basic_info().repetition() == Repetition::OPTIONAL;
            let col = read_column(reader, n, nullable)
                .map_err(|e| io(format!("column `{}`: {e}", c.name)))?;
            columns.push(col);
        }
        let bad = |i: usize, m: String| SampleError::BadRow {
            path: path.clone(),
            row: first_row + i + 1,
            line: None,
            message: m,
        };
        let (mut lon, mut lat) = (Vec::with_capacity(n), Vec::with_capacity(n));
        match self.coords {
            Coords::LonLat(a, b) => {
                let (lon_name, lat_name) = &self.coord_names;
                let xs = numbers(&columns[a], lon_name).map_err(&io)?;
                let ys = numbers(&columns[b], lat_name).map_err(&io)?;
                for (i, (x, y)) in xs.into_iter().zip(ys).enumerate() {
                    let x = x.ok_or_else(|| bad(i, format!("{lon_name} is empty")))?;
                    let y = y.ok_or_else(|| bad(i, format!("{lat_name} is empty")))?;
                    lon.push(check_coord(x, lon_name, 180.0).map_err(|m| bad(i, m))?);
                    lat.push(check_coord(y, lat_name, 90.0).map_err(|m| bad(i, m))?);
                }
            }
            Coords::Wkb(g) => {
                let name = &self.carried[g].name;
                let Values::Bytes(v) = &columns[g].values else {
                    return Err(io(format!("geometry column `{name}` is not binary WKB")));
                };
                for (i, wkb) in expand(&columns[g], v.clone()).into_iter().enumerate() {
                    let wkb = wkb.ok_or_else(|| bad(i, format!("{name} is empty")))?;
                    let (x, y) = wkb_point(wkb.data()).map_err(|m| bad(i, m))?;
                    lon.push(check_coord(x, "lon", 180.0).map_err(|m| bad(i, m))?);
                    lat.push(check_coord(y, "lat", 90.0).map_err(|m| bad(i, m))?);
                }
            }
        }
        Ok(Some(Batch {
            first_row,
            lon,
            lat,
            columns,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wkb_points_in_both_byte_orders() {
        let mut le = vec![1u8, 1, 0, 0, 0];
        le.extend(6.5f64.to_le_bytes());
        le.extend((-70.25f64).to_le_bytes());
        assert_eq!(wkb_point(&le).unwrap(), (6.5, -70.25));
        let mut be = vec![0u8, 0, 0, 0, 1];
        be.extend(6.5f64.to_be_bytes());
        be.extend((-70.25f64).to_be_bytes());
        assert_eq!(wkb_point(&be).unwrap(), (6.5, -70.25));
        let mut line = le.clone();
        line[1] = 2;
        assert!(wkb_point(&line).unwrap_err().contains("not a point"));
        assert!(wkb_point(&le[..20]).is_err());
    }
}
