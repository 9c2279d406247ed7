#!/usr/bin/env python3
"""The operators' console (/ui/) in a real browser: headless Chromium driven
through ChromeDriver (Debian's chromium and chromium-driver, Selenium from
PyPI), against `portalgate demo` with an admin token, on free loopback ports.

Asserts what a person sees: the token is asked for and a wrong one refused;
the rule table, generation and last reload; a blocked request appearing live
in the table; filters narrowing the table and the live feed (a tenant in
another GUID spelling, an action), a refused filter leaving the table as it
was and its hostile value shown as text; the chart and counts matching the
requests sent; a reload showing up; no personal data on the page.

Usage: python3 tests/browser/console_test.py target/debug/portalgate [--screenshots DIR]
Exits 0 when every check holds, 1 otherwise (the failing check is printed).
"""
import http.client as http_client
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

TOKEN = "console-test-token"
DE = "0a1b2c3d-0000-4000-8000-00000000de01"
GLOBAL = "0a1b2c3d-0000-4000-8000-0000000000a1"
USER = "jane.doe@contoso.example"
WAIT = 15  # seconds any one thing the page should show may take


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, headers=None, body=None):
    req = urllib.request.Request(url, method=method, headers=headers or {}, data=body)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Console:
    """The demo, the browser, and what a person does with them."""

    def __init__(self, binary, workdir, shots):
        self.shots = shots
        self.proxy, backend, admin = free_port(), free_port(), free_port()
        self.admin = f"http://127.0.0.1:{admin}"
        self.demo = subprocess.Popen(
            [binary, "demo", "--listen", f"127.0.0.1:{self.proxy}",
             "--backend-listen", f"127.0.0.1:{backend}", "--admin-listen", f"127.0.0.1:{admin}"],
            cwd=workdir, env=dict(os.environ, PORTALGATE_ADMIN_TOKEN=TOKEN),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        # The banner names the console: read it as a newcomer would.
        banner = ""
        for line in self.demo.stdout:
            banner += line
            if "console" in line:
                break
        assert f"{self.admin}/ui/" in banner, f"the banner names no console:\n{banner}"
        deadline = time.time() + WAIT
        while http("GET", self.admin + "/readyz")[0] != 200:
            assert time.time() < deadline, "the demo never became ready"
            time.sleep(0.1)
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                  "--window-size=1400,1100", f"--user-data-dir={workdir}/chromium"]:
            opts.add_argument(a)
        self.browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        self.sent = {"explain": 0, "redirect": 0}

    def close(self):
        try:
            self.browser.quit()
        finally:
            self.demo.terminate()
            self.demo.wait(10)

    # ---- the proxy's side ----

    def explain(self, tenant=DE):
        status, _ = http("POST", f"http://127.0.0.1:{self.proxy}/v1/customers/{tenant}/users",
                         {"Accept": "application/json", "Content-Type": "application/json"},
                         json.dumps({"userPrincipalName": USER}).encode())
        assert status == 403, status
        self.sent["explain"] += 1

    def redirect(self):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.proxy}/dashboard/account/usermanagement",
            headers={"Host": "partnercenter.microsoftonline.de", "Accept": "text/html"})

        class NoFollow(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None
        try:
            urllib.request.build_opener(NoFollow).open(req, timeout=5)
            raise AssertionError("the browser request was not redirected")
        except urllib.error.HTTPError as e:
            assert e.code in (302, 303), e.code
        self.sent["redirect"] += 1

    def password_reset(self):
        status, _ = http("PATCH",
                         f"http://127.0.0.1:{self.proxy}/v1/customers/{DE}/users/{USER}",
                         {"Accept": "application/json", "Content-Type": "application/json"},
                         b'{"passwordProfile":{"forceChangePassword":true}}')
        assert status == 403, status
        self.sent["explain"] += 1

    # ---- the person's side ----

    def find(self, css):
        return self.browser.find_element(By.CSS_SELECTOR, css)

    def until(self, what, check):
        try:
            # The page replaces rows as it updates: an element read mid-way
            # is stale, and the check is simply tried again.
            return WebDriverWait(self.browser, WAIT, poll_frequency=0.1,
                                 ignored_exceptions=(StaleElementReferenceException,
                                                     NoSuchElementException)).until(
                lambda _: check())
        except Exception as e:
            self.shot("failure")
            raise AssertionError(f"the page never showed {what}") from e

    def text(self, css):
        return self.find(css).text

    def rows(self):
        """The decisions table as a person reads it: (action, rule, tenant) per row."""
        out = []
        for tr in self.browser.find_elements(By.CSS_SELECTOR, "#decisions tbody tr"):
            cells = [td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            out.append((cells[1], cells[4], cells[6]))
        return out

    def filter(self, **values):
        form = self.find("#filters")
        for name in ["rule", "tenant", "status", "since", "until", "path"]:
            box = form.find_element(By.NAME, name)
            box.clear()
            box.send_keys(values.get(name, ""))
        for name in ["action", "mode"]:
            Select(form.find_element(By.NAME, name)).select_by_value(values.get(name, ""))
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    def shot(self, name):
        if self.shots:
            self.shots.mkdir(parents=True, exist_ok=True)
            self.browser.save_screenshot(str(self.shots / f"console-{name}.png"))


def run(c):
    b = c.browser
    # 1. The page asks for the token; a wrong one is refused, the right one opens it.
    b.get(c.admin + "/ui/")
    c.until("the token form", lambda: c.find("#token-form").is_displayed())
    assert not c.find("#main").is_displayed()
    c.find("#token").send_keys("not-the-token")
    c.find("#token-form button").click()
    c.until("the refusal", lambda: "refused" in c.text("#token-error"))
    c.find("#token").clear()
    c.find("#token").send_keys(TOKEN)
    c.find("#token-form button").click()
    c.until("the console", lambda: c.find("#main").is_displayed())
    print("ok: the token is asked for, a wrong one refused")

    # 2. The rule table, the generation, the last reload, the live feed.
    c.until("the rule table", lambda: "germany-customer-user-create" in c.text("#rules"))
    assert c.text("#generation") == "1", c.text("#generation")
    assert c.text("#last-reload") == "none since start", c.text("#last-reload")
    c.until("the live feed connected", lambda: c.text("#live") == "live")
    print(f"ok: {len(b.find_elements(By.CSS_SELECTOR, '#rules tbody tr'))} rules, generation 1, live")

    # 3. A blocked request appears live.
    c.explain()
    c.until("the blocked request", lambda: ("explain", "germany-customer-user-create", DE) in c.rows())
    c.redirect()
    c.until("the redirect", lambda: any(r[0] == "redirect" for r in c.rows()))
    c.password_reset()
    c.until("the password reset", lambda: any(r[1] == "germany-password-reset" for r in c.rows()))
    print(f"ok: blocked requests appear live ({len(c.rows())} rows)")

    # 4. The counts and the chart reflect what was sent.
    total = sum(c.sent.values())
    c.until(f"a total of {total}", lambda: c.text("#total") == str(total))

    def charted(action):
        return sum(int(r.get_attribute("data-count"))
                   for r in b.find_elements(By.CSS_SELECTOR, f"#chart rect[data-action={action}]"))
    c.until("the chart's bars", lambda: charted("explain") == c.sent["explain"]
            and charted("redirect") == c.sent["redirect"])

    # The same counts by rule, by tenant and by portal.
    def series(name):
        return sum(int(r.get_attribute("data-count")) for r in b.find_elements(
            By.CSS_SELECTOR, f"#chart rect[data-series='{name}']"))
    by = Select(c.find("#chart-by"))
    by.select_by_value("rule")
    c.until("the chart by rule", lambda: series("germany-customer-user-create") == 1
            and series("germany-password-reset") == 1 and series("germany-ui-partner-users") == 1)
    assert "germany-password-reset 1" in c.text("#legend"), c.text("#legend")
    by.select_by_value("tenant")
    # The redirect came through the Germany host: no tenant in it.
    c.until("the chart by tenant", lambda: series(DE) == 2 and series("-") == 1)
    by.select_by_value("portal")
    c.until("the chart by portal", lambda: series("https://portal.office.de/adminportal") == 2
            and series("https://portal.microsoftazure.de") == 1)
    by.select_by_value("action")
    by_rule = c.text("#by-rule")
    assert "germany-customer-user-create" in by_rule and "germany-password-reset" in by_rule, by_rule
    assert DE in c.text("#top-tenants"), c.text("#top-tenants")
    c.shot("overview")
    print(f"ok: chart and counts: {c.sent}")

    # 5. Filters narrow the table and the live feed.
    before = len(c.rows())
    c.filter(action="redirect")
    c.until("only redirects", lambda: c.rows() and all(r[0] == "redirect" for r in c.rows()))
    assert len(c.rows()) < before
    c.explain()
    c.redirect()
    c.until("the new redirect", lambda: len(c.rows()) == c.sent["redirect"])
    assert all(r[0] == "redirect" for r in c.rows()), c.rows()
    c.filter(tenant="{" + GLOBAL.upper() + "}")
    c.until("an empty table for the global tenant", lambda: not c.rows()
            and c.text("#shown").startswith("0 decisions"))
    c.filter(tenant="{" + DE.upper() + "}", action="explain")
    c.until("the Germany tenant's explanations",
            lambda: len(c.rows()) == c.sent["explain"] and all(r[2] == DE for r in c.rows()))
    c.shot("filtered")
    print("ok: filters narrow the table and the feed (action, tenant in braces and capitals)")

    # 6. A refused filter leaves the table as it was; its value is shown as text.
    kept = c.rows()
    hostile = "<img src=x onerror=\"document.title='pwned'\">"
    c.filter(tenant=DE, action="explain", status=hostile)
    c.until("the refusal of the filter", lambda: c.text("#filter-error").startswith("status:"))
    assert "<img src=x onerror=" in c.text("#filter-error"), c.text("#filter-error")
    assert not b.find_elements(By.CSS_SELECTOR, "#filter-error img"), "markup was rendered"
    assert b.title == "portalgate console", b.title
    assert c.rows() == kept
    c.explain()
    c.until("the feed still filtered as before", lambda: len(c.rows()) == len(kept) + 1)
    print("ok: a refused filter changes nothing and is shown as text")

    # 7. A reload shows up.
    status, body = http("POST", c.admin + "/reload", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, body
    c.until("the reload", lambda: c.text("#generation") == "2"
            and c.text("#last-reload").startswith("success"))
    print("ok: the reload shows: " + c.text("#last-reload"))

    # 8. No personal data: the user named in the requests is nowhere on the page.
    c.filter()
    c.until("every decision again", lambda: len(c.rows()) == sum(c.sent.values()))
    page = b.page_source
    assert USER not in page and "jane.doe" not in page, "a user identifier reached the page"
    c.shot("live")
    print("ok: no user identifier on the page")

    # 9. A burst: the counts stay exact (aggregated by the server), the table
    # keeps the newest 500 rows, the page stays live.
    burst = 3000
    started = time.time()
    conn = http_client.HTTPConnection("127.0.0.1", c.proxy, timeout=5)
    for _ in range(burst):
        conn.request("POST", f"/v1/customers/{DE}/users", body=b"{}",
                     headers={"Accept": "application/json", "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        assert r.status == 403, r.status
    conn.close()
    c.sent["explain"] += burst
    sent_in = time.time() - started
    total = sum(c.sent.values())
    c.until(f"a total of {total} after the burst", lambda: c.text("#total") == str(total))
    c.until("the newest 500 rows", lambda: len(c.rows()) == 500 and "newest 500" in c.text("#shown"))
    c.explain()
    c.until("a request after the burst, live", lambda: c.text("#total") == str(total + 1))
    print(f"ok: a burst of {burst} in {sent_in:.1f} s: total {total + 1}, 500 rows kept, "
          f"shown: {c.text('#shown')!r}")


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    binary = os.path.abspath(args[0])
    shots = pathlib.Path(args[args.index("--screenshots") + 1]) if "--screenshots" in args else None
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium fetch a driver
    workdir = tempfile.mkdtemp(prefix="portalgate-console-")
    c = None
    try:
        c = Console(binary, workdir, shots)
        run(c)
        print("console: every check holds")
        return 0
    except AssertionError as e:
        print(f"console: FAILED: {e}", file=sys.stderr)
        return 1
    finally:
        if c:
            c.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
