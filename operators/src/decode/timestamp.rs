//! Timestamp parsing without a date library: ISO-8601 / RFC 3339, epoch numbers,
//! the Apache `[10/Oct/2000:13:55:36 -0700]` form and year-less syslog/klog/logcat
//! stamps. All results are UTC milliseconds since the epoch.

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Year of a UTC millisecond timestamp.
pub fn year_of(ms: i64) -> i64 {
    // civil_from_days, year only.
    let z = ms.div_euclid(MS_PER_DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(m <= 2)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Reads exactly `n` ASCII digits at `*i`.
#[inline]
fn digits(b: &[u8], i: &mut usize, n: usize) -> Option<u32> {
    let s = b.get(*i..*i + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    *i += n;
    Some(v)
}

#[inline]
fn expect(b: &[u8], i: &mut usize, c: u8) -> Option<()> {
    (b.get(*i) == Some(&c)).then(|| *i += 1)
}

fn to_ms(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32, ms: u32) -> Option<i64> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60
    {
        return None;
    }
    let secs = (h * 3600 + mi * 60 + s.min(59)) as i64;
    Some(days_from_civil(y, mo, d) * MS_PER_DAY + secs * 1000 + ms as i64)
}

/// Fraction after `.` or `,`: any number of digits, truncated to milliseconds.
fn fraction(b: &[u8], i: &mut usize) -> u32 {
    if !matches!(b.get(*i), Some(b'.' | b',')) || !b.get(*i + 1).is_some_and(u8::is_ascii_digit) {
        return 0;
    }
    *i += 1;
    let (mut ms, mut n) = (0u32, 0);
    while let Some(c) = b.get(*i).filter(|c| c.is_ascii_digit()) {
        if n < 3 {
            ms = ms * 10 + (c - b'0') as u32;
        }
        n += 1;
        *i += 1;
    }
    for _ in n..3 {
        ms *= 10;
    }
    ms
}

/// Zone designator: `Z`, `+HH:MM`, `+HHMM`, `+HH`; none means UTC. Returns the
/// offset in minutes.
fn zone(b: &[u8], i: &mut usize) -> Option<i64> {
    match b.get(*i) {
        Some(b'Z' | b'z') => {
            *i += 1;
            Some(0)
        }
        Some(&c @ (b'+' | b'-')) => {
            *i += 1;
            let h = digits(b, i, 2)? as i64;
            if b.get(*i) == Some(&b':') {
                *i += 1;
            }
            let m = if b.get(*i).is_some_and(u8::is_ascii_digit) {
                digits(b, i, 2)? as i64
            } else {
                0
            };
            let off = h * 60 + m;
            Some(if c == b'-' { -off } else { off })
        }
        _ => Some(0),
    }
}

/// Parses an ISO-8601 / RFC 3339 timestamp at the start of `b`, returning the
/// UTC milliseconds and the number of bytes used.
///
/// Accepts `YYYY-MM-DD`, then optionally `T`, `t` or a space and `HH:MM[:SS]`,
/// a fraction after `.` or `,` (log4j), and a zone (`Z`, `±HH:MM`, `±HHMM`,
/// `±HH`, or none = UTC).
pub fn parse_iso8601_prefix(b: &[u8]) -> Option<(i64, usize)> {
    let mut i = 0;
    let y = digits(b, &mut i, 4)? as i64;
    expect(b, &mut i, b'-')?;
    let mo = digits(b, &mut i, 2)?;
    expect(b, &mut i, b'-')?;
    let d = digits(b, &mut i, 2)?;
    let date_end = i;
    let time = (|| {
        let mut j = i;
        if !matches!(b.get(j), Some(b'T' | b't' | b' ')) {
            return None;
        }
        j += 1;
        let h = digits(b, &mut j, 2)?;
        expect(b, &mut j, b':')?;
        let mi = digits(b, &mut j, 2)?;
        let s = if b.get(j) == Some(&b':') {
            j += 1;
            digits(b, &mut j, 2)?
        } else {
            0
        };
        let ms = fraction(b, &mut j);
        let off = zone(b, &mut j)?;
        Some((h, mi, s, ms, off, j))
    })();
    match time {
        Some((h, mi, s, ms, off, j)) => Some((to_ms(y, mo, d, h, mi, s, ms)? - off * 60_000, j)),
        None => Some((to_ms(y, mo, d, 0, 0, 0, 0)?, date_end)),
    }
}

/// Parses a whole string as ISO-8601 (see [`parse_iso8601_prefix`]).
///
/// ```
/// use spate_operators::decode::parse_iso8601;
/// assert_eq!(parse_iso8601("1970-01-02T00:00:00.250Z"), Some(86_400_250));
/// assert_eq!(parse_iso8601("1970-01-01T01:00:00+01:00"), Some(0));
/// assert_eq!(parse_iso8601("yesterday"), None);
/// ```
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let s = s.trim();
    match parse_iso8601_prefix(s.as_bytes()) {
        Some((ms, n)) if n == s.len() => Some(ms),
        _ => None,
    }
}

/// An epoch number in seconds, milliseconds, microseconds or nanoseconds (chosen
/// by magnitude) to milliseconds. Non-positive or non-finite values give `None`.
pub fn epoch_to_ms(v: f64) -> Option<i64> {
    if !v.is_finite() || v <= 0.0 {
        return None;
    }
    let ms = if v < 1e11 {
        v * 1e3
    } else if v < 1e14 {
        v
    } else if v < 1e17 {
        v / 1e3
    } else {
        v / 1e6
    };
    Some(ms as i64)
}

/// A timestamp field value given as text: ISO-8601 or an epoch number.
pub fn parse_ts_text(s: &str) -> Option<i64> {
    let t = s.trim();
    if t.len() >= 10 && t.as_bytes()[4] == b'-' {
        return parse_iso8601(t);
    }
    if !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        return epoch_to_ms(t.parse().ok()?);
    }
    None
}

