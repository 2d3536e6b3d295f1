//! Field extraction from a parsed JSON object (simd-json tape), and compact
//! re-serialization of what is left into `attrs`.
//!
//! Extracted (first key seen wins; a later duplicate stays in `attrs`):
//!
//! | column | keys |
//! | --- | --- |
//! | ts | `ts`, `timestamp`, `time`, `@timestamp` (ISO-8601 text, epoch s/ms/µs/ns number or numeric text) |
//! | level | `level`, `severity`, `lvl`, `levelname`, `log_level`, `loglevel`, `log.level`, nested `log.level` (text spelling, or bunyan/syslog number) |
//! | service | `service`, `app`, `application`, `service.name`, nested `service.name` |
//! | host | `host`, `hostname`, `host.name`, nested `host.name` / `host.hostname` |
//! | message | `msg`, `message`, `log` (text) |
//! | status | `status`, `status_code`, `statusCode`, `http.status`, nested `http.status` / `http.status_code` (100-999, number or numeric text) |
//! | client_ip | `client_ip`, `ip`, `remote_addr`, `client.ip` |
//!
//! A value of the wrong type or that does not parse (a level of `true`, a `ts`
//! of `"soon"`) is not extracted and stays in `attrs`. Top-level `path`, `url` and
//! `uri` stay in `attrs` but also serve as the request path for the classifier.
//! An extracted nested member is removed from its object; an object left empty is
//! dropped.

use std::fmt::Write as _;

use simd_json::{Node, StaticNode};

use super::keys::{Field, field_of};
use super::special_bytes::find_special;
use super::timestamp::{epoch_to_ms, parse_ts_text};
use crate::classify::{level_from_number, parse_level};
use crate::event::Severity;

/// Fields taken out of a JSON object.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JsonFields<'a> {
    /// Event time, UTC ms.
    pub ts: Option<i64>,
    /// Explicit level.
    pub level: Option<Severity>,
    /// Service.
    pub service: Option<&'a str>,
    /// Host.
    pub host: Option<&'a str>,
    /// Message.
    pub message: Option<&'a str>,
    /// HTTP status, 0 when absent.
    pub status: u16,
    /// Client IP.
    pub client_ip: Option<&'a str>,
    /// Request path hint (not removed from attrs).
    pub path: Option<&'a str>,
    /// The object has `messageType` or `logEvents`: a CloudWatch Logs payload.
    pub cloudwatch: bool,
}

/// Nodes taken by the value starting at `n` (itself included).
#[inline]
fn count(n: &Node<'_>) -> usize {
    match n {
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        _ => 1,
    }
}

/// Iterates `(key, value nodes)` of the object whose header is `obj[0]`.
pub(super) fn members<'t, 'a>(
    obj: &'t [Node<'a>],
) -> impl Iterator<Item = (&'a str, &'t [Node<'a>])> + 't {
    let len = match obj.first() {
        Some(Node::Object { len, .. }) => *len,
        _ => 0,
    };
    let mut idx = 1;
    (0..len).map_while(move |_| {
        let Node::String(k) = obj.get(idx)? else {
            return None;
        };
        let c = count(obj.get(idx + 1)?);
        let v = obj.get(idx + 1..idx + 1 + c)?;
        idx += 1 + c;
        Some((*k, v))
    })
}

pub(super) fn as_str<'a>(v: &[Node<'a>]) -> Option<&'a str> {
    match v.first()? {
        Node::String(s) => Some(s),
        _ => None,
    }
}

/// What a JSON value is, as far as field extraction cares.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind<'a> {
    Str(&'a str),
    I64(i64),
    U64(u64),
    F64(f64),
    Other,
    /// An object with this many members.
    Object(usize),
}

