//! CloudWatch Logs metric-filter patterns, as far as they make sense for Spate.
//!
//! Supported:
//! - unstructured terms, case-sensitive substring matches: `ERROR` (required),
//!   `"Failed password"` (a phrase), `?ERROR ?WARN` (at least one of the `?` terms),
//!   `-Retry` / `-"health check"` (must not occur); an empty pattern or `""` matches
//!   everything;
//! - JSON patterns: `{ $.status >= 500 }`, `{ $.level = "ERROR" && $.service != "api" }`,
//!   with `=`, `!=`, `<`, `<=`, `>`, `>=`, string values (a `*` is a wildcard), numbers,
//!   `true`, `false`, `null`, joined by `&&` (binding tighter) and `||`.
//!   `$.level` / `$.severity` compare against the canonical severity name,
//!   case-insensitively.
//!
//! Not supported (rejected when the configuration is loaded): space-delimited
//! patterns (`[ip, user, ...]`), parentheses, array indexes, `IS NULL`/`NOT EXISTS`.

use memchr::memmem::Finder;

/// A value looked up for a JSON pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue<'a> {
    /// A string.
    Str(std::borrow::Cow<'a, str>),
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// JSON null.
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone)]
struct Cond {
    path: String,
    op: Op,
    value: Lit,
    case_insensitive: bool,
}

#[derive(Debug, Clone)]
enum Kind {
    Text {
        all: Vec<Finder<'static>>,
        any: Vec<Finder<'static>>,
        none: Vec<Finder<'static>>,
    },
    /// OR of AND groups.
    Json(Vec<Vec<Cond>>),
}

/// A compiled metric-filter pattern.
#[derive(Debug, Clone)]
pub struct MetricFilter {
    kind: Kind,
}

impl MetricFilter {
    /// Compiles `pattern`; the error is a lowercase description.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let p = pattern.trim();
        if p.starts_with('{') {
            return parse_json(p).map(|k| MetricFilter { kind: k });
        }
        if p.starts_with('[') {
            return Err("space-delimited metric filter patterns are not supported".into());
        }
        let (mut all, mut any, mut none) = (Vec::new(), Vec::new(), Vec::new());
        let mut rest = p;
        while let Some((prefix, term, tail)) = next_term(rest)? {
            rest = tail;
            if term.is_empty() {
                continue;
            }
            let f = Finder::new(term.as_bytes()).into_owned();
            match prefix {
                Some('?') => any.push(f),
                Some('-') => none.push(f),
                _ => all.push(f),
            }
        }
        Ok(MetricFilter {
            kind: Kind::Text { all, any, none },
        })
    }

    /// True for `{ ... }` patterns, which need [`MetricFilter::matches_json`].
    pub fn is_json(&self) -> bool {
        matches!(self.kind, Kind::Json(_))
    }

    /// Matches an unstructured pattern against `message` (JSON patterns: false).
    pub fn matches_text(&self, message: &str) -> bool {
        let Kind::Text { all, any, none } = &self.kind else {
            return false;
        };
        let h = message.as_bytes();
        all.iter().all(|f| f.find(h).is_some())
            && (any.is_empty() || any.iter().any(|f| f.find(h).is_some()))
            && !none.iter().any(|f| f.find(h).is_some())
    }

    /// Matches a JSON pattern, looking fields up by dotted path (`http.status`).
    pub fn matches_json<'v>(&self, lookup: &mut dyn FnMut(&str) -> Option<FieldValue<'v>>) -> bool {
        let Kind::Json(groups) = &self.kind else {
            return false;
        };
        groups
            .iter()
            .any(|g| g.iter().all(|c| eval(c, lookup(&c.path).as_ref())))
    }
}

/// Splits off the next term: `(prefix, term, rest)`.
#[allow(clippy::type_complexity)]
fn next_term(s: &str) -> Result<Option<(Option<char>, String, &str)>, String> {
    let s = s.trim_start();
    if s.is_empty() {
        return Ok(None);
    }
    let (prefix, s) = match s.as_bytes()[0] {
        b'?' => (Some('?'), &s[1..]),
        b'-' if s.len() > 1 => (Some('-'), &s[1..]),
        _ => (None, s),
    };
    if let Some(q) = s.strip_prefix('"') {
        let end = q
            .find('"')
            .ok_or("unterminated quoted phrase in metric filter")?;
        return Ok(Some((prefix, q[..end].to_string(), &q[end + 1..])));
    }
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    Ok(Some((prefix, s[..end].to_string(), &s[end..])))
}