/// Month from an English three-letter abbreviation (case-sensitive first letter
/// not required).
pub fn month_abbrev(b: &[u8]) -> Option<u32> {
    let m = [b.first()?.to_ascii_lowercase(), *b.get(1)?, *b.get(2)?];
    let months: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let m = [m[0], m[1].to_ascii_lowercase(), m[2].to_ascii_lowercase()];
    months.iter().position(|x| **x == m).map(|p| p as u32 + 1)
}

/// Apache/nginx `%t` content: `10/Oct/2000:13:55:36 -0700`.
pub fn parse_clf(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let mut i = 0;
    let d = digits(b, &mut i, 2)?;
    expect(b, &mut i, b'/')?;
    let mo = month_abbrev(b.get(i..i + 3)?)?;
    i += 3;
    expect(b, &mut i, b'/')?;
    let y = digits(b, &mut i, 4)? as i64;
    expect(b, &mut i, b':')?;
    let h = digits(b, &mut i, 2)?;
    expect(b, &mut i, b':')?;
    let mi = digits(b, &mut i, 2)?;
    expect(b, &mut i, b':')?;
    let sec = digits(b, &mut i, 2)?;
    let ms = fraction(b, &mut i);
    let off = if b.get(i) == Some(&b' ') {
        i += 1;
        zone(b, &mut i)?
    } else {
        0
    };
    Some(to_ms(y, mo, d, h, mi, sec, ms)? - off * 60_000)
}

/// A stamp without a year (syslog `Oct 11 22:14:15`, klog, logcat), read as UTC
/// in the year of `ingest_ms`, or the year before when that would put it more
/// than a day in the future (a December line read in January).
pub fn with_inferred_year(
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    ms: u32,
    ingest_ms: i64,
) -> Option<i64> {
    let y = year_of(ingest_ms);
    let t = to_ms(y, mo, d, h, mi, s, ms).or_else(|| to_ms(y - 1, mo, d, h, mi, s, ms))?;
    if t > ingest_ms + MS_PER_DAY {
        to_ms(y - 1, mo, d, h, mi, s, ms)
    } else {
        Some(t)
    }
}

/// `HH:MM:SS[.frac]` at the start of `b`: `(h, m, s, ms, bytes used)`.
pub fn parse_hms(b: &[u8]) -> Option<(u32, u32, u32, u32, usize)> {
    let mut i = 0;
    let h = digits(b, &mut i, 2)?;
    expect(b, &mut i, b':')?;
    let m = digits(b, &mut i, 2)?;
    expect(b, &mut i, b':')?;
    let s = digits(b, &mut i, 2)?;
    let ms = fraction(b, &mut i);
    Some((h, m, s, ms, i))
}