/// A JSON value seen by [`extract_members`]: a simd-json tape slice, or a
/// validated span of the input (`flat.rs`).
pub(super) trait JsonValue<'a>: Copy {
    fn kind(self) -> Kind<'a>;
    /// Members of an object (nothing for other values).
    fn members(self) -> impl Iterator<Item = (&'a str, Self)>;
    /// Writes the value as compact JSON.
    fn write(self, out: &mut String);
    /// The member holding this value as compact JSON (`"key":value`), when
    /// that is exactly its input text.
    fn member_text(self) -> Option<&'a str> {
        None
    }

    fn str(self) -> Option<&'a str> {
        match self.kind() {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<'a> JsonValue<'a> for &[Node<'a>] {
    #[inline]
    fn kind(self) -> Kind<'a> {
        match self.first() {
            Some(Node::String(s)) => Kind::Str(s),
            Some(Node::Static(StaticNode::I64(n))) => Kind::I64(*n),
            Some(Node::Static(StaticNode::U64(n))) => Kind::U64(*n),
            Some(Node::Static(StaticNode::F64(n))) => Kind::F64(*n),
            Some(Node::Object { len, .. }) => Kind::Object(*len),
            _ => Kind::Other,
        }
    }
    fn members(self) -> impl Iterator<Item = (&'a str, Self)> {
        members(self)
    }
    fn write(self, out: &mut String) {
        write_value(out, self);
    }
}

fn ts_value<'a>(v: impl JsonValue<'a>) -> Option<i64> {
    match v.kind() {
        Kind::Str(s) => parse_ts_text(s),
        Kind::I64(n) => epoch_to_ms(n as f64),
        Kind::U64(n) => epoch_to_ms(n as f64),
        Kind::F64(n) => epoch_to_ms(n),
        _ => None,
    }
}

fn level_value<'a>(v: impl JsonValue<'a>) -> Option<Severity> {
    match v.kind() {
        Kind::Str(s) => parse_level(s),
        Kind::I64(n) => level_from_number(n),
        Kind::U64(n) => level_from_number(i64::try_from(n).ok()?),
        _ => None,
    }
}

fn status_value<'a>(v: impl JsonValue<'a>) -> Option<u16> {
    let n: u64 = match v.kind() {
        Kind::Str(s) => s.trim().parse().ok()?,
        Kind::I64(n) => u64::try_from(n).ok()?,
        Kind::U64(n) => n,
        _ => return None,
    };
    (100..=999).contains(&n).then_some(n as u16)
}

/// Finds the first member of `obj` named one of `keys` for which `take` gives a
/// value: `(value, member position)`.
fn nested<'a, V: JsonValue<'a>, T>(
    obj: V,
    keys: &[&str],
    take: impl Fn(V) -> Option<T>,
) -> Option<(T, usize)> {
    obj.members().enumerate().find_map(|(i, (k, v))| {
        if keys.contains(&k) {
            take(v).map(|t| (t, i))
        } else {
            None
        }
    })
}

/// Extracts the known fields of the object `nodes` (a whole tape) and writes the
/// rest as a compact JSON object into `attrs` (cleared first; left empty when
/// nothing remains). With `detect_cloudwatch`, stops early with `cloudwatch` set
/// at a CloudWatch key.
pub fn extract<'a>(
    nodes: &[Node<'a>],
    attrs: &mut String,
    detect_cloudwatch: bool,
) -> JsonFields<'a> {
    extract_members(members(nodes), attrs, detect_cloudwatch)
}

