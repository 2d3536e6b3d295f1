//! What the console's end-to-end tests share: users added with `spate user
//! add`, the JSON API called with a bearer token, and a browser as far as
//! the HTTP forms go (the sign-in form, the session cookie, the CSRF token).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::service::post;

/// Adds user `name` with `role` and `password` to the console of
/// `data` (`spate user add --password-stdin`, `spate` the binary's path),
/// which must succeed and say so.
pub fn add_user(spate: impl AsRef<Path>, data: &Path, name: &str, role: &str, password: &str) {
    let mut child = Command::new(spate.as_ref())
        .args([
            "user",
            "add",
            name,
            "--role",
            role,
            "--password-stdin",
            "--data-dir",
        ])
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "spate user add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8(out.stdout).unwrap();
    assert_eq!(said, format!("user {name} added ({role})\n"));
}

/// POSTs `body` to `url` + `path` (with `bearer` as the token when given);
/// the status and the JSON answer (its text as a JSON string when it is
/// not JSON).
pub fn post_json(url: &str, path: &str, body: String, bearer: Option<&str>) -> (u16, Value) {
    let (status, text) = post(url, path, None, body, bearer);
    (
        status.as_u16(),
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// `sql` through `POST /v1/query` with `bearer`: the status and the answer.
pub fn query(url: &str, sql: &str, bearer: &str) -> (u16, Value) {
    post_json(
        url,
        "/v1/query",
        json!({ "sql": sql }).to_string(),
        Some(bearer),
    )
}

/// The `name=value` of a `Set-Cookie` for `name`, if the response sets it.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_string())
}

/// The `value` of the first `<input name="NAME" value="...">` in `html`.
pub fn input_value(html: &str, name: &str) -> String {
    let at = html
        .find(&format!(r#"name="{name}" value=""#))
        .unwrap_or_else(|| panic!("no input {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// `pairs` as an `application/x-www-form-urlencoded` body.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v: String = v
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A signed-in browser, as far as the forms go: its session cookie and CSRF
/// token.
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    url: String,
    cookie: String,
    csrf: String,
}

impl Browser {
    /// Signs `name` in at the console of `url` through the sign-in form
    /// (which must answer 303), and reads the session's CSRF token from
    /// `/ui/subscriptions`.
    pub fn sign_in(url: &str, name: &str, password: &str) -> Browser {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let cookie = runtime.block_on(async {
            let page = client.get(format!("{url}/ui/signin")).send().await.unwrap();
            let signin = set_cookie(&page, "spate_signin").expect("a spate_signin cookie");
            let token = input_value(&page.text().await.unwrap(), "signin_token");
            let done = client
                .post(format!("{url}/ui/signin"))
                .header("cookie", signin)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&[
                    ("name", name),
                    ("password", password),
                    ("signin_token", &token),
                ]))
                .send()
                .await
                .unwrap();
            assert_eq!(done.status().as_u16(), 303, "sign-in of {name}");
            set_cookie(&done, "spate_session").expect("a spate_session cookie")
        });
        let mut browser = Browser {
            runtime,
            client,
            url: url.to_string(),
            cookie,
            csrf: String::new(),
        };
        let (_, page) = browser.get("/ui/subscriptions");
        browser.csrf = input_value(&page, "csrf");
        browser
    }

    /// `GET path` with the session: the status and the page.
    pub fn get(&self, path: &str) -> (u16, String) {
        self.runtime.block_on(async {
            let r = self
                .client
                .get(format!("{}{path}", self.url))
                .header("cookie", &self.cookie)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    }

    /// Posts the form of `fields` and the session's CSRF token to `path`.
    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_as_is(path, &all)
    }

    /// Posts the form of `fields` to `path` with the session cookie but
    /// without adding the CSRF token (a forged post).
    pub fn post_as_is(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        self.runtime.block_on(async {
            let r = self
                .client
                .post(format!("{}{path}", self.url))
                .header("cookie", &self.cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(fields))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    }
}
