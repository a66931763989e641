//! Minimal GeoTIFF support: single-band rasters with an EPSG code and a north-up transform.
//! Used for TESSERA landmasks (read and, in `synth`, written).

use std::io::BufWriter;
use std::path::Path;

use tiff::decoder::{Decoder, DecodingResult};
use tiff::encoder::{TiffEncoder, colortype};
use tiff::tags::Tag;

/// A north-up georeference: pixel (r, c) outer corner at (x0 + c * dx, y0 - r * dy).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoTransform {
    /// EPSG code of the CRS.
    pub epsg: u32,
    /// X of the west edge of column 0.
    pub x0: f64,
    /// Y of the north edge of row 0.
    pub y0: f64,
    /// Pixel width.
    pub dx: f64,
    /// Pixel height (positive).
    pub dy: f64,
}

/// Errors reading or writing GeoTIFFs.
#[derive(Debug, thiserror::Error)]
pub enum GeoTiffError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("TIFF: {0}")]
    Tiff(#[from] tiff::TiffError),
    #[error("expected a single-band 8-bit raster")]
    NotUint8,
    #[error("{0}")]
    Source(String),
}

const MODEL_PIXEL_SCALE: u16 = 33550;
const MODEL_TIEPOINT: u16 = 33922;
const GEO_KEY_DIRECTORY: u16 = 34735;

/// GeoKey directory naming a projected (or, for 4326, geographic) CRS by EPSG code.
fn geo_keys(epsg: u32) -> Vec<u16> {
    let geographic = epsg == 4326;
    let model_type = if geographic { 2 } else { 1 };
    let crs_key = if geographic { 2048 } else { 3072 };
    vec![
        1,
        1,
        0,
        3, // version 1.1.0, 3 keys
        1024,
        0,
        1,
        model_type, // GTModelTypeGeoKey
        1025,
        0,
        1,
        1, // GTRasterTypeGeoKey = PixelIsArea
        crs_key,
        0,
        1,
        epsg as u16, // ProjectedCSTypeGeoKey / GeographicTypeGeoKey
    ]
}

/// Write a uint8 single-band GeoTIFF.
pub fn write_u8(
    path: &Path,
    width: usize,
    height: usize,
    data: &[u8],
    transform: &GeoTransform,
) -> Result<(), GeoTiffError> {
    let file = BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = TiffEncoder::new(file)?;
    let mut image = encoder.new_image::<colortype::Gray8>(width as u32, height as u32)?;
    let enc = image.encoder();
    enc.write_tag(
        Tag::Unknown(MODEL_PIXEL_SCALE),
        &[transform.dx, transform.dy, 0.0][..],
    )?;
    enc.write_tag(
        Tag::Unknown(MODEL_TIEPOINT),
        &[0.0, 0.0, 0.0, transform.x0, transform.y0, 0.0][..],
    )?;
    enc.write_tag(
        Tag::Unknown(GEO_KEY_DIRECTORY),
        &geo_keys(transform.epsg)[..],
    )?;
    image.write_data(data)?;
    Ok(())
}

/// A uint8 single-band GeoTIFF as read: its size, pixels and georeference (if it has one).
#[derive(Debug, Clone)]
pub struct U8Raster {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// One byte per pixel, row-major.
    pub data: Vec<u8>,
    /// The north-up georeference its tags give (`None`: no or an unsupported georeference).
    pub transform: Option<GeoTransform>,
}

/// Read a uint8 single-band TIFF from any reader (a file, or bytes fetched from an object
/// store) with its georeference: ModelPixelScale, ModelTiepoint and the EPSG code of
/// the GeoKey directory (ProjectedCSTypeGeoKey, else GeographicTypeGeoKey). A PixelIsPoint
/// raster's tie point is moved to the pixel's outer corner.
pub fn read_u8_raster(
    reader: impl std::io::Read + std::io::Seek,
) -> Result<U8Raster, GeoTiffError> {
    let mut decoder = Decoder::new(reader)?;
    let (w, h) = decoder.dimensions()?;
    let scale = decoder.find_tag(Tag::Unknown(MODEL_PIXEL_SCALE))?;
    let tie = decoder.find_tag(Tag::Unknown(MODEL_TIEPOINT))?;
    let keys = decoder.find_tag(Tag::Unknown(GEO_KEY_DIRECTORY))?;
    let transform = match (scale, tie, keys) {
        (Some(scale), Some(tie), Some(keys)) => {
            let (scale, tie, keys) = (
                scale.into_f64_vec()?,
                tie.into_f64_vec()?,
                keys.into_u16_vec()?,
            );
            georeference(&scale, &tie, &keys)
        }
        _ => None,
    };
    let data = match decoder.read_image()? {
        DecodingResult::U8(data) if data.len() == w as usize * h as usize => data,
        _ => return Err(GeoTiffError::NotUint8),
    };
    Ok(U8Raster {
        width: w as usize,
        height: h as usize,
        data,
        transform,
    })
}

