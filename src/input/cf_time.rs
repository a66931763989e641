//! CF time axes (`days since 1970-01-01`): the year of each value, for the zone store's `time`
//! coordinate (proleptic Gregorian calendar).

/// The year of `value` `units` (CF: `days since 1970-01-01`, `hours since 2017-01-01 00:00:00`).
pub(crate) fn year_of(value: f64, units: &str) -> Option<u16> {
    let (unit, since) = units.split_once(" since ")?;
    let seconds = match unit.trim() {
        "days" | "day" | "d" => 86400.0,
        "hours" | "hour" | "h" => 3600.0,
        "minutes" | "minute" => 60.0,
        "seconds" | "second" | "s" => 1.0,
        "milliseconds" => 1e-3,
        "microseconds" => 1e-6,
        "nanoseconds" => 1e-9,
        _ => return None,
    };
    let mut parts = since.trim().splitn(2, [' ', 'T']);
    let date: Vec<i64> = parts
        .next()?
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [y, m, d] = date[..] else { return None };
    let time: f64 = match parts.next() {
        Some(t) => {
            let hms: Vec<f64> = t
                .trim_end_matches('Z')
                .split(':')
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            hms.iter()
                .zip([3600.0, 60.0, 1.0])
                .map(|(a, b)| a * b)
                .sum()
        }
        None => 0.0,
    };
    let epoch_days = days_from_civil(y, m, d) as f64;
    let days = ((epoch_days * 86400.0 + time + value * seconds) / 86400.0).floor() as i64;
    u16::try_from(civil_year(days)).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The year of a day count since 1970-01-01.
fn civil_year(days: i64) -> i64 {
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(m <= 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cf_time_units() {
        assert_eq!(year_of(0.0, "days since 2017-01-01"), Some(2017));
        assert_eq!(year_of(364.0, "days since 2017-01-01"), Some(2017));
        assert_eq!(year_of(365.0, "days since 2017-01-01"), Some(2018));
        // 2024-07-01 from the Unix epoch: 19905 days.
        assert_eq!(year_of(19905.0, "days since 1970-01-01"), Some(2024));
        assert_eq!(
            year_of(19905.0 * 24.0, "hours since 1970-01-01 00:00:00"),
            Some(2024)
        );
        assert_eq!(year_of(-1.0, "days since 2017-01-01T00:00:00"), Some(2016));
        assert_eq!(year_of(1.0, "fortnights since 2017-01-01"), None);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
    }
}
