//! Apache/nginx common and combined access log lines:
//! `%h %l %u [%t] "%r" %>s %b ["%{Referer}i" "%{User-agent}i"] [extra fields]`.

use super::json::write_json_str;
use super::timestamp::parse_clf;

/// The fields of one access log line, borrowed from it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccessLine<'a> {
    /// `%h`, the client address.
    pub client_ip: &'a str,
    /// `%u`, the authenticated user (`None` for `-`).
    pub user: Option<&'a str>,
    /// `%t` in UTC ms, `None` if unparseable.
    pub ts: Option<i64>,
    /// Request method, when the request line has three parts.
    pub method: Option<&'a str>,
    /// Request path.
    pub path: Option<&'a str>,
    /// Protocol (`HTTP/1.1`).
    pub protocol: Option<&'a str>,
    /// The whole request line when it is not `METHOD PATH PROTO`.
    pub request: Option<&'a str>,
    /// `%>s`.
    pub status: u16,
    /// `%b` (`None` for `-`).
    pub bytes: Option<u64>,
    /// Referrer (`None` for `-` or absent).
    pub referrer: Option<&'a str>,
    /// User agent (`None` for `-` or absent).
    pub user_agent: Option<&'a str>,
}

fn token(s: &str) -> Option<(&str, &str)> {
    let end = s.find(' ')?;
    Some((&s[..end], &s[end + 1..]))
}

/// Content of a `"..."` field at the start of `s` (backslash escapes skipped
/// over, not decoded) and the rest after the closing quote.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some((&s[1..i], &s[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

fn dash(s: &str) -> Option<&str> {
    (s != "-" && !s.is_empty()).then_some(s)
}

/// Parses a common/combined access log line; `None` when it is not one.
pub fn parse_access(line: &str) -> Option<AccessLine<'_>> {
    let (client_ip, rest) = token(line)?;
    if client_ip.is_empty() || client_ip.starts_with('[') {
        return None;
    }
    let (_ident, rest) = token(rest)?;
    let (user, rest) = token(rest)?;
    let rest = rest.strip_prefix('[')?;
    let close = rest.find(']')?;
    let ts = parse_clf(&rest[..close]);
    let rest = rest[close + 1..].strip_prefix(' ')?;
    let (request, rest) = quoted(rest)?;
    let rest = rest.strip_prefix(' ')?;
    let (status_s, rest) = match rest.find(' ') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    if status_s.len() != 3 || !status_s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let status: u16 = status_s.parse().ok()?;
    let (bytes_s, rest) = match rest.find(' ') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let bytes = if bytes_s == "-" {
        None
    } else {
        Some(bytes_s.parse::<u64>().ok()?)
    };
    let (referrer, rest) = quoted(rest).unwrap_or(("", ""));
    let user_agent = rest.strip_prefix(' ').and_then(quoted).map_or("", |q| q.0);
    let mut parts = request.split(' ');
    let (method, path, protocol, whole) =
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(m), Some(p), Some(v), None) if !m.is_empty() && !p.is_empty() => {
                (Some(m), Some(p), Some(v), None)
            }
            _ => (None, None, None, dash(request)),
        };
    Some(AccessLine {
        client_ip,
        user: dash(user),
        ts,
        method,
        path,
        protocol,
        request: whole,
        status,
        bytes,
        referrer: dash(referrer),
        user_agent: dash(user_agent),
    })
}

/// Writes the non-extracted fields as a compact JSON object into `out`
/// (cleared first; left empty when there is nothing to write).
pub fn write_access_attrs(a: &AccessLine<'_>, out: &mut String) {
    out.clear();
    let fields = [
        ("method", a.method),
        ("path", a.path),
        ("protocol", a.protocol),
        ("request", a.request),
        ("user", a.user),
        ("referrer", a.referrer),
        ("user_agent", a.user_agent),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            out.push(if out.is_empty() { '{' } else { ',' });
            write_json_str(out, k);
            out.push(':');
            write_json_str(out, v);
        }
    }
    if let Some(b) = a.bytes {
        out.push_str(if out.is_empty() { "{" } else { "," });
        out.push_str("\"bytes\":");
        out.push_str(itoa_u64(b, &mut [0u8; 20]));
    }
    if !out.is_empty() {
        out.push('}');
    }
}

/// Formats `v` into `buf` without allocating.
pub fn itoa_u64(mut v: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMBINED: &str = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#;

    #[test]
    fn combined_line() {
        let a = parse_access(COMBINED).unwrap();
        assert_eq!(a.client_ip, "127.0.0.1");
        assert_eq!(a.user, Some("frank"));
        assert_eq!(a.ts, Some(971_211_336_000));
        assert_eq!(a.method, Some("GET"));
        assert_eq!(a.path, Some("/apache_pb.gif"));
        assert_eq!(a.protocol, Some("HTTP/1.0"));
        assert_eq!(a.status, 200);
        assert_eq!(a.bytes, Some(2326));
        assert_eq!(a.referrer, Some("http://www.example.com/start.html"));
        assert_eq!(a.user_agent, Some("Mozilla/4.08 [en] (Win98; I ;Nav)"));
        let mut s = String::new();
        write_access_attrs(&a, &mut s);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/apache_pb.gif");
        assert_eq!(v["bytes"], 2326);
        assert_eq!(v["user_agent"], "Mozilla/4.08 [en] (Win98; I ;Nav)");
        assert_eq!(v["user"], "frank");
    }

    #[test]
    fn common_and_nginx_variants() {
        let a = parse_access(
            r#"10.0.0.5 - - [01/Jan/2024:00:00:00 +0000] "POST /login HTTP/1.1" 401 -"#,
        )
        .unwrap();
        assert_eq!(
            (a.status, a.bytes, a.user, a.referrer),
            (401, None, None, None)
        );
        assert_eq!(a.path, Some("/login"));
        // nginx with an escaped quote in the UA and an extra trailing field.
        let a = parse_access(
            r#"::1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/2.0" 503 12 "-" "curl \"x\"" "rt=0.01""#,
        )
        .unwrap();
        assert_eq!(a.client_ip, "::1");
        assert_eq!(a.status, 503);
        assert_eq!(a.referrer, None);
        assert_eq!(a.user_agent, Some(r#"curl \"x\""#));
        // A junk request line is kept whole.
        let a =
            parse_access(r#"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "\x16\x03" 400 0 "-" "-""#)
                .unwrap();
        assert_eq!(a.method, None);
        assert_eq!(a.request, Some(r#"\x16\x03"#));
        let mut s = String::new();
        write_access_attrs(&a, &mut s);
        assert_eq!(s, r#"{"request":"\\x16\\x03","bytes":0}"#);
    }

    #[test]
    fn bad_timestamp_still_parses_without_ts() {
        let a = parse_access(r#"1.2.3.4 - - [yesterday] "GET / HTTP/1.1" 200 1"#).unwrap();
        assert_eq!(a.ts, None);
        assert_eq!(a.status, 200);
    }

    #[test]
    fn not_access_lines() {
        for l in [
            "plain text line",
            "[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] denied",
            r#"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" abc 1"#,
            r#"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 x12"#,
            r#"1.2.3.4 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1"#,
            "",
        ] {
            assert_eq!(parse_access(l), None, "{l}");
        }
    }

    #[test]
    fn itoa() {
        assert_eq!(itoa_u64(0, &mut [0; 20]), "0");
        assert_eq!(itoa_u64(u64::MAX, &mut [0; 20]), "18446744073709551615");
    }
}
