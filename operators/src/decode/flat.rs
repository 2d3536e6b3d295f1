//! Fast path for the common shape of a JSON log line, in one pass and without
//! copying the line.
//!
//! [`scan`] accepts only a subset of JSON whose compact re-serialisation (what
//! `attrs` holds) is the input text itself: strings without escapes or control
//! bytes, integers of at most 18 digits without leading zeros (`-0` excluded),
//! `true`/`false`/`null`, and nested objects and arrays written without
//! whitespace. Whitespace between the members of the top-level object is fine.
//! Anything else (floats, escapes, deep nesting, syntax errors, trailing bytes)
//! gives `None` and the line goes to simd-json, so errors and every unusual
//! case keep simd-json's behaviour. The members then go through the same
//! [`extract_members`](super::json::extract_members) as the tape.

use super::json::{JsonValue, Kind};
use super::special_bytes::find_special;

/// Deepest nesting the fast path handles (the top-level object is depth 1).
const MAX_DEPTH: usize = 16;

/// A value kind, with integers already parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RawKind {
    Str,
    Int(i64),
    /// `true`, `false`, `null`, an array.
    Other,
    /// An object with this many members.
    Object(u32),
}

/// A top-level member: byte ranges of the key (without quotes) and the value.
#[derive(Debug, Clone, Copy)]
pub(super) struct Member {
    key: (u32, u32),
    value: (u32, u32),
    kind: RawKind,
    /// `"key":value` is written without whitespace.
    compact: bool,
}

/// A validated value: its exact text in the line.
#[derive(Debug, Clone, Copy)]
pub(super) struct Raw<'a> {
    text: &'a str,
    kind: RawKind,
    /// The whole compact `"key":value` text of a top-level member.
    member: Option<&'a str>,
}

impl<'a> JsonValue<'a> for Raw<'a> {
    #[inline]
    fn kind(self) -> Kind<'a> {
        match self.kind {
            RawKind::Str => Kind::Str(&self.text[1..self.text.len() - 1]),
            RawKind::Int(n) => Kind::I64(n),
            RawKind::Other => Kind::Other,
            RawKind::Object(n) => Kind::Object(n as usize),
        }
    }

    fn members(self) -> impl Iterator<Item = (&'a str, Self)> {
        let mut sc = Scanner {
            b: self.text.as_bytes(),
            i: 1,
        };
        let n = match self.kind {
            RawKind::Object(n) => n,
            _ => 0,
        };
        // The text was validated by `scan`, so re-reading it cannot fail.
        (0..n).map_while(move |_| {
            let k = sc.string()?;
            sc.i += 1; // ':'
            let v0 = sc.i;
            let kind = sc.value(2)?;
            let v1 = sc.i;
            sc.i += 1; // ',' or '}'
            Some((
                &self.text[k.0 + 1..k.1 - 1],
                Raw {
                    text: &self.text[v0..v1],
                    kind,
                    member: None,
                },
            ))
        })
    }

    #[inline]
    fn write(self, out: &mut String) {
        out.push_str(self.text);
    }

    #[inline]
    fn member_text(self) -> Option<&'a str> {
        self.member
    }
}

/// Parses `line` (trimmed, starting with `{`) into `members` when it is in the
/// fast-path subset; `false` means "use simd-json".
pub(super) fn scan(line: &str, members: &mut Vec<Member>) -> bool {
    members.clear();
    let mut sc = Scanner {
        b: line.as_bytes(),
        i: 1,
    };
    sc.ws();
    if sc.peek() == Some(b'}') {
        return sc.i + 1 == sc.b.len();
    }
    loop {
        sc.ws();
        let Some(key) = sc.string() else { return false };
        sc.ws();
        if sc.peek() != Some(b':') {
            return false;
        }
        sc.i += 1;
        sc.ws();
        let v0 = sc.i;
        let Some(kind) = sc.value(2) else {
            return false;
        };
        members.push(Member {
            key: (key.0 as u32 + 1, key.1 as u32 - 1),
            value: (v0 as u32, sc.i as u32),
            kind,
            compact: v0 == key.1 + 1,
        });
        sc.ws();
        match sc.peek() {
            Some(b',') => sc.i += 1,
            Some(b'}') => return sc.i + 1 == sc.b.len(),
            _ => return false,
        }
    }
}

