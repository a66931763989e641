//! Writing the samples: Parquet (parquet crate's column writers, no arrow) or CSV.
//!
//! Parquet columns: the carried columns with their input types, `year` INT32, `band` UTF-8
//! (null outside every band), `row` and `col` INT64 (null outside), `scale` FLOAT (NaN where
//! there is no data) and `embedding`, a LIST of 128 INT(8, signed) (FLOAT with
//! `--dequantize`), null where there is no data. One row group per batch of points.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, Type as PhysicalType, ZstdLevel};
use parquet::data_type::{
    BoolType, ByteArray, ByteArrayType, DoubleType, FixedLenByteArrayType, FloatType, Int32Type,
    Int64Type,
};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use super::points::{Batch, Carried, Column, Values};
use crate::grid::CHANNELS;

/// The samples of one batch: per point the band and pixel, per (point, year) scale and vector.
pub struct Sampled {
    pub years: Vec<u16>,
    /// Band name per point (None outside every band).
    pub band: Vec<Option<Arc<str>>>,
    /// (row, col) per point.
    pub pixel: Vec<Option<(u64, u64)>>,
    /// Per point and year (point-major): scale, NaN = no data.
    pub scale: Vec<f32>,
    /// Per point and year: 128 values (meaningful where the scale is not NaN).
    pub emb: Vec<i8>,
}

/// Why samples could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("the points have a column `{0}`, which the output adds; rename it")]
    ColumnTaken(&'static str),
}

/// A writer of samples.
pub trait SampleWriter {
    fn write(&mut self, batch: &Batch, s: &Sampled) -> Result<(), OutputError>;
    fn finish(self: Box<Self>) -> Result<(), OutputError>;
}

/// True when an output path names a CSV file.
pub fn is_csv(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.to_string_lossy().eq_ignore_ascii_case("csv"))
}

