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

/// `s` without leading and trailing whitespace; at once when it starts and ends with a visible
/// ASCII character, as most logged values do (`str::trim` looks at the characters at both
/// ends on every call: four times per row).
pub fn trim(s: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|b| (b'!'..=b'~').contains(b));
    match visible(s.as_bytes().first()) && visible(s.as_bytes().last()) {
        true => s,
        false => s.trim(),
    }
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
    let s = trim(s);
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
    if let Some(t) = rfc3339_plain(s.as_bytes()) {
        return Some(t);
    }
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

/// The common form of RFC 3339 that logs write, `2026-01-05T09:00:22.448Z` (a fraction of up
/// to nine digits, `Z` or an offset `±HH:MM`), as microseconds, computed directly: chrono's
/// parser took a twentieth of the load at 10M calls. `None` for anything else (an invalid date
/// too), which the general parsers then read.
fn rfc3339_plain(b: &[u8]) -> Option<i64> {
    fn digits(b: &[u8]) -> Option<i64> {
        b.iter().try_fold(0i64, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    }
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if year < 1000 || day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|d| d.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        // Truncated to microseconds, as chrono's `timestamp_micros` does.
        let kept = &fraction[..n.min(6)];
        micros = digits(kept)? * 10i64.pow(6 - kept.len() as u32);
        rest = &fraction[n..];
    }
    let offset = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let (era, yoe) = (y.div_euclid(400), y.rem_euclid(400));
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset * 60;
    Some(seconds * 1_000_000 + micros)
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
    let s = trim(s);
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
    let s = trim(s);
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
    use proptest::prelude::*;

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

    /// What chrono makes of an RFC 3339 text.
    fn chrono_micros(s: &str) -> Option<i64> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_micros())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The direct reading of the common form agrees with chrono wherever it reads a text,
        /// and reads every valid one of that form.
        #[test]
        fn plain_rfc3339_is_chrono(
            date in (1000i64..10000, 0i64..14, 0i64..33),
            time in (0i64..25, 0i64..61, 0i64..61),
            fraction in proptest::option::of("[0-9]{1,10}"),
            zone in prop_oneof![
                Just("Z".to_string()),
                Just("z".to_string()),
                (any::<bool>(), 0i64..25, 0i64..61).prop_map(|(plus, h, m)| {
                    format!("{}{h:02}:{m:02}", if plus { '+' } else { '-' })
                }),
            ],
        ) {
            let ((y, mo, d), (h, mi, sec)) = (date, time);
            let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
            let s = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}{fraction}{zone}");
            let ours = rfc3339_plain(s.as_bytes());
            if ours.is_some() || fraction.len() <= 10 && sec < 60 {
                prop_assert_eq!(ours, chrono_micros(&s), "{}", s);
            }
        }
    }

    #[test]
    fn trim_is_str_trim() {
        for s in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\ta\n",
            "a b",
            "\u{a0}a",
            "a\u{3000}",
            "é",
            "\x7f",
        ] {
            assert_eq!(trim(s), s.trim(), "{s:?}");
        }
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