/// RFC 3164 stamp `Mmm dd HH:MM:SS` (day may be space-padded) at the start of
/// `b`: `(ms, bytes used)`.
pub fn parse_rfc3164_prefix(b: &[u8], ingest_ms: i64) -> Option<(i64, usize)> {
    let mo = month_abbrev(b.get(..3)?)?;
    let mut i = 3;
    expect(b, &mut i, b' ')?;
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let d = if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        digits(b, &mut i, 2)?
    } else {
        digits(b, &mut i, 1)?
    };
    expect(b, &mut i, b' ')?;
    let (h, mi, s, ms, n) = parse_hms(&b[i..])?;
    Some((with_inferred_year(mo, d, h, mi, s, ms, ingest_ms)?, i + n))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T2024: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 1, 1) * MS_PER_DAY, T2024);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(year_of(T2024), 2024);
        assert_eq!(year_of(T2024 - 1), 2023);
        assert_eq!(year_of(0), 1970);
    }

    #[test]
    fn iso8601_forms() {
        assert_eq!(parse_iso8601("2024-01-01T00:00:00Z"), Some(T2024));
        assert_eq!(parse_iso8601("2024-01-01T00:00:00.123Z"), Some(T2024 + 123));
        assert_eq!(
            parse_iso8601("2024-01-01T00:00:00.123456789Z"),
            Some(T2024 + 123)
        );
        assert_eq!(parse_iso8601("2024-01-01T00:00:00.5Z"), Some(T2024 + 500));
        assert_eq!(parse_iso8601("2024-01-01 00:00:00,978"), Some(T2024 + 978));
        assert_eq!(parse_iso8601("2024-01-01T02:00:00+02:00"), Some(T2024));
        assert_eq!(parse_iso8601("2023-12-31T19:00:00-0500"), Some(T2024));
        assert_eq!(parse_iso8601("2024-01-01T01:00:00+01"), Some(T2024));
        assert_eq!(parse_iso8601("2024-01-01T00:00"), Some(T2024));
        assert_eq!(parse_iso8601("2024-01-01"), Some(T2024));
        assert_eq!(
            parse_iso8601("2024-02-29T00:00:00Z"),
            Some(T2024 + 59 * MS_PER_DAY)
        );
    }

    #[test]
    fn iso8601_rejects_garbage() {
        for s in [
            "",
            "2024",
            "2024-13-01",
            "2023-02-29",
            "2024-01-32",
            "2024-01-01T25:00:00Z",
            "2024-01-01T00:00:00Zjunk",
            "2024/01/01",
            "２０２４-01-01",
        ] {
            assert_eq!(parse_iso8601(s), None, "{s}");
        }
    }

    #[test]
    fn prefix_reports_length() {
        let s = b"2015-10-18 18:01:47,978 INFO [main] x";
        let (ms, n) = parse_iso8601_prefix(s).unwrap();
        assert_eq!(n, 23);
        assert_eq!(ms, 1_445_191_307_978);
    }

    #[test]
    fn epoch_numbers() {
        assert_eq!(epoch_to_ms(1_700_000_000.0), Some(1_700_000_000_000));
        assert_eq!(epoch_to_ms(1_700_000_000.5), Some(1_700_000_000_500));
        assert_eq!(epoch_to_ms(1_700_000_000_123.0), Some(1_700_000_000_123));
        assert_eq!(
            epoch_to_ms(1_700_000_000_123_456.0),
            Some(1_700_000_000_123)
        );
        assert_eq!(epoch_to_ms(1.7e18), Some(1_700_000_000_000));
        assert_eq!(epoch_to_ms(0.0), None);
        assert_eq!(epoch_to_ms(-5.0), None);
        assert_eq!(epoch_to_ms(f64::NAN), None);
        assert_eq!(parse_ts_text("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_ts_text("2024-01-01T00:00:00Z"), Some(T2024));
        assert_eq!(parse_ts_text("soon"), None);
    }

    #[test]
    fn clf_timestamps() {
        assert_eq!(
            parse_clf("10/Oct/2000:13:55:36 -0700"),
            Some(971_211_336_000)
        );
        assert_eq!(parse_clf("01/Jan/2024:00:00:00 +0000"), Some(T2024));
        assert_eq!(parse_clf("01/Foo/2024:00:00:00 +0000"), None);
        assert_eq!(parse_clf("1/Jan/2024:00:00:00 +0000"), None);
    }

    #[test]
    fn yearless_stamps() {
        let ingest = T2024 + 10 * MS_PER_DAY; // 2024-01-11
        let (ms, n) = parse_rfc3164_prefix(b"Jan  5 00:00:01 host", ingest).unwrap();
        assert_eq!(ms, T2024 + 4 * MS_PER_DAY + 1000);
        assert_eq!(n, 15);
        // December seen in January belongs to the previous year.
        let (ms, _) = parse_rfc3164_prefix(b"Dec 31 23:00:00 h", ingest).unwrap();
        assert_eq!(ms, T2024 - 3_600_000);
        assert_eq!(parse_rfc3164_prefix(b"Foo 31 23:00:00 h", ingest), None);
    }
}
