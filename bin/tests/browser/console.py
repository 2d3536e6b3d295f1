"""Drives the Spate web console in headless Chromium (Selenium), for
bin/tests/console.rs: sign-in with a bad then a good password, a session id
planted before sign-in, search (histogram and rows), alerts, the API with a
session, CSRF-less posts, the admin page as a viewer, sign-out, the audit
trail. Saves a screenshot of each page in --screenshots and prints what it
saw as one JSON object on its last line (the Rust test asserts on it).

Usage: console.py --url URL --screenshots DIR --chromedriver PATH
                  --admin NAME:PASSWORD --viewer NAME:PASSWORD
"""

import argparse
import http.client
import http.server
import json
import os
import sys
import threading
import time
import traceback
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

PLANTED = "ab" * 32
# A query that runs for minutes: counting 10^11 generated rows.
LONG_SQL = "SELECT count(*) AS n FROM generate_series(1, 100000000000)"
# One row at once, the other after counting a few million numbers.
STREAM_SQL = ("SELECT n FROM (SELECT CAST(1 AS BIGINT) AS n UNION ALL "
              "SELECT count(*) AS n FROM generate_series(1, 30000000))")


class Hook(http.server.BaseHTTPRequestHandler):
    """A webhook receiver: keeps every POSTed JSON body."""

    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def rfc3339(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--screenshots", required=True)
    p.add_argument("--chromedriver", required=True)
    p.add_argument("--chromium", default="")
    p.add_argument("--admin", required=True)
    p.add_argument("--viewer", required=True)
    p.add_argument("--grep", required=True)
    p.add_argument("--token", required=True)
    args = p.parse_args()
    os.makedirs(args.screenshots, exist_ok=True)

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--disable-gpu", "--window-size=1400,1000", "--lang=en-US"):
        options.add_argument(flag)
    if args.chromium:
        options.binary_location = args.chromium
    driver = webdriver.Chrome(service=Service(executable_path=args.chromedriver), options=options)
    driver.set_page_load_timeout(60)
    seen = {}
    try:
        run(driver, args, seen)
    finally:
        driver.quit()
    print(json.dumps(seen))


def run(driver, args, seen):
    url = args.url.rstrip("/")
    admin, admin_password = args.admin.split(":", 1)
    viewer, viewer_password = args.viewer.split(":", 1)
    wait = WebDriverWait(driver, 60)
    shots = []

    def shot(name):
        path = os.path.join(args.screenshots, name + ".png")
        driver.save_screenshot(path)
        shots.append(path)

    def session_cookie():
        c = driver.get_cookie("spate_session")
        return c["value"] if c else None

    def sign_in(name, password):
        driver.get(url + "/ui/signin")
        wait.until(EC.presence_of_element_located((By.ID, "name")))
        driver.find_element(By.ID, "name").send_keys(name)
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.ID, "signin").click()

    def gone(element):
        """A wait condition: `element` left the document. Chrome answers a
        node of the page being replaced with "does not belong to the
        document" rather than a stale reference while it navigates: gone
        too."""
        def check(_driver):
            try:
                element.is_enabled()
                return False
            except StaleElementReferenceException:
                return True
            except WebDriverException as e:
                if "does not belong to the document" in str(e):
                    return True
                raise
        return check

    def submit_search():
        """Runs the search form and waits for the new page."""
        page = driver.find_element(By.TAG_NAME, "main")
        driver.find_element(By.ID, "run-search").click()
        wait.until(gone(page))
        wait.until(EC.presence_of_element_located((By.ID, "result-count")))

    def status_of(path, method="GET", body=None, headers=None):
        """Fetches `path` from the page (the browser's cookies go along)."""
        return driver.execute_async_script(
            """
            const [path, method, body, headers, done] = arguments;
            fetch(path, {method, body, headers, redirect: 'manual'})
              .then(r => done(r.status)).catch(e => done(String(e)));
            """,
            path, method, body, headers or {})

    def plain_get(path, cookie):
        """GET without following redirects, with cookie `spate_session`."""
        parsed = urllib.parse.urlparse(url)
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        conn.request("GET", path, headers={"Cookie": "spate_session=" + cookie})
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("Location")

    # Not signed in: /ui sends the browser to the sign-in form.
    driver.get(url + "/ui")
    wait.until(EC.presence_of_element_located((By.ID, "signin")))
    seen["unsigned_redirect"] = driver.current_url
    shot("01-signin")

    # An attacker's session id planted before sign-in.
    driver.add_cookie({"name": "spate_session", "value": PLANTED, "path": "/"})

    # Wrong password, then the right one.
    sign_in(admin, "not the password")
    err = wait.until(EC.presence_of_element_located((By.ID, "signin-error")))
    seen["bad_password_message"] = err.text
    shot("02-signin-wrong-password")
    sign_in(admin, admin_password)
    wait.until(EC.presence_of_element_located((By.ID, "signout")))
    seen["after_signin_url"] = driver.current_url
    admin_session = session_cookie()
    seen["planted_session"] = PLANTED
    seen["admin_session"] = admin_session
    seen["planted_status"] = plain_get("/ui", PLANTED)[0]
    seen["recent_error_rows"] = len(driver.find_elements(By.CSS_SELECTOR, "#recent-errors tbody tr"))
    shot("03-home-recent-errors")

    # Search: the last hour, every event.
    driver.get(url + "/ui/search")
    wait.until(EC.presence_of_element_located((By.ID, "range")))
    Select(driver.find_element(By.ID, "range")).select_by_value("1h")
    submit_search()
    seen["histogram_rects"] = len(driver.find_elements(By.CSS_SELECTOR, "#histogram rect"))
    seen["histogram_title"] = driver.find_element(By.ID, "histogram-title").get_attribute("textContent")
    seen["all_rows"] = len(driver.find_elements(By.CSS_SELECTOR, "#results tbody tr"))
    shot("04-search-all")
    # The rows streamed in: once the page has loaded, the streaming status
    # is gone and the Cancel button hidden again.
    seen["stream_status"] = driver.find_element(By.ID, "search-status").text
    seen["stream_cancel_shown"] = driver.find_element(By.ID, "cancel-search").is_displayed()
    # A search whose first row is ready at once and whose second takes a
    # while, read as the browser receives it: chunked (no length), the first
    # row shown long before the second and the count that ends the table.
    seen["stream_chunks"] = driver.execute_async_script(
        """
        const [sql, done] = arguments;
        fetch('/ui/search?range=1h&sql=' + encodeURIComponent(sql)).then(async (r) => {
          const reader = r.body.getReader();
          const decoder = new TextDecoder();
          let text = '';
          const chunks = [];
          for (;;) {
            const {value, done: end} = await reader.read();
            if (end) break;
            text += decoder.decode(value, {stream: true});
            chunks.push([(text.match(/<tr><td>/g) || []).length, text.includes('id="result-count"')]);
          }
          done({length: r.headers.get('content-length'), chunks});
        }).catch((e) => done(String(e)));
        """,
        STREAM_SQL)

    # Free text and severity.
    Select(driver.find_element(By.ID, "severity")).select_by_value("ERROR")
    q = driver.find_element(By.ID, "q")
    q.clear()
    q.send_keys(args.grep)
    submit_search()
    rows = driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    seen["grep_rows"] = len(rows)
    seen["grep_messages"] = sorted({r.find_elements(By.TAG_NAME, "td")[-1].text for r in rows})
    seen["grep_histogram_title"] = driver.find_element(By.ID, "histogram-title").get_attribute("textContent")
    shot("05-search-grep")

    # Raw SQL over the filtered logs.
    driver.get(url + "/ui/search")
    sql = driver.find_element(By.ID, "sql")
    sql.send_keys("SELECT service, count(*) AS n FROM logs GROUP BY service ORDER BY service")
    submit_search()
    seen["sql_rows"] = [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    ]
    shot("06-search-sql")

    # A long search, cancelled from the page with its Cancel button 1.5 s
    # after it starts (both clicks from the page's own script, so that the
    # driver is not waiting for the page load in between).
    driver.get(url + "/ui/search")
    wait.until(EC.presence_of_element_located((By.ID, "result-count")))
    driver.find_element(By.ID, "sql").send_keys(LONG_SQL)
    driver.execute_script("""
        document.getElementById('run-search').click();
        setTimeout(() => document.getElementById('cancel-search').click(), 1500);
    """)
    wait.until(EC.text_to_be_present_in_element((By.ID, "search-status"), "cancelled"))
    seen["cancel_status"] = driver.find_element(By.ID, "search-status").text
    seen["cancel_url"] = driver.current_url
    shot("06b-search-cancelled")

    # Alerts.
    driver.get(url + "/ui/alerts")
    wait.until(EC.presence_of_element_located((By.ID, "rules")))
    seen["firing"] = [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in driver.find_elements(By.CSS_SELECTOR, "#firing tbody tr")
    ]
    seen["history"] = [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in driver.find_elements(By.CSS_SELECTOR, "#alert-history tbody tr")
    ]
    seen["rules"] = [
        tr.find_elements(By.TAG_NAME, "td")[0].text
        for tr in driver.find_elements(By.CSS_SELECTOR, "#rules tbody tr")
    ]
    shot("07-alerts")

    # The API with the session: with its CSRF token, and without.
    csrf = driver.find_element(By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")
    body = json.dumps({"sql": "SELECT count(*) AS n FROM logs"})
    seen["api_with_csrf"] = status_of("/v1/query", "POST", body, {"X-CSRF-Token": csrf})
    seen["api_without_csrf"] = status_of("/v1/query", "POST", body)

    # A state-changing form post without the CSRF token is refused, and the
    # session lives on.
    seen["signout_without_csrf"] = status_of(
        "/ui/signout", "POST", "csrf=", {"Content-Type": "application/x-www-form-urlencoded"})
    seen["signout_wrong_csrf"] = status_of(
        "/ui/signout", "POST", "csrf=" + "0" * 64, {"Content-Type": "application/x-www-form-urlencoded"})
    seen["still_signed_in"] = plain_get("/ui", admin_session)[0]

    # Audit (admin).
    driver.get(url + "/ui/audit")
    wait.until(EC.presence_of_element_located((By.ID, "audit")))
    shot("08-audit-admin")

    # Sign out: the id is dead.
    driver.find_element(By.ID, "signout").click()
    wait.until(EC.presence_of_element_located((By.ID, "signin")))
    seen["after_signout_url"] = driver.current_url
    seen["cookie_after_signout"] = session_cookie()
    seen["old_admin_session"] = list(plain_get("/ui", admin_session))
    shot("09-signed-out")

    # A viewer: no admin pages.
    sign_in(viewer, viewer_password)
    wait.until(EC.presence_of_element_located((By.ID, "signout")))
    seen["viewer_session"] = session_cookie()
    seen["viewer_nav_has_audit"] = bool(driver.find_elements(By.CSS_SELECTOR, "nav a[href='/ui/audit']"))
    seen["viewer_audit_status"] = status_of("/ui/audit")
    viewer_csrf = driver.find_element(By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")
    seen["viewer_audit_table"] = status_of(
        "/v1/query", "POST", json.dumps({"sql": "SELECT count(*) FROM audit"}),
        {"X-CSRF-Token": viewer_csrf})
    seen["viewer_logs_query"] = status_of(
        "/v1/query", "POST", json.dumps({"sql": "SELECT count(*) FROM logs"}),
        {"X-CSRF-Token": viewer_csrf})
    driver.get(url + "/ui/audit")
    seen["viewer_audit_heading"] = driver.find_element(By.TAG_NAME, "h1").text
    shot("10-viewer-forbidden")

    # The viewer subscribes a webhook to the alerts of `payments`.
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    hook_url = "http://127.0.0.1:%d/hook" % hook.server_address[1]
    driver.get(url + "/ui/subscriptions")
    wait.until(EC.presence_of_element_located((By.ID, "subscribe-form")))
    driver.find_element(By.ID, "url").send_keys(hook_url)
    driver.find_element(By.ID, "services").send_keys("payments")
    sev = driver.find_element(By.ID, "severities")
    sev.clear()
    sev.send_keys("ERROR,CRITICAL")
    driver.find_element(By.ID, "subscribe").click()
    wait.until(EC.presence_of_element_located((By.ID, "subscriptions")))
    seen["subscriptions"] = [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")][:5]
        for tr in driver.find_elements(By.CSS_SELECTOR, "#subscriptions tbody tr")
    ]
    seen["subscribe_without_csrf"] = status_of(
        "/ui/subscriptions", "POST", "url=" + urllib.parse.quote(hook_url),
        {"Content-Type": "application/x-www-form-urlencoded"})
    shot("11-subscribed")

    # An error burst of `payments`, stamped now: its window closes by the
    # idle timeout and the alert reaches the webhook.
    now = int(time.time() * 1000) - 500
    burst = "\n".join(json.dumps({"timestamp": rfc3339(now), "level": "error",
                                   "service": "payments", "message": "charge failed"})
                       for _ in range(12))
    push = urllib.request.Request(url + "/v1/logs", data=burst.encode(), method="POST",
                                  headers={"Authorization": "Bearer " + args.token})
    with urllib.request.urlopen(push, timeout=30) as r:
        seen["burst_status"] = r.status
    deadline = time.time() + 90
    while time.time() < deadline and not Hook.received:
        time.sleep(0.2)
    seen["webhook"] = list(Hook.received)
    # The delivery is recorded once the webhook has answered.
    while True:
        driver.get(url + "/ui/subscriptions")
        wait.until(EC.presence_of_element_located((By.ID, "subscriptions")))
        seen["delivered"] = driver.find_element(
            By.CSS_SELECTOR, "#subscriptions tbody tr td:nth-child(7)").text
        if seen["delivered"] != "0" or time.time() > deadline:
            break
        time.sleep(0.5)
    shot("12-delivered")
    driver.find_element(By.CSS_SELECTOR, "button.unsubscribe").click()
    wait.until(EC.presence_of_element_located((By.ID, "subscriptions-none")))
    shot("13-unsubscribed")
    hook.shutdown()
    driver.find_element(By.ID, "signout").click()
    wait.until(EC.presence_of_element_located((By.ID, "signin")))

    # The admin reads the audit trail.
    sign_in(admin, admin_password)
    wait.until(EC.presence_of_element_located((By.ID, "signout")))
    driver.get(url + "/ui/audit")
    wait.until(EC.presence_of_element_located((By.ID, "audit")))
    seen["audit"] = [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in driver.find_elements(By.CSS_SELECTOR, "#audit tbody tr")
    ]
    seen["users"] = [
        [td.text for td in tr.find_elements(By.TAG_NAME, "td")][:2]
        for tr in driver.find_elements(By.CSS_SELECTOR, "#users tbody tr")
    ]
    shot("14-audit-final")
    seen["final_admin_session"] = session_cookie()
    seen["screenshots"] = shots


if __name__ == "__main__":
    try:
        main()
    except Exception:  # the Rust side shows this with the service's log
        traceback.print_exc()
        sys.exit(1)
