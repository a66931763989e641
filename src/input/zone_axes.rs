//! The zone store's grid and time axes and attributes, read from a group (src/input/zones.rs).

use std::collections::BTreeSet;

use serde_json::Value;
use zarrs::array::ArraySubset;

use super::cf_time::year_of;
use super::zones::ZarrArray;
use crate::error::chain;
use crate::grid::{CHANNELS, UtmZone};

/// The false northing of a zone's CRS, metres.
pub(super) fn false_northing(zone: UtmZone) -> f64 {
    if zone.south { 10_000_000.0 } else { 0.0 }
}

/// The years of a `years_complete` attribute (numbers or strings) of `attrs`.
pub(super) fn years_complete(attrs: &Value) -> Result<BTreeSet<u16>, String> {
    attrs
        .get("years_complete")
        .and_then(Value::as_array)
        .ok_or("no years_complete attribute (a list of years)")?
        .iter()
        .map(|v| match v {
            Value::Number(n) => n.as_u64().and_then(|y| u16::try_from(y).ok()),
            Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .collect::<Option<BTreeSet<u16>>>()
        .ok_or_else(|| "years_complete holds something that is not a year".to_string())
}

/// A decoded (1, band, rows, cols) chunk of `pixels` pixels as pixel-major bytes (pixel, band).
pub(super) fn pixel_major(chunk: &[i8], pixels: usize) -> Vec<u8> {
    let mut out = vec![0u8; chunk.len()];
    for (b, plane) in chunk.chunks_exact(pixels).enumerate() {
        for (p, v) in plane.iter().enumerate() {
            out[p * CHANNELS + b] = *v as u8;
        }
    }
    out
}

/// The outer edge of pixel 0 of a regular 1-D axis of pixel centres (`step` apart), checked at
/// both ends.
pub(super) fn axis_edge(axis: &ZarrArray, n: u64, step: f64, name: &str) -> Result<f64, String> {
    if axis.shape() != [n] || n < 2 {
        return Err(format!(
            "{name} has shape {:?}, expected [{n}]",
            axis.shape()
        ));
    }
    let read = |i: u64| -> Result<f64, String> {
        let v: Vec<f64> = axis
            .retrieve_array_subset(
                &ArraySubset::new_with_start_shape(vec![i], vec![1])
                    .map_err(|e| format!("{name}: {e}"))?,
            )
            .map_err(|e| format!("{name}: {}", chain(&e)))?;
        Ok(v[0])
    };
    let (first, second, last) = (read(0)?, read(1)?, read(n - 1)?);
    let regular =
        (second - first - step).abs() < 1e-6 && (last - first - step * (n - 1) as f64).abs() < 1e-3;
    if !regular {
        return Err(format!(
            "{name} is not a regular {} m axis of pixel centres ({first}, {second}, ..., {last})",
            step.abs()
        ));
    }
    Ok(first - step / 2.0)
}

/// The years of a time axis: CF (`<unit> since <date>`, int64 or float64 values), or the years
/// themselves as integers with no units (the transcoder's int32 axis).
pub(super) fn time_years(time: &ZarrArray) -> Result<Vec<u16>, String> {
    let units = time.attributes().get("units").and_then(Value::as_str);
    let all = ArraySubset::new_with_shape(time.shape().to_vec());
    let values: Vec<f64> = if let Ok(v) = time.retrieve_array_subset::<Vec<i64>>(&all) {
        v.into_iter().map(|v| v as f64).collect()
    } else if let Ok(v) = time.retrieve_array_subset::<Vec<i32>>(&all) {
        v.into_iter().map(f64::from).collect()
    } else {
        time.retrieve_array_subset::<Vec<f64>>(&all)
            .map_err(|e| format!("time: {}", chain(&e)))?
    };
    values
        .into_iter()
        .map(|v| match units {
            Some(units) => {
                year_of(v, units).ok_or_else(|| format!("time units {units:?} not understood"))
            }
            None if v.fract() == 0.0 && (1900.0..=2200.0).contains(&v) => Ok(v as u16),
            None => Err(format!("time has no units attribute and {v} is not a year")),
        })
        .collect()
}
