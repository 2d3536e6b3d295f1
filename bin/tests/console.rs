//! The web console end to end: a real `spate run`, users added with
//! `spate user add`, events pushed with POST /v1/logs, and a real headless
//! Chromium driven through Selenium (bin/tests/browser/console.py): sign-in
//! with a bad then a good password, a planted session id replaced, search
//! (histogram and rows), alerts fired by the pushed error burst, the API
//! with a session and its CSRF token, CSRF-less posts refused, a viewer
//! refused the admin page, sign-out, and the audit trail of all of it.
//! Screenshots of every page go to `$CARGO_TARGET_TMPDIR/console-screenshots`.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spate_test_support::console::{add_user, post_json, query};
use spate_test_support::lake::python;
use spate_test_support::service::Service;
use support::spate;

const TOKEN: &str = "t0ken";
const ADMIN: (&str, &str) = ("ada", "admin-pass-9f2k");
const VIEWER: (&str, &str) = ("vic", "viewer-pass-3u8q");
const GREP: &str = "payment failed";

/// chromedriver: `SPATE_TEST_CHROMEDRIVER`, else Debian's
/// (`bash scripts/test.sh` installs `chromium` and `chromium-driver`).
fn chromedriver() -> String {
    let path =
        std::env::var("SPATE_TEST_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    match Command::new(&path).arg("--version").output() {
        Ok(out) if out.status.success() => path,
        _ => panic!(
            "chromedriver not found ({path}): the console test needs Chromium and its driver; \
             run it with `bash scripts/test.sh`, which installs them, or set SPATE_TEST_CHROMEDRIVER"
        ),
    }
}

/// One event at `ts_ms`.
fn event(ts_ms: i64, service: &str, level: &str, message: &str) -> String {
    let ts = spate_operators::sinks::hot::query::rfc3339_ms(ts_ms);
    json!({"timestamp": ts, "level": level, "service": service, "message": message}).to_string()
}

fn count(url: &str, sql: &str) -> i64 {
    let (status, answer) = query(url, sql, TOKEN);
    assert_eq!(status, 200, "{answer}");
    answer["rows"][0][0].as_i64().unwrap()
}