/// A north-up transform from GeoTIFF's tags, if they describe one.
fn georeference(scale: &[f64], tie: &[f64], keys: &[u16]) -> Option<GeoTransform> {
    let (&[dx, dy, ..], &[i, j, _, x, y, ..]) = (scale, tie) else {
        return None;
    };
    // The key directory: a header of 4 shorts, then (key, location, count, value) entries.
    let key = |id: u16| {
        keys.get(4..)?
            .chunks_exact(4)
            .find(|e| e[0] == id && e[1] == 0)
            .map(|e| e[3])
    };
    let epsg = key(3072).or_else(|| key(2048))?;
    let point = key(1025) == Some(2);
    let half = if point { 0.5 } else { 0.0 };
    Some(GeoTransform {
        epsg: epsg as u32,
        x0: x - (i + half) * dx,
        y0: y + (j + half) * dy,
        dx,
        dy,
    })
}

/// 128 int8 samples per pixel.
struct Int8x128;
impl colortype::ColorType for Int8x128 {
    type Inner = i8;
    const TIFF_VALUE: tiff::tags::PhotometricInterpretation =
        tiff::tags::PhotometricInterpretation::BlackIsZero;
    const BITS_PER_SAMPLE: &'static [u16] = &[8; 128];
    const SAMPLE_FORMAT: &'static [tiff::tags::SampleFormat] =
        &[tiff::tags::SampleFormat::Int; 128];
    fn horizontal_predict(row: &[i8], result: &mut Vec<i8>) {
        result.extend_from_slice(row);
    }
}

/// 128 float32 samples per pixel.
struct Float32x128;
impl colortype::ColorType for Float32x128 {
    type Inner = f32;
    const TIFF_VALUE: tiff::tags::PhotometricInterpretation =
        tiff::tags::PhotometricInterpretation::BlackIsZero;
    const BITS_PER_SAMPLE: &'static [u16] = &[32; 128];
    const SAMPLE_FORMAT: &'static [tiff::tags::SampleFormat] =
        &[tiff::tags::SampleFormat::IEEEFP; 128];
    fn horizontal_predict(row: &[f32], result: &mut Vec<f32>) {
        result.extend_from_slice(row);
    }
}

const GDAL_NODATA: u16 = 42113;

/// One strip of a 128-band GeoTIFF: rows x width x 128 samples.
pub enum Strip {
    /// int8 embeddings.
    Int8(Vec<i8>),
    /// float32 dequantised embeddings (NaN = no data).
    Float32(Vec<f32>),
}

/// Write a 128-band, pixel-interleaved BigTIFF with an EPSG georeference.
///
/// `next_strip` yields strips of `rows_per_strip` rows (the last may be shorter), north first,
/// then `None`. Float files carry GDAL's NaN no-data tag.
pub fn write_128_band(
    path: &Path,
    width: usize,
    height: usize,
    rows_per_strip: usize,
    float: bool,
    transform: &GeoTransform,
    next_strip: &mut dyn FnMut() -> Result<Option<Strip>, String>,
) -> Result<(), GeoTiffError> {
    let file = BufWriter::new(std::fs::File::create(path)?);
    let mut encoder = TiffEncoder::new_big(file)?;
    macro_rules! write_with {
        ($ct:ty, $variant:ident, $nodata:expr) => {{
            let mut image = encoder.new_image::<$ct>(width as u32, height as u32)?;
            image.rows_per_strip(rows_per_strip as u32)?;
            let enc = image.encoder();
            enc.write_tag(
                Tag::Unknown(MODEL_PIXEL_SCALE),
                &[transform.dx, transform.dy, 0.0][..],
            )?;
            enc.write_tag(
                Tag::Unknown(MODEL_TIEPOINT),
                &[0.0, 0.0, 0.0, transform.x0, transform.y0, 0.0][..],
            )?;
            enc.write_tag(
                Tag::Unknown(GEO_KEY_DIRECTORY),
                &geo_keys(transform.epsg)[..],
            )?;
            if let Some(nodata) = $nodata {
                enc.write_tag(Tag::Unknown(GDAL_NODATA), nodata)?;
            }
            while let Some(strip) = next_strip().map_err(GeoTiffError::Source)? {
                match strip {
                    Strip::$variant(data) => image.write_strip(&data)?,
                    _ => {
                        return Err(GeoTiffError::Source(
                            "strip of the wrong sample type".into(),
                        ));
                    }
                }
            }
            image.finish()?;
            Ok(())
        }};
    }
    if float {
        write_with!(Float32x128, Float32, Some("nan"))
    } else {
        write_with!(Int8x128, Int8, None::<&str>)
    }
}
