//! The `attrs` most events carry, read without building a
//! [`serde_json::Value`]: a flat JSON object whose keys and strings have no
//! escapes and whose numbers are integers of `i64`. The block encoder takes
//! such an object's members straight from its text; anything else (nesting,
//! escapes, fractions, repeated keys, text that is not JSON) it parses with
//! serde_json. Both give the same block bytes (tested in `columns.rs`).

/// A member's value in a flat object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scalar<'a> {
    /// A string without escapes.
    Str(&'a str),
    /// An integer that serde_json reads as an `i64`.
    Int(i64),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

/// Fills `out` with the members of `text` sorted by key (the order of
/// serde_json's map) and returns true when `text` is a flat object as
/// described above, with no key twice; false otherwise (`out` is then to
/// be ignored): `{"b": 2, "a": "x"}` gives `[("a", Str("x")), ("b",
/// Int(2))]`, `{"a": {"b": 1}}` false.
pub(super) fn flat_object<'a>(text: &'a str, out: &mut Vec<(&'a str, Scalar<'a>)>) -> bool {
    out.clear();
    members(text, out).is_some() && {
        out.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out.windows(2).all(|w| w[0].0 != w[1].0)
    }
}

fn members<'a>(text: &'a str, out: &mut Vec<(&'a str, Scalar<'a>)>) -> Option<()> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    (b.get(i) == Some(&b'{')).then_some(())?;
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            let (key, next) = string(text, i)?;
            i = skip_ws(b, next);
            (b.get(i) == Some(&b':')).then_some(())?;
            let (value, next) = scalar(text, skip_ws(b, i + 1))?;
            out.push((key, value));
            i = skip_ws(b, next);
            match b.get(i)? {
                b',' => i = skip_ws(b, i + 1),
                b'}' => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(b, i) == b.len()).then_some(())
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The string starting at `i` (its opening quote) and the index after its
/// closing quote; `None` for escapes and control characters.
fn string(text: &str, i: usize) -> Option<(&str, usize)> {
    let b = text.as_bytes();
    (b.get(i) == Some(&b'"')).then_some(())?;
    let start = i + 1;
    let len = b[start..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    let end = start + len;
    // Both ends are at ASCII bytes, so at character boundaries.
    (b[end] == b'"').then(|| (&text[start..end], end + 1))
}

/// The value starting at `i` and the index after it; `None` for anything
/// but an escape-free string, an `i64` integer, `true`, `false` or `null`.
fn scalar(text: &str, i: usize) -> Option<(Scalar<'_>, usize)> {
    let b = text.as_bytes();
    let word =
        |w: &str, v: Scalar<'static>| b[i..].starts_with(w.as_bytes()).then(|| (v, i + w.len()));
    match *b.get(i)? {
        b'"' => string(text, i).map(|(s, next)| (Scalar::Str(s), next)),
        b't' => word("true", Scalar::Bool(true)),
        b'f' => word("false", Scalar::Bool(false)),
        b'n' => word("null", Scalar::Null),
        b'-' | b'0'..=b'9' => integer(text, i),
        _ => None,
    }
}

/// An integer as serde_json reads it into an `i64`: no leading zeros, no
/// fraction or exponent, and not `-0` (a float to serde_json).
fn integer(text: &str, i: usize) -> Option<(Scalar<'_>, usize)> {
    let b = text.as_bytes();
    let digits_from = i + usize::from(b[i] == b'-');
    let digits = b[digits_from..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    let end = digits_from + digits;
    let leading_zero = digits > 1 && b[digits_from] == b'0';
    let fraction = matches!(b.get(end), Some(b'.' | b'e' | b'E'));
    if digits == 0 || leading_zero || fraction || &text[i..end] == "-0" {
        return None;
    }
    let n: i64 = text[i..end].parse().ok()?;
    Some((Scalar::Int(n), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(text: &str) -> Option<Vec<(&str, Scalar<'_>)>> {
        let mut out = Vec::new();
        flat_object(text, &mut out).then_some(out)
    }

    #[test]
    fn flat_objects_are_read_sorted_by_key() {
        assert_eq!(
            flat(r#" { "b" : -12 , "a":"x y", "c":true,"d":false,"e":null,"0":0 } "#),
            Some(vec![
                ("0", Scalar::Int(0)),
                ("a", Scalar::Str("x y")),
                ("b", Scalar::Int(-12)),
                ("c", Scalar::Bool(true)),
                ("d", Scalar::Bool(false)),
                ("e", Scalar::Null),
            ])
        );
        assert_eq!(flat("{}"), Some(vec![]));
        assert_eq!(flat("{ }\n"), Some(vec![]));
        assert_eq!(flat(r#"{"é":"ü"}"#), Some(vec![("é", Scalar::Str("ü"))]));
        assert_eq!(
            flat(&format!(r#"{{"n":{}}}"#, i64::MIN)),
            Some(vec![("n", Scalar::Int(i64::MIN))])
        );
    }

    #[test]
    fn anything_else_is_left_to_serde_json() {
        for text in [
            "",
            "[1]",
            "\"s\"",
            "{",
            "{\"a\":1",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{\"a\":1}x",
            "{a:1}",
            r#"{"a":{"b":1}}"#,
            r#"{"a":[1]}"#,
            r#"{"a":"x\"y"}"#,
            r#"{"a\n":1}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":1E3}"#,
            r#"{"a":-0}"#,
            r#"{"a":01}"#,
            r#"{"a":-}"#,
            r#"{"a":18446744073709551615}"#,
            r#"{"a":-9223372036854775809}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{"a":1,"a":2}"#,
        ] {
            assert_eq!(flat(text), None, "{text}");
        }
    }
}
