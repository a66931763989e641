//! The gather kernel: copy each output pixel's source vector (or the fill) into an output
//! shard, in the output's row order. Every output byte is written once.

use super::map::{NO_SOURCE, PlacementMap};
use super::nodata::has_data;
use crate::grid::CHANNELS;

/// Copy source pixels into a cell's output buffers (embeddings as bytes, scales as f32).
pub fn gather(
    map: &PlacementMap,
    embeddings: &[u8],
    scales: &[f32],
    landmask: Option<&[u8]>,
    fill: i8,
) -> (Vec<u8>, Vec<f32>) {
    let mut out_emb = Vec::new();
    let out_scales = gather_into(map, embeddings, scales, landmask, fill, &mut out_emb);
    (out_emb, out_scales)
}

/// [`gather`] into a reused embeddings buffer (cleared first); returns the scales.
pub fn gather_into(
    map: &PlacementMap,
    embeddings: &[u8],
    scales: &[f32],
    landmask: Option<&[u8]>,
    fill: i8,
    out_emb: &mut Vec<u8>,
) -> Vec<f32> {
    let n = map.source.len();
    let fill_vector = [fill as u8; CHANNELS];
    out_emb.clear();
    out_emb.reserve_exact(n * CHANNELS);
    let mut out_scales = Vec::with_capacity(n);
    for &s in &map.source {
        let s = s as usize;
        if s != NO_SOURCE as usize && has_data(landmask, s, scales[s]) {
            out_emb.extend_from_slice(&embeddings[s * CHANNELS..(s + 1) * CHANNELS]);
            out_scales.push(scales[s]);
        } else {
            out_emb.extend_from_slice(&fill_vector);
            out_scales.push(f32::NAN);
        }
    }
    out_scales
}

/// A per-pixel array that travels with the embeddings (the observation counts): each output
/// pixel's value from the same source pixel as its embedding, `fill` where the embedding is
/// fill (outside the tile, water, invalid scale).
pub fn gather_beside(
    map: &PlacementMap,
    scales: &[f32],
    landmask: Option<&[u8]>,
    values: &[u16],
    fill: u16,
) -> Vec<u16> {
    map.source
        .iter()
        .map(|&s| {
            let s = s as usize;
            if s != NO_SOURCE as usize && has_data(landmask, s, scales[s]) {
                values[s]
            } else {
                fill
            }
        })
        .collect()
}
