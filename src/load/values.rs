//! Parsing of single values: timestamps and success flags, in every form DESIGN.md accepts.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// A parsed timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// Microseconds since 1970-01-01T00:00:00Z.
    Time(i64),
    /// A plain order key (a step number).
    Order(i64),
}

/// Integers below this are order keys; above it they are epoch seconds (it is 1973-03-03).
const EPOCH_SECONDS_FROM: i64 = 100_000_000;

/// Reads an integer as epoch seconds, milliseconds, microseconds or nanoseconds by its size, or
/// as an order key when it is too small to be a date after 1973.
pub fn int_stamp(v: i64) -> Stamp {
    match v.unsigned_abs() {
        n if n < EPOCH_SECONDS_FROM as u64 => Stamp::Order(v),
        n if n < 100_000_000_000 => Stamp::Time(v.saturating_mul(1_000_000)),
        n if n < 100_000_000_000_000 => Stamp::Time(v.saturating_mul(1_000)),
        n if n < 100_000_000_000_000_000 => Stamp::Time(v),
        _ => Stamp::Time(v / 1_000),
    }
}

/// Reads a float as epoch seconds with a fraction (an order key when small).
pub fn float_stamp(v: f64) -> Option<Stamp> {
    if !v.is_finite() {
        return None;
    }
    if v.abs() < EPOCH_SECONDS_FROM as f64 && v.fract() == 0.0 {
        return Some(Stamp::Order(v as i64));
    }
    let micros = (v * 1e6).round() as i64;
    Some(if v.abs() < EPOCH_SECONDS_FROM as f64 {
        Stamp::Order(micros)
    } else {
        Stamp::Time(micros)
    })
}

/// Parses RFC 3339 / ISO 8601 text (a zone-less time is taken as UTC; `T` or a space between
/// date and time; a bare date is its midnight), or a number as in [`int_stamp`] and
/// [`float_stamp`].
pub fn parse_timestamp(s: &str) -> Option<Stamp> {
    let s = s.trim();
    let first = *s.as_bytes().first()?;
    if !first.is_ascii_digit() && first != b'-' && first != b'+' {
        return None;
    }
    if let Ok(v) = s.parse::<i64>() {
        return Some(int_stamp(v));
    }
    if s.len() >= 10 && s.as_bytes()[4] == b'-' {
        return parse_datetime(s).map(Stamp::Time);
    }
    s.parse::<f64>().ok().and_then(float_stamp)
}

fn parse_datetime(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    const ZONED: [&str; 2] = ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"];
    if let Some(t) = ZONED
        .iter()
        .find_map(|f| DateTime::parse_from_str(s, f).ok())
    {
        return Some(t.timestamp_micros());
    }
    const NAIVE: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ];
    if let Some(t) = NAIVE
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    {
        return Some(t.and_utc().timestamp_micros());
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
}

/// Parses a success flag: true/false, 1/0, yes/no, ok/success/error/failed and their usual
/// spellings, in any case.
pub fn parse_success(s: &str) -> Option<bool> {
    const TRUE: [&str; 10] = [
        "true",
        "1",
        "yes",
        "ok",
        "success",
        "succeeded",
        "successful",
        "passed",
        "t",
        "y",
    ];
    const FALSE: [&str; 10] = [
        "false", "0", "no", "error", "failed", "failure", "fail", "err", "f", "n",
    ];
    let s = s.trim();
    let s = match s {
        "1.0" => "1",
        "0.0" => "0",
        _ => s,
    };
    if TRUE.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        Some(true)
    } else if FALSE.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        Some(false)
    } else {
        None
    }
}

/// Parses a task outcome: a success flag ([`parse_success`]) or a word benchmarks use
/// (`resolved`, `solved`, `pass`, and their opposites) as 1 or 0, else a finite number (a
/// reward).
pub fn parse_outcome(s: &str) -> Option<f64> {
    const SOLVED: [&str; 3] = ["resolved", "solved", "pass"];
    const UNSOLVED: [&str; 3] = ["unresolved", "unsolved", "not resolved"];
    let s = s.trim();
    if let Some(flag) = parse_success(s) {
        return Some(f64::from(u8::from(flag)));
    }
    if SOLVED.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        return Some(1.0);
    }
    if UNSOLVED.iter().any(|w| w.eq_ignore_ascii_case(s)) {
        return Some(0.0);
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_forms_agree() {
        let want = Some(Stamp::Time(1_349_794_217_000_000));
        for s in [
            "2012-10-09T14:50:17Z",
            "2012-10-09T14:50:17.000Z",
            "2012-10-09T16:50:17+02:00",
            "2012-10-09 14:50:17",
            "2012-10-09T14:50:17",
            "2012-10-09 14:50:17+0000",
            " 2012-10-09T14:50:17.000000Z ",
        ] {
            assert_eq!(parse_timestamp(s), want, "{s}");
        }
        assert_eq!(
            parse_timestamp("2012-10-09"),
            Some(Stamp::Time(1_349_740_800_000_000))
        );
        assert_eq!(
            parse_timestamp("2012-10-09T14:50:17.123456Z"),
            Some(Stamp::Time(1_349_794_217_123_456))
        );
    }

    #[test]
    fn numbers_by_size() {
        assert_eq!(parse_timestamp("7"), Some(Stamp::Order(7)));
        assert_eq!(
            parse_timestamp("1349794217"),
            Some(Stamp::Time(1_349_794_217_000_000))
        );
        assert_eq!(
            parse_timestamp("1349794217000"),
            Some(Stamp::Time(1_349_794_217_000_000))
        );
        assert_eq!(
            parse_timestamp("1349794217000000"),
            Some(Stamp::Time(1_349_794_217_000_000))
        );
        assert_eq!(
            parse_timestamp("1349794217000000000"),
            Some(Stamp::Time(1_349_794_217_000_000))
        );
        assert_eq!(
            parse_timestamp("1349794217.5"),
            Some(Stamp::Time(1_349_794_217_500_000))
        );
        assert_eq!(parse_timestamp("2.5"), Some(Stamp::Order(2_500_000)));
    }

    #[test]
    fn garbage_is_rejected() {
        for s in [
            "",
            "yesterday",
            "2012-13-45T00:00:00Z",
            "NaN",
            "12:00",
            "inf",
        ] {
            assert_eq!(parse_timestamp(s), None, "{s}");
        }
    }

    #[test]
    fn success_words() {
        for s in ["true", "1", "YES", "ok", "Success", "1.0"] {
            assert_eq!(parse_success(s), Some(true), "{s}");
        }
        for s in ["false", "0", "no", "error", "FAILED", "0.0"] {
            assert_eq!(parse_success(s), Some(false), "{s}");
        }
        for s in ["", "maybe", "2"] {
            assert_eq!(parse_success(s), None, "{s}");
        }
    }
}
