//! Event times: microseconds since the Unix epoch, shown as RFC 3339.

use time::{format_description::well_known::Rfc3339, Date, OffsetDateTime};

/// Now, in microseconds since the epoch.
pub fn now_us() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as i64
}

/// RFC 3339 (UTC) of a microsecond timestamp.
pub fn format_us(us: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| us.to_string())
}

/// Parses a query bound: RFC 3339 (`2026-11-21T09:30:00Z`) or a date
/// (`2026-11-21`, meaning its midnight UTC).
pub fn parse_bound(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000) as i64);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s, &fmt)
        .map(|d| d.midnight().assume_utc().unix_timestamp() * 1_000_000)
        .map_err(|_| {
            format!("{s:?} is neither RFC 3339 (2026-11-21T09:30:00Z) nor a date (2026-11-21)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_round_trip() {
        let t = parse_bound("2026-11-21T09:30:00.5Z").unwrap();
        assert_eq!(format_us(t), "2026-11-21T09:30:00.5Z");
        assert_eq!(
            parse_bound("2026-11-21").unwrap(),
            parse_bound("2026-11-21T00:00:00Z").unwrap()
        );
        assert!(parse_bound("yesterday").is_err());
    }
}