/// [`extract`] over the members of an object, whatever their representation.
pub(super) fn extract_members<'a, V: JsonValue<'a>>(
    members: impl Iterator<Item = (&'a str, V)>,
    attrs: &mut String,
    detect_cloudwatch: bool,
) -> JsonFields<'a> {
    attrs.clear();
    let mut f = JsonFields::default();
    for (key, v) in members {
        // `Some(i)`: member i of the nested object `v` was extracted.
        let mut skip_member = None;
        let consumed = match field_of(key) {
            Field::CloudWatch if detect_cloudwatch => {
                f.cloudwatch = true;
                return f;
            }
            Field::Ts if f.ts.is_none() => {
                f.ts = ts_value(v);
                f.ts.is_some()
            }
            Field::Level if f.level.is_none() => {
                f.level = level_value(v);
                f.level.is_some()
            }
            Field::Message if f.message.is_none() => {
                f.message = v.str();
                f.message.is_some()
            }
            Field::Log if f.message.is_none() && v.str().is_some() => {
                f.message = v.str();
                true
            }
            Field::Log if f.level.is_none() => {
                if let Some((l, i)) = nested(v, &["level"], level_value) {
                    (f.level, skip_member) = (Some(l), Some(i));
                }
                false
            }
            Field::Service if f.service.is_none() => {
                f.service = v.str();
                if f.service.is_none()
                    && key == "service"
                    && let Some((s, i)) = nested(v, &["name"], V::str)
                {
                    (f.service, skip_member) = (Some(s), Some(i));
                }
                f.service.is_some() && skip_member.is_none()
            }
            Field::Host if f.host.is_none() => {
                f.host = v.str();
                if f.host.is_none()
                    && key == "host"
                    && let Some((s, i)) = nested(v, &["name", "hostname"], V::str)
                {
                    (f.host, skip_member) = (Some(s), Some(i));
                }
                f.host.is_some() && skip_member.is_none()
            }
            Field::Status if f.status == 0 => {
                f.status = status_value(v).unwrap_or(0);
                f.status != 0
            }
            Field::Http if f.status == 0 => {
                if let Some((s, i)) = nested(v, &["status", "status_code"], status_value) {
                    (f.status, skip_member) = (s, Some(i));
                }
                false
            }
            Field::ClientIp if f.client_ip.is_none() => {
                f.client_ip = v.str();
                f.client_ip.is_some()
            }
            Field::Path if f.path.is_none() => {
                f.path = v.str();
                false
            }
            _ => false,
        };
        if consumed {
            continue;
        }
        if let (Some(skip), Kind::Object(len)) = (skip_member, v.kind()) {
            if len == 1 {
                continue;
            }
            open_member(attrs, key);
            write_object(attrs, v, Some(skip));
        } else if let Some(m) = v.member_text() {
            attrs.push(if attrs.is_empty() { '{' } else { ',' });
            attrs.push_str(m);
        } else {
            open_member(attrs, key);
            v.write(attrs);
        }
    }
    if !attrs.is_empty() {
        attrs.push('}');
    }
    f
}

fn open_member(out: &mut String, key: &str) {
    out.push(if out.is_empty() { '{' } else { ',' });
    write_json_str(out, key);
    out.push(':');
}