/// Polls `count(sql)` until it reaches `want` (60 s at most).
fn wait_count(service: &Service, sql: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = count(&service.url, sql);
        if n >= want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: {n} of {want} after 60 s\n{}",
            service.output()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn rows(seen: &Value, key: &str) -> Vec<Vec<String>> {
    seen[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {seen}"))
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn the_console_signs_in_searches_shows_alerts_and_audits_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(support::SPATE, &data, ADMIN.0, "admin", ADMIN.1);
    add_user(support::SPATE, &data, VIEWER.0, "viewer", VIEWER.1);
    // Ten-second windows that close two seconds after the traffic stops, so
    // that the burst pushed from the browser script alerts within seconds.
    let config = format!(
        "[http]\nauth_token = \"{TOKEN}\"\n[pipeline]\ndecode_workers = 1\n\
         [windows]\nsize = \"10s\"\nallowed_lateness = \"1s\"\nidle_timeout = \"2s\"\n"
    );
    let service = Service::start(support::SPATE, &data, &config);

    // An error burst (and a CRITICAL) in one window five minutes ago, then
    // current events that move the watermark past it.
    let window = 10_000;
    let now = spate_operators::event::wall_clock_ms();
    let w0 = now - now.rem_euclid(window) - 30 * window;
    let mut body = Vec::new();
    for i in 0..14 {
        body.push(event(
            w0 + 1000 + i * 100,
            "checkout",
            "error",
            &format!("{GREP}: card declined #{i}"),
        ));
    }
    body.push(event(
        w0 + 3000,
        "checkout",
        "critical",
        "database unreachable",
    ));
    for i in 0..30 {
        body.push(event(
            w0 + 4000 + i * 100,
            "checkout",
            "info",
            "order placed",
        ));
    }
    for i in 0..5 {
        body.push(event(
            now - 120_000 + i * 1000,
            "search",
            "warning",
            "slow response",
        ));
    }
    for i in 0..20 {
        body.push(event(now - 30_000 + i * 1000, "search", "info", "query ok"));
    }
    let (status, answer) = post_json(&service.url, "/v1/logs", body.join("\n"), Some(TOKEN));
    assert_eq!(status, 200, "{answer}");

    // With users, the read API wants the token (or a session).
    let (status, _) = post_json(
        &service.url,
        "/v1/query",
        json!({"sql": "SELECT 1"}).to_string(),
        None,
    );
    assert_eq!(status, 401);
    wait_count(&service, "SELECT count(*) FROM logs", 70);
    wait_count(
        &service,
        "SELECT count(*) FROM alerts WHERE rule = 'error_burst' AND state = 'firing'",
        1,
    );

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/console.py");
    let mut driver = Command::new(python());
    driver.arg(&script);
    if let Ok(chromium) = std::env::var("SPATE_TEST_CHROMIUM") {
        driver.args(["--chromium", &chromium]);
    }
    let out = driver
        .args(["--url", &service.url, "--chromedriver", &chromedriver()])
        .arg("--screenshots")
        .arg(&shots)
        .args(["--admin", &format!("{}:{}", ADMIN.0, ADMIN.1)])
        .args(["--viewer", &format!("{}:{}", VIEWER.0, VIEWER.1)])
        .args(["--grep", GREP, "--token", TOKEN])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser script failed:\n{stdout}\n{}\nservice:\n{}",
        String::from_utf8_lossy(&out.stderr),
        service.output()
    );
    println!("console screenshots: {}", shots.display());
    let seen: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let text = |key: &str| seen[key].as_str().unwrap_or_default().to_string();
    let number = |key: &str| seen[key].as_i64().unwrap_or(-1);

    // Sign-in: the form first, a wrong password refused, then a new session
    // id (never the one planted before).
    assert!(text("unsigned_redirect").ends_with("/ui/signin"), "{seen}");
    assert_eq!(text("bad_password_message"), "wrong name or password");
    assert!(text("after_signin_url").ends_with("/ui"), "{seen}");
    let admin_session = text("admin_session");
    assert_eq!(admin_session.len(), 64);
    assert_ne!(admin_session, text("planted_session"));
    assert_eq!(number("planted_status"), 303);
    // The landing page: the 15 ERROR and CRITICAL events, from the hot store.
    assert_eq!(number("recent_error_rows"), 15, "{seen}");

    // Search: the histogram and the rows of the events just pushed.
    assert!(number("histogram_rects") >= 3, "{seen}");
    assert!(text("histogram_title").starts_with("70 events"), "{seen}");
    assert_eq!(number("all_rows"), 70);
    // The rows streamed: the page's streaming status cleared once loaded, and
    // the answer chunked, its rows all in before the count that ends it.
    assert_eq!(text("stream_status"), "", "{seen}");
    assert_eq!(seen["stream_cancel_shown"], false, "{seen}");
    let stream = &seen["stream_chunks"];
    assert!(stream["length"].is_null(), "chunked, no length: {stream}");
    let chunks = stream["chunks"].as_array().unwrap();
    assert_eq!(chunks.last().unwrap(), &json!([2, true]), "{stream}");
    assert!(
        chunks.contains(&json!([1, false])),
        "the first row arrives before the second and the end: {stream}"
    );
    assert_eq!(number("grep_rows"), 14, "{seen}");
    for message in seen["grep_messages"].as_array().unwrap() {
        assert!(message.as_str().unwrap().starts_with(GREP), "{seen}");
    }
    assert!(
        text("grep_histogram_title").starts_with("14 events"),
        "{seen}"
    );
    assert_eq!(
        rows(&seen, "sql_rows"),
        [["checkout", "45"], ["search", "25"]],
        "{seen}"
    );

    // Alerts: error_burst fired for checkout, with its window's counts; it
    // is listed as firing unless a later window resolved it.
    let history = rows(&seen, "history");
    let burst = history
        .iter()
        .find(|r| r[1] == "firing" && r[3] == "error_burst" && r[4] == "checkout")
        .unwrap_or_else(|| panic!("error_burst did not fire: {seen}"));
    assert_eq!(
        (&*burst[10], &*burst[11], &*burst[13], &*burst[14]),
        ("45", "30", "14", "1"),
        "{seen}"
    );
    let newest = history
        .iter()
        .find(|r| r[3] == "error_burst" && r[4] == "checkout")
        .unwrap();
    let firing = rows(&seen, "firing");
    assert_eq!(
        firing
            .iter()
            .any(|r| r[3] == "error_burst" && r[4] == "checkout"),
        newest[1] == "firing",
        "{seen}"
    );
    let rules: Vec<&str> = seen["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(rules, ["critical", "error_burst", "error_rate", "silence"]);

    // The API with a session: its CSRF token needed on a POST.
    assert_eq!(number("api_with_csrf"), 200, "{seen}");
    assert_eq!(number("api_without_csrf"), 403, "{seen}");
    // CSRF-less form posts refused; the session lives on.
    assert_eq!(number("signout_without_csrf"), 403, "{seen}");
    assert_eq!(number("signout_wrong_csrf"), 403, "{seen}");
    assert_eq!(number("still_signed_in"), 200, "{seen}");

    // Sign-out ends the session for good.
    assert!(text("after_signout_url").ends_with("/ui/signin"), "{seen}");
    assert!(seen["cookie_after_signout"].is_null(), "{seen}");
    assert_eq!(seen["old_admin_session"], json!([303, "/ui/signin"]));

    // A viewer: a session of their own, no admin pages.
    assert_ne!(text("viewer_session"), admin_session);
    assert_eq!(seen["viewer_nav_has_audit"], false);
    assert_eq!(number("viewer_audit_status"), 403);
    assert_eq!(text("viewer_audit_heading"), "Forbidden");
    // The audit table is for admins and the token only.
    assert_eq!(number("viewer_audit_table"), 400, "{seen}");
    assert_eq!(number("viewer_logs_query"), 200, "{seen}");
    assert!(
        count(
            &service.url,
            "SELECT count(*) FROM audit WHERE action = 'signin' AND outcome = 'denied'"
        ) >= 1
    );

    // The viewer's webhook got the next alert of `payments`, then was
    // unsubscribed.
    let subscriptions = rows(&seen, "subscriptions");
    assert_eq!(subscriptions.len(), 1, "{seen}");
    let sub = &subscriptions[0];
    assert_eq!(sub[1], VIEWER.0);
    // The URL's path is not shown (a webhook's secret is often there).
    assert!(
        sub[2].starts_with("http://127.0.0.1:") && sub[2].ends_with("/…"),
        "{seen}"
    );
    assert_eq!((&*sub[3], &*sub[4]), ("payments", "ERROR, CRITICAL"));
    assert_eq!(number("subscribe_without_csrf"), 403, "{seen}");
    assert_eq!(number("burst_status"), 200);
    let hooks = seen["webhook"].as_array().unwrap();
    let notice = hooks
        .iter()
        .find(|n| n["rule"] == "error_burst")
        .unwrap_or_else(|| {
            panic!(
                "no error_burst notice at the webhook: {seen}\n{}",
                service.output()
            )
        });
    assert_eq!(notice["service"], "payments");
    assert_eq!(notice["state"], "firing");
    assert_eq!(notice["value"], 12.0);
    assert_eq!(notice["subscription"], sub[0].parse::<i64>().unwrap());
    assert!(hooks.iter().all(|n| n["service"] == "payments"), "{seen}");
    let delivered: usize = text("delivered").parse().unwrap();
    assert!((1..=hooks.len()).contains(&delivered), "{seen}");

    // The audit trail: who, from where, what.
    let audit = rows(&seen, "audit");
    let has = |who: &str, action: &str, outcome: &str, detail: &str| {
        audit.iter().any(|r| {
            r[1] == who
                && r[2].starts_with("127.0.0.1:")
                && r[3] == action
                && r[4] == outcome
                && r[5].contains(detail)
        })
    };
    assert!(
        has("-", "signin", "denied", &format!("user \"{}\"", ADMIN.0)),
        "{audit:?}"
    );
    assert!(has(ADMIN.0, "signin", "ok", "role admin"), "{audit:?}");
    assert!(has(VIEWER.0, "signin", "ok", "role viewer"), "{audit:?}");
    assert!(has(ADMIN.0, "query", "ok", GREP), "{audit:?}");
    assert!(has(ADMIN.0, "query", "ok", "GROUP BY service"), "{audit:?}");
    assert!(
        has(ADMIN.0, "query", "ok", "SELECT count(*) AS n FROM logs"),
        "{audit:?}"
    );
    assert!(
        has("token", "query", "ok", "FROM alerts WHERE rule"),
        "{audit:?}"
    );
    // The search cancelled from the page: its request was dropped, which
    // cancelled the query (and said so in the audit).
    assert_eq!(text("cancel_status"), "Search cancelled.");
    assert!(text("cancel_url").ends_with("/ui/search"), "{seen}");
    // ...and nothing runs on: the query's time limit (30 s) is still ahead.
    assert_eq!(service.metric("spate_queries_running"), Some(0.0));
    assert!(
        has(
            ADMIN.0,
            "query",
            "cancelled",
            "generate_series(1, 100000000000)"
        ),
        "{audit:?}"
    );
    assert!(has(ADMIN.0, "signout", "denied", "CSRF"), "{audit:?}");
    assert!(has(ADMIN.0, "signout", "ok", ""), "{audit:?}");
    assert!(
        has(VIEWER.0, "admin_page", "denied", "/ui/audit"),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|r| r[1].starts_with("cli:") && r[3] == "user_add" && r[5].contains(VIEWER.0)),
        "{audit:?}"
    );
    assert_eq!(
        rows(&seen, "users"),
        [[ADMIN.0, "admin"], [VIEWER.0, "viewer"]]
    );

    let shots_taken = seen["screenshots"].as_array().unwrap();
    assert_eq!(shots_taken.len(), 15);
    for shot in shots_taken {
        let size = std::fs::metadata(shot.as_str().unwrap()).unwrap().len();
        assert!(size > 1000, "{shot} is {size} bytes");
    }

    // Changing a user (a new role or password) or removing one signs them
    // out at once.
    let session = text("final_admin_session");
    assert_eq!(page_status(&service.url, &session), 200);
    let mut change = spate()
        .args([
            "user",
            "add",
            ADMIN.0,
            "--role",
            "viewer",
            "--password-stdin",
            "--data-dir",
        ])
        .arg(&data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(change.stdin.take().unwrap(), "{}", ADMIN.1).unwrap();
    let said = change.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&said.stdout),
        format!("user {} updated (viewer)\n", ADMIN.0)
    );
    assert_eq!(page_status(&service.url, &session), 303);
    let removed = support::stdout_of(
        spate()
            .args(["user", "remove", VIEWER.0, "--data-dir"])
            .arg(&data),
    );
    assert_eq!(removed, format!("user {} removed\n", VIEWER.0));
    let listed = support::stdout_of(
        spate()
            .args(["user", "list", "--format", "csv", "--data-dir"])
            .arg(&data),
    );
    assert!(listed.starts_with("name,role,created\n"), "{listed}");
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(listed.contains(&format!("{},viewer,", ADMIN.0)), "{listed}");
    assert!(
        count(
            &service.url,
            "SELECT count(*) FROM audit WHERE action = 'user_remove'"
        ) == 1
    );

    let (status, output) = service.stop();
    assert!(status.success(), "{output}");
}

/// The status of `GET /ui` with session cookie `session` (redirects not
/// followed).
fn page_status(url: &str, session: &str) -> u16 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{url}/ui"))
            .header("cookie", format!("spate_session={session}"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}