fn parse_json(p: &str) -> Result<Kind, String> {
    let inner = p
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .ok_or("json metric filter must be enclosed in { }")?;
    let mut groups = vec![Vec::new()];
    let mut rest = inner.trim();
    loop {
        if rest.starts_with('(') {
            return Err("parentheses are not supported in json metric filters".into());
        }
        let (cond, tail) = parse_cond(rest)?;
        groups.last_mut().expect("non-empty").push(cond);
        rest = tail.trim_start();
        if rest.is_empty() {
            break;
        } else if let Some(t) = rest.strip_prefix("&&") {
            rest = t.trim_start();
        } else if let Some(t) = rest.strip_prefix("||") {
            groups.push(Vec::new());
            rest = t.trim_start();
        } else {
            return Err(format!("unexpected text in json metric filter: {rest}"));
        }
    }
    Ok(Kind::Json(groups))
}

fn parse_cond(s: &str) -> Result<(Cond, &str), String> {
    let s = s
        .strip_prefix("$.")
        .ok_or("json metric filter condition must start with $.")?;
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '-' || c == '@'))
        .unwrap_or(s.len());
    let path = s[..end].to_string();
    if path.is_empty() || s[end..].starts_with('[') {
        return Err("unsupported field selector in json metric filter".into());
    }
    let s = s[end..].trim_start();
    let (op, s) = [
        ("!=", Op::Ne),
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("=", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
    ]
    .iter()
    .find_map(|(t, op)| s.strip_prefix(t).map(|r| (*op, r.trim_start())))
    .ok_or("missing comparison operator in json metric filter")?;
    let (value, rest) = if let Some(q) = s.strip_prefix('"') {
        let end = q
            .find('"')
            .ok_or("unterminated string in json metric filter")?;
        (Lit::Str(q[..end].to_string()), &q[end + 1..])
    } else {
        let end = s
            .find(|c: char| c.is_whitespace() || c == '&' || c == '|')
            .unwrap_or(s.len());
        let tok = &s[..end];
        let v = match tok {
            "true" => Lit::Bool(true),
            "false" => Lit::Bool(false),
            "null" => Lit::Null,
            _ => Lit::Num(
                tok.parse::<f64>()
                    .map_err(|_| format!("bad value in json metric filter: {tok}"))?,
            ),
        };
        (v, &s[end..])
    };
    if matches!(value, Lit::Str(_) | Lit::Bool(_) | Lit::Null) && !matches!(op, Op::Eq | Op::Ne) {
        return Err("only = and != compare strings, booleans and null".into());
    }
    let case_insensitive = path == "level" || path == "severity";
    Ok((
        Cond {
            path,
            op,
            value,
            case_insensitive,
        },
        rest,
    ))
}

fn eval(c: &Cond, v: Option<&FieldValue<'_>>) -> bool {
    let eq = match (&c.value, v) {
        (Lit::Str(p), Some(FieldValue::Str(s))) => glob(p, s, c.case_insensitive),
        (Lit::Num(n), Some(FieldValue::Num(x))) => return cmp_num(c.op, *x, *n),
        (Lit::Num(n), Some(FieldValue::Str(s))) => match s.trim().parse::<f64>() {
            Ok(x) => return cmp_num(c.op, x, *n),
            Err(_) => false,
        },
        (Lit::Bool(b), Some(FieldValue::Bool(x))) => b == x,
        (Lit::Null, Some(FieldValue::Null)) => true,
        (Lit::Num(_), _) => return false,
        _ => false,
    };
    match c.op {
        Op::Eq => eq,
        // A missing field matches no condition, `!=` included (CloudWatch semantics).
        Op::Ne => v.is_some() && !eq,
        _ => false,
    }
}