/// The members found by [`scan`], as `(key, value)` over `line`.
pub(super) fn iter<'a>(
    line: &'a str,
    members: &[Member],
) -> impl Iterator<Item = (&'a str, Raw<'a>)> {
    members.iter().map(move |m| {
        let key = &line[m.key.0 as usize..m.key.1 as usize];
        let (v0, v1) = (m.value.0 as usize, m.value.1 as usize);
        let member = m.compact.then(|| &line[m.key.0 as usize - 1..v1]);
        let raw = Raw {
            text: &line[v0..v1],
            kind: m.kind,
            member,
        };
        (key, raw)
    })
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    /// A string without escapes at `i`: its range, quotes included.
    #[inline]
    fn string(&mut self) -> Option<(usize, usize)> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.i;
        let end = find_special(self.b, start + 1)?;
        if self.b[end] != b'"' {
            return None;
        }
        self.i = end + 1;
        Some((start, self.i))
    }

    /// Any value at `i`; containers are nested at `depth` and must be compact.
    fn value(&mut self, depth: usize) -> Option<RawKind> {
        match self.peek()? {
            b'"' => self.string().map(|_| RawKind::Str),
            b'-' | b'0'..=b'9' => self.integer().map(RawKind::Int),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'{' if depth <= MAX_DEPTH => self.object(depth),
            b'[' if depth <= MAX_DEPTH => self.array(depth),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<RawKind> {
        if !self.b[self.i..].starts_with(word) {
            return None;
        }
        self.i += word.len();
        Some(RawKind::Other)
    }

    /// `-?(0|[1-9][0-9]{0,17})` not followed by a fraction or exponent; `-0` is
    /// refused (it would be written back as `0`).
    fn integer(&mut self) -> Option<i64> {
        let neg = self.peek() == Some(b'-');
        let start = self.i + usize::from(neg);
        let mut j = start;
        let mut v: i64 = 0;
        while let Some(&c) = self.b.get(j).filter(|c| c.is_ascii_digit()) {
            // A 19th digit could overflow: refuse before multiplying (the
            // general parser takes such numbers).
            if j - start == 18 {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
            j += 1;
        }
        let digits = j - start;
        if digits == 0
            || (self.b[start] == b'0' && (digits > 1 || neg))
            || matches!(self.b.get(j), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        self.i = j;
        Some(if neg { -v } else { v })
    }

    fn object(&mut self, depth: usize) -> Option<RawKind> {
        self.i += 1;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(RawKind::Object(0));
        }
        let mut n = 0u32;
        loop {
            self.string()?;
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            self.value(depth + 1)?;
            n += 1;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(RawKind::Object(n));
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<RawKind> {
        self.i += 1;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(RawKind::Other);
        }
        loop {
            self.value(depth + 1)?;
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(RawKind::Other);
                }
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset() {
        let mut m = Vec::new();
        for ok in [
            "{}",
            r#"{"a":1}"#,
            r#"{ "a" : "x" , "b": -12, "c":[1,{"d":null}], "e":{} }"#,
            r#"{"a":true,"b":false,"c":0}"#,
            r#"{"a":999999999999999999,"b":-999999999999999999}"#,
        ] {
            assert!(scan(ok, &mut m), "{ok}");
        }
        for bail in [
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":-0}"#,
            r#"{"a":01}"#,
            r#"{"a":"x\"y"}"#,
            r#"{"a":"x	y"}"#,
            r#"{"a":{"b": 1}}"#,
            r#"{"a":1}x"#,
            r#"{"a":1,}"#,
            r#"{"a":1"#,
            r#"{"a"}"#,
            r#"{"a":1234567890123456789}"#,
            // 19 digits beyond i64 (found by fuzzing: overflowed in debug).
            r#"{"a":9999999999999999999}"#,
            r#"{"a":-9223372036854775809}"#,
            r#"{"a":tru}"#,
        ] {
            assert!(!scan(bail, &mut m), "{bail}");
        }
    }

    /// Both paths over one line: `None` when the fast path declines.
    fn both(line: &str) -> Option<(String, String)> {
        use crate::decode::json::{extract, extract_members};
        let mut m = Vec::new();
        if !scan(line, &mut m) {
            return None;
        }
        let mut fast_attrs = String::new();
        let fast = extract_members(iter(line, &m), &mut fast_attrs, true);
        let mut buf = line.as_bytes().to_vec();
        let tape = simd_json::to_tape(&mut buf).expect("fast path accepted invalid json");
        let mut attrs = String::new();
        let slow = extract(&tape.0, &mut attrs, true);
        Some((
            format!("{fast:?} {fast_attrs}"),
            format!("{slow:?} {attrs}"),
        ))
    }

    #[test]
    fn same_result_as_the_tape() {
        let mut lines: Vec<String> = [
            r#"{"ts":"2024-01-01T00:00:00.123Z","level":"Warning","service":"api","host":"h1","msg":"slow","status":503,"client_ip":"10.0.0.1","trace_id":"abc","n":[1,2,{"x":null}],"ok":true}"#,
            r#"{"@timestamp":1700000000,"log":{"level":"err","logger":"x"},"service":{"name":"billing"},"host":{"name":"n1"},"http":{"status":"404","method":"GET"},"message":"m","path":"/login"}"#,
            r#"{"log.level":"notice","levelname":"ERROR","app":"a","hostname":"h","log":"docker line","time":1700000000123}"#,
            r#"{"level":true,"severity":{"x":1},"ts":"soon","status":"abc","msg":42}"#,
            r#"{"level":60,"ts":-5,"status":99}"#,
            r#"{"log":{"level":"info"},"host":{"hostname":"x","name":"y"},"http":{"status_code":500}}"#,
            r#"{ "message": "hi" , "level" :"info", "a": [], "b":{} ,"c" :1}"#,
            r#"{"a": [ 1 ]}"#,
            r#"{"message":"a","message":"b","level":"x","level":"error"}"#,
            r#"{"messageType":"DATA_MESSAGE","logEvents":[]}"#,
            r#"{"message":"logEvents","é":"ü","deep":[[[[{"a":[{}]}]]]]}"#,
            "{}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut w1 = Vec::new();
        spate_loadgen::generate(spate_loadgen::Workload::AppJson, 20_000, 3, &mut w1).unwrap();
        lines.extend(String::from_utf8(w1).unwrap().lines().map(str::to_string));
        let mut accepted = 0;
        for l in &lines {
            if let Some((fast, slow)) = both(l) {
                assert_eq!(fast, slow, "{l}");
                accepted += 1;
            } else {
                println!("declined: {l}");
            }
        }
        assert!(accepted >= lines.len() - 1, "{accepted} of {}", lines.len());
    }
}
