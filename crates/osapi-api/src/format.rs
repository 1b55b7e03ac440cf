//! Text formats shared by the controller, the agent and clients: Go-style
//! durations (`1.84ms`, `76h3m12s`), the human uptime string
//! (`3 days, 4 hours, 1 minute`), RFC 3339 timestamps, and a Go-compatible
//! duration parser (`1h30m`, `500ms`, `2.5s`).

use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Formats a duration the way Go's `time.Duration.String()` does.
///
/// ```
/// use std::time::Duration;
/// use osapi_api::format::go_duration;
/// assert_eq!(go_duration(Duration::from_micros(1840)), "1.84ms");
/// assert_eq!(go_duration(Duration::from_secs(76 * 3600 + 192)), "76h3m12s");
/// assert_eq!(go_duration(Duration::ZERO), "0s");
/// ```
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", trim_fraction(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", trim_fraction(nanos, 1_000_000));
    }
    let total_secs = d.as_secs();
    let hours = total_secs / 3600;
    let minutes = (total_secs % 3600) / 60;
    let secs_nanos = (total_secs % 60) as u128 * 1_000_000_000 + d.subsec_nanos() as u128;
    let secs = trim_fraction(secs_nanos, 1_000_000_000);
    if hours > 0 {
        format!("{hours}h{minutes}m{secs}s")
    } else if minutes > 0 {
        format!("{minutes}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

fn trim_fraction(value: u128, unit: u128) -> String {
    let whole = value / unit;
    let frac = value % unit;
    if frac == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Formats an uptime as `"<d> days, <h> hours, <m> minutes"`, singular when
/// a value is exactly 1, the way upstream's agent list and node status do.
///
/// ```
/// use osapi_api::format::human_uptime;
/// assert_eq!(human_uptime(3 * 86_400 + 4 * 3600 + 60), "3 days, 4 hours, 1 minute");
/// ```
pub fn human_uptime(seconds: u64) -> String {
    let days = seconds / 86_400;
    let hours = (seconds % 86_400) / 3600;
    let minutes = (seconds % 3600) / 60;
    let unit = |n: u64, word: &str| {
        if n == 1 {
            format!("{n} {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    format!(
        "{}, {}, {}",
        unit(days, "day"),
        unit(hours, "hour"),
        unit(minutes, "minute")
    )
}

/// Formats a timestamp as RFC 3339 (UTC, nanoseconds kept when non-zero).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Formats a timestamp as RFC 3339 truncated to whole seconds.
pub fn rfc3339_seconds(t: OffsetDateTime) -> String {
    rfc3339(t.replace_nanosecond(0).unwrap_or(t))
}

/// Error returned by [`parse_duration`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct DurationError {
    /// The text that failed to parse.
    pub input: String,
    /// Why it failed.
    pub reason: &'static str,
}

/// Parses a Go-style duration (`300ms`, `1.5s`, `2m`, `1h30m`, `72h`), plus
/// `d` for days, which Go lacks but configuration files often use.
/// A bare number is taken as seconds.
///
/// ```
/// use std::time::Duration;
/// use osapi_api::format::parse_duration;
/// assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
/// assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86_400));
/// assert!(parse_duration("soon").is_err());
/// ```
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError {
        input: input.to_string(),
        reason,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Duration::try_from_secs_f64(secs).map_err(|_| err("too large"));
        }
        return Err(err("must be a non-negative number"));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| err("missing unit (use ns, us, ms, s, m, h or d)"))?;
        if num_len == 0 {
            return Err(err("expected a number"));
        }
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| err("malformed number"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            _ => return Err(err("unknown unit (use ns, us, ms, s, m, h or d)")),
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    if !total.is_finite() {
        return Err(err("too large"));
    }
    Duration::try_from_secs_f64(total).map_err(|_| err("too large"))
}

/// Error returned by [`parse_size`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid size {input:?}: {reason} (use a byte count or a number with B, KB, KiB, MB, MiB, GB, GiB, TB or TiB)"
)]
pub struct SizeError {
    /// The text that failed to parse.
    pub input: String,
    /// Why it failed.
    pub reason: &'static str,
}

/// Parses a size in bytes: a plain count (`52428800`) or a number with a
/// unit, decimal (`KB`, `MB`, `GB`, `TB`) or binary (`KiB`, `MiB`, `GiB`,
/// `TiB`); case and a space before the unit do not matter.
///
/// ```
/// use osapi_api::format::parse_size;
/// assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
/// assert_eq!(parse_size("1 GB").unwrap(), 1_000_000_000);
/// assert_eq!(parse_size("4096").unwrap(), 4096);
/// assert!(parse_size("lots").is_err());
/// ```
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let err = |reason| SizeError {
        input: input.to_string(),
        reason,
    };
    let s = input.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    if number.is_empty() {
        return Err(err("expected a number"));
    }
    let value: f64 = number.parse().map_err(|_| err("malformed number"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "kib" => 1024.0,
        "mb" | "m" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "gb" | "g" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tb" | "t" => 1e12,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(err("unknown unit")),
    };
    let bytes = value * factor;
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(err("too large"));
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("1.5KiB").unwrap(), 1536);
        assert_eq!(parse_size("50 mib").unwrap(), 50 << 20);
        assert_eq!(parse_size("0").unwrap(), 0);
        assert!(parse_size("-1MiB").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn go_durations_match_go() {
        assert_eq!(go_duration(Duration::from_nanos(95_000)), "95µs");
        assert_eq!(go_duration(Duration::from_nanos(1_500)), "1.5µs");
        assert_eq!(
            go_duration(Duration::from_nanos(507_812_345)),
            "507.812345ms"
        );
        assert_eq!(go_duration(Duration::from_millis(1036)), "1.036s");
        assert_eq!(go_duration(Duration::from_millis(62_500)), "1m2.5s");
        assert_eq!(go_duration(Duration::from_secs(7200)), "2h0m0s");
        assert_eq!(go_duration(Duration::from_secs(45)), "45s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration(Duration::from_secs(3605)), "1h0m5s");
        assert_eq!(go_duration(Duration::from_nanos(12)), "12ns");
    }

    #[test]
    fn human_uptime_pluralises() {
        assert_eq!(human_uptime(0), "0 days, 0 hours, 0 minutes");
        assert_eq!(
            human_uptime(86_400 + 3600 + 120),
            "1 day, 1 hour, 2 minutes"
        );
        assert_eq!(human_uptime(4 * 3600 + 60), "0 days, 4 hours, 1 minute");
    }

    #[test]
    fn parse_rejects_garbage() {
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("-5s").is_err());
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1m0s").unwrap(), Duration::from_secs(60));
        // Huge values are errors, never panics.
        for huge in [
            "1e300",
            "18446744073709551616s",
            "1e300h",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(huge).is_err(), "{huge}");
        }
    }

    #[test]
    fn rfc3339_has_zulu() {
        let t = time::macros::datetime!(2026-03-06 18:00:01.5 UTC);
        assert_eq!(rfc3339(t), "2026-03-06T18:00:01.5Z");
        assert_eq!(rfc3339_seconds(t), "2026-03-06T18:00:01Z");
    }
}