fn cmp_num(op: Op, x: f64, n: f64) -> bool {
    match op {
        Op::Eq => x == n,
        Op::Ne => x != n,
        Op::Lt => x < n,
        Op::Le => x <= n,
        Op::Gt => x > n,
        Op::Ge => x >= n,
    }
}

/// `*` matches any run of characters.
fn glob(pattern: &str, s: &str, ci: bool) -> bool {
    let eq = |a: &str, b: &str| {
        if ci {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    if !pattern.contains('*') {
        return eq(pattern, s);
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if s.len() < first.len() + last.len()
        || !s.is_char_boundary(first.len())
        || !s.is_char_boundary(s.len() - last.len())
        || !eq(&s[..first.len()], first)
        || !eq(&s[s.len() - last.len()..], last)
    {
        return false;
    }
    let mut mid = &s[first.len()..s.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match mid.find(part) {
            Some(i) => mid = &mid[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn text(p: &str, m: &str) -> bool {
        MetricFilter::parse(p).unwrap().matches_text(m)
    }

    #[test]
    fn terms_phrases_or_and_exclusions() {
        assert!(text("ERROR", "an ERROR here"));
        assert!(!text("ERROR", "an error here"), "terms are case-sensitive");
        assert!(text("ERROR Timeout", "ERROR: Timeout after 3s"));
        assert!(!text("ERROR Timeout", "ERROR: refused"));
        assert!(text(
            "\"Failed password\"",
            "sshd: Failed password for root"
        ));
        assert!(!text("\"Failed password\"", "sshd: Failed  password"));
        assert!(text("?ERROR ?WARN", "WARN disk"));
        assert!(!text("?ERROR ?WARN", "INFO disk"));
        assert!(text("ERROR -Retry", "ERROR boom"));
        assert!(!text("ERROR -Retry", "ERROR Retry 2"));
        assert!(!text("ERROR -\"health check\"", "ERROR in health check"));
        assert!(text("", "anything"));
        assert!(text("\"\"", "anything"));
    }

    fn json_match(p: &str, fields: &[(&str, FieldValue<'static>)]) -> bool {
        let f = MetricFilter::parse(p).unwrap();
        assert!(f.is_json());
        f.matches_json(&mut |k| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn json_patterns() {
        let s = |v: &'static str| FieldValue::Str(Cow::Borrowed(v));
        let row = [
            ("level", s("ERROR")),
            ("status", FieldValue::Num(503.0)),
            ("service", s("checkout-api")),
            ("http.code", s("404")),
            ("ok", FieldValue::Bool(false)),
        ];
        assert!(json_match("{ $.level = \"error\" }", &row));
        assert!(json_match("{ $.status >= 500 }", &row));
        assert!(!json_match("{ $.status < 500 }", &row));
        assert!(json_match("{ $.service = \"checkout*\" }", &row));
        assert!(!json_match("{ $.service = \"Checkout*\" }", &row));
        assert!(json_match("{ $.http.code = 404 }", &row));
        assert!(json_match("{ $.level = \"INFO\" || $.status > 499 }", &row));
        assert!(!json_match(
            "{ $.level = \"ERROR\" && $.service != \"checkout-api\" }",
            &row
        ));
        assert!(json_match("{ $.ok = false }", &row));
        assert!(!json_match("{ $.missing != \"x\" }", &row));
        assert!(!json_match("{ $.missing > 1 }", &row));
    }

    #[test]
    fn unsupported_patterns_are_rejected() {
        for p in [
            "[ip, user, status]",
            "{ ($.a = 1) }",
            "{ $.a[0] = 1 }",
            "{ $.a ~ 1 }",
            "{ $.a > \"x\" }",
            "\"open",
            "{ level = 1 }",
        ] {
            assert!(MetricFilter::parse(p).is_err(), "{p}");
        }
    }

    #[test]
    fn glob_wildcards() {
        assert!(glob("a*c", "abbbc", false));
        assert!(glob("*", "", false));
        assert!(glob("*mid*", "xxmidyy", false));
        assert!(!glob("a*c", "ab", false));
        assert!(glob("A*", "abc", true));
    }
}
