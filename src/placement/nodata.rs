//! The no-data rule, shared by the writer and `verify`: a source pixel holds data when the
//! landmask (if any) does not mark it as water and its scale is valid. Everything else, and
//! every output pixel outside the tile, is stored as fill (embeddings) and NaN (scales).

/// True for a usable scale: finite, positive and below the sentinel range (some published
/// files carry FLT_MAX-like values for "no data").
pub fn scale_is_valid(s: f32) -> bool {
    s.is_finite() && s > 0.0 && s < 1e6
}

/// True when source pixel `index` (row-major in its tile), whose scale is `scale`, holds data.
pub fn has_data(landmask: Option<&[u8]>, index: usize, scale: f32) -> bool {
    landmask.is_none_or(|m| m[index] != 0) && scale_is_valid(scale)
}
