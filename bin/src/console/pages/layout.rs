//! The page shell (head, navigation, sign-out form), HTML escaping, and the
//! security headers of every page.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use spate_operators::sinks::hot::query::rfc3339_ms;

use crate::console::session::Session;
use crate::console::users::Role;

/// `text` with `& < > " '` escaped, for element content and quoted
/// attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// UTC time of `ms` to the second, as pages show it.
pub fn time(ms: i64) -> String {
    let text = rfc3339_ms(ms);
    format!("{} {}", &text[..10], &text[11..19])
}

/// A result cell as text: strings as they are (timestamps shortened to
/// `YYYY-MM-DD HH:MM:SS.mmm`, UTC), null empty, the rest as JSON.
pub fn cell(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => String::new(),
        Value::String(s) => short_time(s).unwrap_or_else(|| s.clone()),
        other => other.to_string(),
    }
}

/// `2026-11-23T10:00:00.123+00:00` (or `Z`) as `2026-11-23 10:00:00.123`;
/// `None` for other text.
fn short_time(text: &str) -> Option<String> {
    let body = text
        .strip_suffix("+00:00")
        .or_else(|| text.strip_suffix('Z'))?;
    let b = body.as_bytes();
    let shape = b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && body
            .bytes()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16 | 19) || c.is_ascii_digit());
    shape.then(|| format!("{} {}", &body[..10], &body[11..]))
}

/// A whole page: the head, the navigation for `session` (none on the
/// sign-in form), and `main`.
pub fn page_body(title: &str, session: Option<&Session>, main: &str) -> String {
    let nav = match session {
        Some(s) => {
            let admin = if s.role == Role::Admin {
                r#"<a href="/ui/audit">Audit</a>"#
            } else {
                ""
            };
            format!(
                r#"<nav aria-label="main"><a class="brand" href="/ui">Spate</a><a href="/ui/search">Search</a><a href="/ui/alerts">Alerts</a><a href="/ui/subscriptions">Subscriptions</a>{admin}<span class="who">{user} ({role})</span><form method="post" action="/ui/signout" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" id="signout">Sign out</button></form></nav>"#,
                user = esc(&s.user),
                role = s.role.as_str(),
                csrf = esc(&s.csrf),
            )
        }
        None => r#"<nav aria-label="main"><span class="brand">Spate</span></nav>"#.to_string(),
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Spate</title>
<link rel="stylesheet" href="/ui/static/style.css">
<script src="/ui/static/console.js" defer></script>
</head>
<body>
<header>{nav}</header>
<main>
{main}
</main>
</body>
</html>
"#,
        title = esc(title),
    )
}

/// `body` as an HTML answer with `status` and the security headers: a
/// content security policy allowing only this origin's files (no inline
/// script or style), no framing, no caching, no type sniffing.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// A page with status 200.
pub fn ok(title: &str, session: &Session, main: &str) -> Response {
    html(StatusCode::OK, page_body(title, Some(session), main))
}

/// A table of `rows` under `headers`; every cell is escaped.
pub fn table(id: &str, caption: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!(
        r#"<div class="scroll"><table id="{id}"><caption>{}</caption><thead><tr>"#,
        esc(caption)
    );
    for h in headers {
        out.push_str(&format!(r#"<th scope="col">{}</th>"#, esc(h)));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            out.push_str(&format!("<td>{}</td>", esc(cell)));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            esc(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        let t = table("t", "c", &["<a>"], &[vec!["<b>".into()]]);
        assert!(t.contains("&lt;a&gt;") && t.contains("&lt;b&gt;") && !t.contains("<b>"));
        assert_eq!(time(1_763_892_000_123), "2025-11-23 10:00:00");
        let v = |s: &str| serde_json::Value::from(s);
        assert_eq!(
            cell(&v("2026-12-05T21:50:17.514+00:00")),
            "2026-12-05 21:50:17.514"
        );
        assert_eq!(cell(&v("2026-12-05T21:50:17Z")), "2026-12-05 21:50:17");
        assert_eq!(
            cell(&v("2026-12-05 not a time+00:00")),
            "2026-12-05 not a time+00:00"
        );
        assert_eq!(cell(&serde_json::Value::Null), "");
        assert_eq!(cell(&serde_json::json!(["a"])), r#"["a"]"#);
    }
}
