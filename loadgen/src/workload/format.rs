//! Byte-level formatting for the generators: integers, hex ids, timestamps and JSON string
//! escaping. Everything appends to a caller-owned `Vec<u8>`, so the per-event path allocates
//! nothing once the buffers have grown.

/// Event time of the first generated event: 2026-11-23T10:00:00.000Z, in Unix milliseconds.
/// Fixed so that output never depends on the wall clock.
pub(crate) const START_MS: u64 = 1_795_428_000_000;

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `n` in decimal.
pub(crate) fn push_u64(buf: &mut Vec<u8>, n: u64) {
    let mut tmp = [0u8; 20];
    let digits = write_digits(&mut tmp, n);
    buf.extend_from_slice(&tmp[tmp.len() - digits..]);
}

/// Appends `n` in decimal, left-padded with zeros to at least `width` digits.
pub(crate) fn push_padded(buf: &mut Vec<u8>, n: u64, width: usize) {
    let mut tmp = [0u8; 20];
    let digits = write_digits(&mut tmp, n);
    for _ in digits..width {
        buf.push(b'0');
    }
    buf.extend_from_slice(&tmp[tmp.len() - digits..]);
}

fn write_digits(tmp: &mut [u8; 20], mut n: u64) -> usize {
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return tmp.len() - i;
        }
    }
}

/// Appends the low `digits * 4` bits of `v` as lowercase hex (`digits` ≤ 16).
pub(crate) fn push_hex(buf: &mut Vec<u8>, v: u64, digits: u32) {
    debug_assert!(digits <= 16);
    for shift in (0..digits).rev() {
        buf.push(HEX[((v >> (shift * 4)) & 0xf) as usize]);
    }
}

/// A UTC calendar time broken down from Unix milliseconds.
struct Civil {
    year: u64,
    month: u64,
    day: u64,
    hour: u64,
    minute: u64,
    second: u64,
    milli: u64,
}

/// Howard Hinnant's `civil_from_days`, for dates after 1970 only (all the generators need).
fn civil(ms: u64) -> Civil {
    let secs = ms / 1000;
    let sod = secs % 86_400;
    let z = secs / 86_400 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: sod / 3600,
        minute: sod % 3600 / 60,
        second: sod % 60,
        milli: ms % 1000,
    }
}

/// Appends an ISO-8601 UTC timestamp with milliseconds: `2026-11-23T10:00:00.123Z`.
pub(crate) fn push_iso8601(buf: &mut Vec<u8>, ms: u64) {
    let c = civil(ms);
    push_padded(buf, c.year, 4);
    buf.push(b'-');
    push_padded(buf, c.month, 2);
    buf.push(b'-');
    push_padded(buf, c.day, 2);
    buf.push(b'T');
    push_padded(buf, c.hour, 2);
    buf.push(b':');
    push_padded(buf, c.minute, 2);
    buf.push(b':');
    push_padded(buf, c.second, 2);
    buf.push(b'.');
    push_padded(buf, c.milli, 3);
    buf.push(b'Z');
}

/// Appends a Common Log Format timestamp without brackets: `23/Nov/2026:10:00:00 +0000`.
pub(crate) fn push_clf_time(buf: &mut Vec<u8>, ms: u64) {
    let c = civil(ms);
    push_padded(buf, c.day, 2);
    buf.push(b'/');
    buf.extend_from_slice(MONTHS[(c.month - 1) as usize]);
    buf.push(b'/');
    push_padded(buf, c.year, 4);
    buf.push(b':');
    push_padded(buf, c.hour, 2);
    buf.push(b':');
    push_padded(buf, c.minute, 2);
    buf.push(b':');
    push_padded(buf, c.second, 2);
    buf.extend_from_slice(b" +0000");
}

/// Appends `s` escaped as the inside of a JSON string (no surrounding quotes).
pub(crate) fn push_json_escaped(buf: &mut Vec<u8>, s: &[u8]) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&s[start..i]);
        if escape.is_empty() {
            buf.extend_from_slice(b"\\u00");
            push_hex(buf, u64::from(b), 2);
        } else {
            buf.extend_from_slice(escape);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&s[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut buf = Vec::new();
        f(&mut buf);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn integers_and_hex() {
        assert_eq!(text(|b| push_u64(b, 0)), "0");
        assert_eq!(text(|b| push_u64(b, u64::MAX)), u64::MAX.to_string());
        assert_eq!(text(|b| push_padded(b, 7, 3)), "007");
        assert_eq!(text(|b| push_padded(b, 12345, 3)), "12345");
        assert_eq!(text(|b| push_hex(b, 0xdead_beef, 8)), "deadbeef");
        assert_eq!(text(|b| push_hex(b, 0xab, 4)), "00ab");
    }

    #[test]
    fn start_is_the_documented_instant() {
        assert_eq!(
            text(|b| push_iso8601(b, START_MS)),
            "2026-11-23T10:00:00.000Z"
        );
        assert_eq!(
            text(|b| push_clf_time(b, START_MS)),
            "23/Nov/2026:10:00:00 +0000"
        );
    }

    #[test]
    fn timestamps_cross_day_month_year_and_leap_day() {
        // 2026-12-31T23:59:59.999Z and one millisecond later.
        let ms = 1_798_761_599_999;
        assert_eq!(text(|b| push_iso8601(b, ms)), "2026-12-31T23:59:59.999Z");
        assert_eq!(
            text(|b| push_iso8601(b, ms + 1)),
            "2027-01-01T00:00:00.000Z"
        );
        // 2028-02-29T12:34:56.789Z.
        let leap = 1_835_440_496_789;
        assert_eq!(text(|b| push_iso8601(b, leap)), "2028-02-29T12:34:56.789Z");
        assert_eq!(
            text(|b| push_clf_time(b, leap)),
            "29/Feb/2028:12:34:56 +0000"
        );
        assert_eq!(text(|b| push_iso8601(b, 0)), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn json_escaping_round_trips() {
        let raw = "a \"quoted\" \\ path\nnew\tline \u{1} é";
        let escaped = text(|b| push_json_escaped(b, raw.as_bytes()));
        let back: String = serde_json::from_str(&format!("\"{escaped}\"")).unwrap();
        assert_eq!(back, raw);
        assert_eq!(text(|b| push_json_escaped(b, b"plain")), "plain");
    }
}