fn write_object<'a>(out: &mut String, v: impl JsonValue<'a>, skip: Option<usize>) {
    out.push('{');
    let mut first = true;
    for (i, (k, m)) in v.members().enumerate() {
        if Some(i) == skip {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_json_str(out, k);
        out.push(':');
        m.write(out);
    }
    out.push('}');
}

/// Writes the value whose nodes are `v` as compact JSON.
pub fn write_value(out: &mut String, v: &[Node<'_>]) {
    let Some(head) = v.first() else {
        out.push_str("null");
        return;
    };
    match head {
        Node::String(s) => write_json_str(out, s),
        Node::Static(StaticNode::Null) => out.push_str("null"),
        Node::Static(StaticNode::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        Node::Static(StaticNode::I64(n)) => {
            let _ = write!(out, "{n}");
        }
        Node::Static(StaticNode::U64(n)) => {
            let _ = write!(out, "{n}");
        }
        Node::Static(StaticNode::F64(n)) => {
            let _ = write!(out, "{n:?}");
        }
        Node::Object { .. } => write_object(out, v, None),
        Node::Array { len, .. } => {
            out.push('[');
            let mut idx = 1;
            for i in 0..*len {
                let Some(n) = v.get(idx) else { break };
                let c = count(n);
                if i > 0 {
                    out.push(',');
                }
                write_value(out, &v[idx..(idx + c).min(v.len())]);
                idx += c;
            }
            out.push(']');
        }
    }
}

/// Writes `s` as a JSON string literal (quotes included).
pub fn write_json_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let b = s.as_bytes();
    let mut start = 0;
    while let Some(i) = find_special(b, start) {
        out.push_str(&s[start..i]);
        match b[i] {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            c => {
                let _ = write!(out, "\\u{c:04x}");
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}
#[cfg(test)]
mod tests {
    use super::*;

    fn run(json: &str) -> (JsonFields<'static>, String) {
        let buf: &'static mut [u8] = Box::leak(json.as_bytes().to_vec().into_boxed_slice());
        let tape = simd_json::to_tape(buf).unwrap();
        let nodes: &'static [Node<'static>] = Box::leak(tape.0.into_boxed_slice());
        let mut attrs = String::new();
        let f = extract(nodes, &mut attrs, true);
        (f, attrs)
    }

    #[test]
    fn extracts_the_known_fields() {
        let (f, attrs) = run(
            r#"{"ts":"2024-01-01T00:00:00.123Z","level":"Warning","service":"api","host":"h1","msg":"slow \"q\"","status":503,"client_ip":"10.0.0.1","trace_id":"abc","n":[1,2.5,{"x":null}],"ok":true}"#,
        );
        assert_eq!(f.ts, Some(1_704_067_200_123));
        assert_eq!(f.level, Some(Severity::Warning));
        assert_eq!(f.service, Some("api"));
        assert_eq!(f.host, Some("h1"));
        assert_eq!(f.message, Some("slow \"q\""));
        assert_eq!(f.status, 503);
        assert_eq!(f.client_ip, Some("10.0.0.1"));
        assert_eq!(
            attrs,
            r#"{"trace_id":"abc","n":[1,2.5,{"x":null}],"ok":true}"#
        );
    }

    #[test]
    fn alternate_and_nested_keys() {
        let (f, attrs) = run(
            r#"{"@timestamp":1700000000,"log":{"level":"err","logger":"x"},"service":{"name":"billing"},"host":{"name":"n1"},"http":{"status":"404","method":"GET"},"message":"m","path":"/login"}"#,
        );
        assert_eq!(f.ts, Some(1_700_000_000_000));
        assert_eq!(f.level, Some(Severity::Error));
        assert_eq!(f.service, Some("billing"));
        assert_eq!(f.host, Some("n1"));
        assert_eq!(f.status, 404);
        assert_eq!(f.path, Some("/login"));
        assert_eq!(
            attrs,
            r#"{"log":{"logger":"x"},"http":{"method":"GET"},"path":"/login"}"#
        );
        let (f, attrs) = run(
            r#"{"log.level":"notice","levelname":"ERROR","app":"a","hostname":"h","log":"docker line","time":1700000000123}"#,
        );
        assert_eq!(f.level, Some(Severity::Info), "first level key wins");
        assert_eq!(
            (f.service, f.host, f.message),
            (Some("a"), Some("h"), Some("docker line"))
        );
        assert_eq!(f.ts, Some(1_700_000_000_123));
        assert_eq!(attrs, r#"{"levelname":"ERROR"}"#);
    }

    #[test]
    fn wrong_types_stay_in_attrs() {
        let (f, attrs) =
            run(r#"{"level":true,"severity":{"x":1},"ts":"soon","status":"abc","msg":42}"#);
        assert_eq!(f.level, None);
        assert_eq!(f.ts, None);
        assert_eq!(f.status, 0);
        assert_eq!(f.message, None);
        assert_eq!(
            attrs,
            r#"{"level":true,"severity":{"x":1},"ts":"soon","status":"abc","msg":42}"#
        );
    }

    #[test]
    fn numeric_levels() {
        assert_eq!(run(r#"{"level":60}"#).0.level, Some(Severity::Critical));
        assert_eq!(run(r#"{"level":50}"#).0.level, Some(Severity::Error));
        assert_eq!(run(r#"{"level":40}"#).0.level, Some(Severity::Warning));
        assert_eq!(run(r#"{"level":30}"#).0.level, Some(Severity::Info));
        let (f, attrs) = run(r#"{"level":45}"#);
        assert_eq!((f.level, attrs.as_str()), (None, r#"{"level":45}"#));
    }

    #[test]
    fn nothing_left_means_empty_attrs() {
        let (f, attrs) = run(r#"{"message":"hi","level":"info"}"#);
        assert_eq!(f.message, Some("hi"));
        assert!(attrs.is_empty());
        let (_, attrs) = run(r#"{"log":{"level":"info"}}"#);
        assert!(attrs.is_empty());
    }

    #[test]
    fn cloudwatch_keys_are_flagged() {
        assert!(
            run(r#"{"messageType":"DATA_MESSAGE","logEvents":[]}"#)
                .0
                .cloudwatch
        );
        assert!(!run(r#"{"message":"logEvents"}"#).0.cloudwatch);
    }

    #[test]
    fn string_escaping() {
        let mut s = String::new();
        write_json_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }
}
