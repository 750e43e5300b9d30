//! Durations (`30s`, `2m`) and byte sizes (`128MiB`) as runbooks write them.
//!
//! One grammar for the whole project: the host reads a step's `timeout`,
//! `memory` and `max_received` with this very file (`host/src/lib.rs`
//! includes it by path) and plugins read their own config with it, so
//! `timeout = "5s"` means the same thing everywhere in a runbook.
//!
//! Parsed strictly: a unit is required, and an unknown unit is an error that
//! lists the known ones, because `timeout = "30"` meaning thirty seconds or
//! thirty minutes is exactly the kind of guess a rollback must not make.

use std::time::Duration;

/// Parses `500ms`, `30s`, `2m`, `1h`, `30d` (integers only).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = split_number(text)?;
    let ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "" => return Err(format!("`{text}` has no unit; write for example `30s`, `2m` or `500ms`")),
        other => return Err(format!("unknown duration unit `{other}` in `{text}`; use `ms`, `s`, `m`, `h` or `d`")),
    };
    let total = number.checked_mul(ms).ok_or_else(|| format!("duration `{text}` is too large"))?;
    if total == 0 {
        return Err(format!("duration `{text}` must be greater than zero"));
    }
    Ok(Duration::from_millis(total))
}

/// Parses `64KiB`, `128MiB`, `1GiB` (binary units) and `1KB`, `1MB`, `1GB`
/// (decimal units), or a plain number of bytes followed by `B`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (number, unit) = split_number(text)?;
    let factor: u64 = match unit {
        "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "" => return Err(format!("`{text}` has no unit; write for example `128MiB`")),
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}`; use `B`, `KiB`, `MiB`, `GiB`, `KB`, `MB` or `GB`"
            ));
        }
    };
    let total = number.checked_mul(factor).ok_or_else(|| format!("size `{text}` is too large"))?;
    if total == 0 {
        return Err(format!("size `{text}` must be greater than zero"));
    }
    Ok(total)
}

fn split_number(text: &str) -> Result<(u64, &str), String> {
    let trimmed = text.trim();
    let digits = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    if digits == 0 {
        return Err(format!("`{text}` does not start with a whole number"));
    }
    let number = trimmed[..digits].parse::<u64>().map_err(|_| format!("`{text}` is too large"))?;
    Ok((number, trimmed[digits..].trim_start()))
}

/// `134217728` → `128MiB`, for messages.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, factor) in UNITS {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{}{unit}", bytes / factor);
        }
    }
    for (unit, factor) in UNITS {
        if bytes >= factor {
            return format!("{:.1}{unit}", bytes as f64 / factor as f64);
        }
    }
    format!("{bytes}B")
}

/// `512 bytes`, `1.5 KiB`, `64.0 MiB`: a size as people read it in logs and
/// summaries (one decimal, binary units).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `Duration` → `30s`, `1m30s`, `250ms`, for messages.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if !ms.is_multiple_of(1000) {
        return format!("{:.1}s", d.as_secs_f64());
    }
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

/// A measured time for people, rounded to what matters: `<1ms`, `18ms`,
/// `2.4s`, `3m05s`, `1h02m`. (Config values use [`format_duration`], which
/// is exact.)
pub fn format_elapsed(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "<1ms".to_string(),
        1..1000 => format!("{ms}ms"),
        1000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_times_are_rounded_for_people() {
        let f = |ms| format_elapsed(Duration::from_millis(ms));
        assert_eq!([f(0), f(18), f(2_449), f(185_000), f(3_725_000)], ["<1ms", "18ms", "2.4s", "3m05s", "1h02m"]);
    }

    #[test]
    fn durations_need_a_known_unit() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert!(parse_duration("3w").unwrap_err().contains("unknown duration unit `w`"));
        assert!(parse_duration("0s").unwrap_err().contains("greater than zero"));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1.5s").is_err());
    }

    #[test]
    fn sizes_accept_binary_and_decimal_units() {
        assert_eq!(parse_size("128MiB"), Ok(128 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("4096B"), Ok(4096));
        assert!(parse_size("128").unwrap_err().contains("no unit"));
        assert!(parse_size("1TiB").unwrap_err().contains("unknown size unit"));
        assert!(parse_size("99999999999999999999GiB").is_err());
    }

    #[test]
    fn sizes_and_durations_format_for_people() {
        assert_eq!(format_size(128 << 20), "128MiB");
        assert_eq!(format_size(1536), "1.5KiB");
        assert_eq!(format_size(12), "12B");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
    }
}
