//! UTC timestamps for `added`, `YYYY-MM-DDTHH:MM:SSZ`, without a date crate.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::ValidateError;

const SECONDS_PER_DAY: u64 = 86_400;

/// The current time. A clock set before 1970 reads as 1970.
pub(crate) fn now_utc() -> String {
    utc_timestamp(SystemTime::now())
}

/// Formats a point in time as `YYYY-MM-DDTHH:MM:SSZ` (UTC). The host uses it
/// too, so every timestamp backout writes has one shape.
pub fn utc_timestamp(t: SystemTime) -> String {
    format_utc(t.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs()))
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn format_utc(seconds: u64) -> String {
    let (year, month, day) = civil_from_days(seconds / SECONDS_PER_DAY);
    let time = seconds % SECONDS_PER_DAY;
    let (hour, minute, second) = (time / 3600, time / 60 % 60, time % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// The proleptic Gregorian date of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`, restricted to days on or after the
/// epoch, so everything stays unsigned).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01, so leap days end each 400-year era.
    let days = days + 719_468;
    let era = days / 146_097;
    let day_of_era = days % 146_097; // [0, 146096]
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // [0, 399]
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // [0, 365]
    let month_from_march = (5 * day_of_year + 2) / 153; // [0, 11]
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1; // [1, 31]
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 }; // [1, 12]
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Seconds since the Unix epoch of a `YYYY-MM-DDTHH:MM:SSZ` timestamp, the
/// shape [`utc_timestamp`] writes (negative before 1970); `None` for
/// anything else.
pub fn parse_utc(value: &str) -> Option<i64> {
    validate_timestamp("time", value).ok()?;
    let bytes = value.as_bytes();
    let number =
        |start: usize, end: usize| bytes[start..end].iter().fold(0i64, |n, digit| n * 10 + i64::from(digit - b'0'));
    let (year, month, day) = (number(0, 4), number(5, 7), number(8, 10));
    let (hour, minute, second) = (number(11, 13), number(14, 16), number(17, 19));
    Some(days_from_civil(year, month, day) * SECONDS_PER_DAY as i64 + hour * 3600 + minute * 60 + second)
}

/// Seconds since the Unix epoch of `t` (negative before 1970, saturating).
pub(crate) fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, the inverse of [`civil_from_days`]).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400; // [0, 399]
    let month_from_march = (month + 9) % 12; // [0, 11]
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1; // [0, 365]
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year; // [0, 146096]
    era * 146_097 + day_of_era - 719_468
}

/// Checks that `value` is a real UTC date and time written as
/// `YYYY-MM-DDTHH:MM:SSZ` (a leap second `:60` is allowed, as in RFC 3339).
pub(crate) fn validate_timestamp(field: &'static str, value: &str) -> Result<(), ValidateError> {
    let refuse =
        |reason: &str| Err(ValidateError::InvalidField { field, value: value.to_owned(), reason: reason.to_owned() });
    let bytes = value.as_bytes();
    let shaped = bytes.len() == 20
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return refuse("expected a UTC time `YYYY-MM-DDTHH:MM:SSZ`");
    }
    let number =
        |start: usize, end: usize| bytes[start..end].iter().fold(0u64, |n, digit| n * 10 + u64::from(digit - b'0'));
    let (year, month, day) = (number(0, 4), number(5, 7), number(8, 10));
    let (hour, minute, second) = (number(11, 13), number(14, 16), number(17, 19));
    if !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) {
        return refuse("no such date");
    }
    if hour > 23 || minute > 59 || second > 60 {
        return refuse("no such time of day");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_civil_dates() {
        // Expected values from `date -u -d @<seconds>`.
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (1_795_432_721, "2026-11-23T11:18:41Z"),
            (4_107_542_399, "2100-02-28T23:59:59Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(format_utc(seconds), expected);
            validate_timestamp("added", expected).unwrap();
        }
        validate_timestamp("added", &now_utc()).unwrap();
    }

    #[test]
    fn parse_utc_inverts_format_utc() {
        for seconds in [0u64, 59, 951_782_400, 1_700_000_000, 1_795_432_721, 4_107_542_399, 253_402_300_799] {
            assert_eq!(parse_utc(&format_utc(seconds)), Some(seconds as i64));
        }
        assert_eq!(parse_utc("1969-12-31T23:59:59Z"), Some(-1));
        assert_eq!(parse_utc("0000-03-01T00:00:00Z"), Some(-62_162_035_200));
        assert_eq!(parse_utc("2026-02-30T00:00:00Z"), None);
        assert_eq!(unix_seconds(UNIX_EPOCH + std::time::Duration::from_secs(5)), 5);
        assert_eq!(unix_seconds(UNIX_EPOCH - std::time::Duration::from_secs(5)), -5);
    }

    #[test]
    fn malformed_timestamps_are_refused() {
        for bad in [
            "",
            "2026-11-23 11:18:41Z",
            "2026-11-23T11:18:41",
            "2026-11-23T11:18:41+00:00",
            "2026-11-23T11:18:41.5Z",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-11-23T24:00:00Z",
            "2026-11-23T11:60:00Z",
            "２026-11-23T11:18:41Z",
        ] {
            assert!(
                matches!(validate_timestamp("added", bad), Err(ValidateError::InvalidField { field: "added", value, .. }) if value == bad),
                "{bad:?} should be refused"
            );
        }
        validate_timestamp("added", "2024-02-29T23:59:60Z").unwrap();
    }
}