/// A writer to `path`: CSV or Parquet.
pub fn sample_writer(
    path: &Path,
    csv: bool,
    carried: &[Carried],
    dequantize: bool,
) -> Result<Box<dyn SampleWriter>, OutputError> {
    let file = File::create(path)?;
    if csv {
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut header: Vec<String> = carried.iter().map(|c| quote(&c.name)).collect();
        header.extend(["year", "band", "row", "col", "scale"].map(String::from));
        header.extend((0..CHANNELS).map(|c| format!("e{c}")));
        writeln!(out, "{}", header.join(","))?;
        Ok(Box::new(CsvOut { out, dequantize }))
    } else {
        ParquetOut::new(file, carried, dequantize).map(|w| Box::new(w) as Box<dyn SampleWriter>)
    }
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The value of `row` of a column as CSV text (empty when null). `index` maps rows to values.
fn cell(col: &Column, index: &[Option<usize>], row: usize) -> String {
    let Some(k) = index[row] else {
        return String::new();
    };
    match &col.values {
        Values::Bool(v) => v[k].to_string(),
        Values::I32(v) => v[k].to_string(),
        Values::I64(v) => v[k].to_string(),
        Values::F32(v) => v[k].to_string(),
        Values::F64(v) => v[k].to_string(),
        Values::Bytes(v) => bytes_text(v[k].data()),
        Values::Fixed(v) => bytes_text(v[k].data()),
    }
}

/// UTF-8 text as is; other bytes (e.g. WKB) as hex.
fn bytes_text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => quote(s),
        Err(_) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

/// Value index of each row (None where null).
fn value_index(col: &Column, rows: usize) -> Vec<Option<usize>> {
    match &col.defs {
        None => (0..rows).map(Some).collect(),
        Some(defs) => {
            let mut k = 0;
            defs.iter()
                .map(|&d| {
                    (d > 0).then(|| {
                        k += 1;
                        k - 1
                    })
                })
                .collect()
        }
    }
}

struct CsvOut {
    out: BufWriter<File>,
    dequantize: bool,
}

impl SampleWriter for CsvOut {
    fn write(&mut self, batch: &Batch, s: &Sampled) -> Result<(), OutputError> {
        let n = batch.lon.len();
        let ny = s.years.len();
        let index: Vec<Vec<Option<usize>>> =
            batch.columns.iter().map(|c| value_index(c, n)).collect();
        let mut line = String::with_capacity(2048);
        for i in 0..n {
            let carried: Vec<String> = batch
                .columns
                .iter()
                .zip(&index)
                .map(|(c, ix)| cell(c, ix, i))
                .collect();
            for (k, year) in s.years.iter().enumerate() {
                line.clear();
                for c in &carried {
                    line.push_str(c);
                    line.push(',');
                }
                let (band, (row, col)) = match (&s.band[i], s.pixel[i]) {
                    (Some(b), Some((r, c))) => (b.to_string(), (r.to_string(), c.to_string())),
                    _ => (String::new(), (String::new(), String::new())),
                };
                let scale = s.scale[i * ny + k];
                line.push_str(&format!("{year},{band},{row},{col},"));
                if !scale.is_nan() {
                    line.push_str(&scale.to_string());
                }
                let e = &s.emb[(i * ny + k) * CHANNELS..(i * ny + k + 1) * CHANNELS];
                for &v in e {
                    line.push(',');
                    if scale.is_nan() {
                        continue;
                    }
                    if self.dequantize {
                        line.push_str(&(v as f32 * scale).to_string());
                    } else {
                        line.push_str(&v.to_string());
                    }
                }
                line.push('\n');
                self.out.write_all(line.as_bytes())?;
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), OutputError> {
        Ok(self.out.flush()?)
    }
}

struct ParquetOut {
    writer: SerializedFileWriter<File>,
    dequantize: bool,
}

fn primitive(
    name: &str,
    t: PhysicalType,
    rep: Repetition,
    logical: Option<LogicalType>,
) -> Arc<Type> {
    Arc::new(
        Type::primitive_type_builder(name, t)
            .with_repetition(rep)
            .with_logical_type(logical)
            .build()
            .expect("valid column"),
    )
}

impl ParquetOut {
    fn new(file: File, carried: &[Carried], dequantize: bool) -> Result<ParquetOut, OutputError> {
        let mut fields: Vec<Arc<Type>> = carried.iter().map(|c| c.schema.clone()).collect();
        let taken = |n: &str| carried.iter().any(|c| c.name == n);
        for name in ["year", "band", "row", "col", "scale", "embedding"] {
            if taken(name) {
                return Err(OutputError::ColumnTaken(name));
            }
        }
        fields.push(primitive(
            "year",
            PhysicalType::INT32,
            Repetition::REQUIRED,
            None,
        ));
        fields.push(primitive(
            "band",
            PhysicalType::BYTE_ARRAY,
            Repetition::OPTIONAL,
            Some(LogicalType::String),
        ));
        fields.push(primitive(
            "row",
            PhysicalType::INT64,
            Repetition::OPTIONAL,
            None,
        ));
        fields.push(primitive(
            "col",
            PhysicalType::INT64,
            Repetition::OPTIONAL,
            None,
        ));
        fields.push(primitive(
            "scale",
            PhysicalType::FLOAT,
            Repetition::REQUIRED,
            None,
        ));
        let element = if dequantize {
            primitive("element", PhysicalType::FLOAT, Repetition::REQUIRED, None)
        } else {
            let int8 = LogicalType::Integer(parquet::basic::IntType {
                bit_width: 8,
                is_signed: true,
            });
            primitive(
                "element",
                PhysicalType::INT32,
                Repetition::REQUIRED,
                Some(int8),
            )
        };
        let list = Type::group_type_builder("list")
            .with_repetition(Repetition::REPEATED)
            .with_fields(vec![element])
            .build()?;
        let embedding = Type::group_type_builder("embedding")
            .with_repetition(Repetition::OPTIONAL)
            .with_logical_type(Some(LogicalType::List))
            .with_fields(vec![Arc::new(list)])
            .build()?;
        fields.push(Arc::new(embedding));
        let schema = Type::group_type_builder("schema")
            .with_fields(fields)
            .build()?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .build();
        let writer = SerializedFileWriter::new(file, Arc::new(schema), Arc::new(props))?;
        Ok(ParquetOut { writer, dequantize })
    }
}

/// Repeat each row's value (and level) `times` times.
fn repeat<T: Clone>(
    values: &[T],
    defs: Option<&Vec<i16>>,
    times: usize,
) -> (Vec<T>, Option<Vec<i16>>) {
    match defs {
        None => (
            values
                .iter()
                .flat_map(|v| std::iter::repeat_n(v.clone(), times))
                .collect(),
            None,
        ),
        Some(defs) => {
            let mut it = values.iter();
            let (mut out, mut levels) = (Vec::new(), Vec::new());
            for &d in defs {
                let v = (d > 0).then(|| it.next().expect("value per level").clone());
                for _ in 0..times {
                    levels.push(d);
                    if let Some(v) = &v {
                        out.push(v.clone());
                    }
                }
            }
            (out, Some(levels))
        }
    }
}

/// Rows per write_batch call of the embedding column (bounded memory).
const SLICE: usize = 8192;

impl SampleWriter for ParquetOut {
    fn write(&mut self, batch: &Batch, s: &Sampled) -> Result<(), OutputError> {
        let (n, ny) = (batch.lon.len(), s.years.len());
        let rows = n * ny;
        let mut group = self.writer.next_row_group()?;
        let mut col_no = 0;
        while let Some(mut w) = group.next_column()? {
            if let Some(c) = batch.columns.get(col_no) {
                macro_rules! carry {
                    ($v:expr, $t:ty) => {{
                        let (v, d) = repeat($v, c.defs.as_ref(), ny);
                        w.typed::<$t>()
                            .write_batch(&v, d.as_deref(), None)
                            .map(|_| ())
                    }};
                }
                match &c.values {
                    Values::Bool(v) => carry!(v, BoolType),
                    Values::I32(v) => carry!(v, Int32Type),
                    Values::I64(v) => carry!(v, Int64Type),
                    Values::F32(v) => carry!(v, FloatType),
                    Values::F64(v) => carry!(v, DoubleType),
                    Values::Bytes(v) => carry!(v, ByteArrayType),
                    Values::Fixed(v) => carry!(v, FixedLenByteArrayType),
                }?;
            } else {
                let extra = col_no - batch.columns.len();
                let per_point = |f: &dyn Fn(usize) -> bool| -> Vec<i16> {
                    (0..rows).map(|r| i16::from(f(r / ny))).collect()
                };
                let result = match extra {
                    0 => {
                        let years: Vec<i32> = (0..rows).map(|r| s.years[r % ny] as i32).collect();
                        w.typed::<Int32Type>().write_batch(&years, None, None)
                    }
                    1 => {
                        let defs = per_point(&|i| s.band[i].is_some());
                        let v: Vec<ByteArray> = (0..rows)
                            .filter_map(|r| s.band[r / ny].as_ref())
                            .map(|b| ByteArray::from(b.as_bytes().to_vec()))
                            .collect();
                        w.typed::<ByteArrayType>()
                            .write_batch(&v, Some(&defs), None)
                    }
                    2 | 3 => {
                        let defs = per_point(&|i| s.pixel[i].is_some());
                        let v: Vec<i64> = (0..rows)
                            .filter_map(|r| s.pixel[r / ny])
                            .map(|(row, col)| if extra == 2 { row } else { col } as i64)
                            .collect();
                        w.typed::<Int64Type>().write_batch(&v, Some(&defs), None)
                    }
                    4 => w.typed::<FloatType>().write_batch(&s.scale, None, None),
                    _ => {
                        for start in (0..rows).step_by(SLICE) {
                            let end = (start + SLICE).min(rows);
                            let (mut defs, mut reps) = (Vec::new(), Vec::new());
                            let (mut ints, mut floats) = (Vec::new(), Vec::new());
                            for r in start..end {
                                let scale = s.scale[r];
                                if scale.is_nan() {
                                    defs.push(0);
                                    reps.push(0);
                                    continue;
                                }
                                let e = &s.emb[r * CHANNELS..(r + 1) * CHANNELS];
                                for (k, &v) in e.iter().enumerate() {
                                    defs.push(2);
                                    reps.push(i16::from(k > 0));
                                    if self.dequantize {
                                        floats.push(v as f32 * scale);
                                    } else {
                                        ints.push(v as i32);
                                    }
                                }
                            }
                            if self.dequantize {
                                w.typed::<FloatType>().write_batch(
                                    &floats,
                                    Some(&defs),
                                    Some(&reps),
                                )?;
                            } else {
                                w.typed::<Int32Type>().write_batch(
                                    &ints,
                                    Some(&defs),
                                    Some(&reps),
                                )?;
                            }
                        }
                        Ok(0)
                    }
                };
                result?;
            }
            w.close()?;
            col_no += 1;
        }
        group.close()?;
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), OutputError> {
        self.writer.close()?;
        Ok(())
    }
}
