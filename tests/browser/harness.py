"""What the dashboard's browser tests drive: Debian's chromium, headless, through its own chromedriver (never a
driver or browser Selenium would fetch), the wait for what a page shows, the clipboard, and the operator's
`sipline dashboard-link` that signs a browser in."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.server import SiplineProcess

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"  # Debian's chromium-driver, the same build as the browser
# Headless, and quiet: nothing the browser does on its own (updates, sync, field trials) leaves loopback.
CHROMIUM_ARGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,900",
)
# The "copy" buttons write with navigator.clipboard, which asks for these; granted for every origin
CLIPBOARD = ["clipboardReadWrite", "clipboardSanitizedWrite"]
LOGIN_URL = re.compile(r"http://127\.0\.0\.1:\d+/ui/login\?token=\S+")


def start_chromium(profile: Path) -> webdriver.Chrome:
    """A fresh headless chromium with its own profile directory: no cookie or storage from another test."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (*CHROMIUM_ARGS, f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console, saved when a test fails
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(20)  # a server that hangs fails the test, not the 300 s pytest timeout
        driver.execute_cdp_cmd("Browser.grantPermissions", {"permissions": CLIPBOARD})
    except BaseException:
        driver.quit()
        raise
    return driver


def wait_for(browser: webdriver.Chrome, css: str, text: str | None = None, timeout: float = 5) -> WebElement:
    """The first shown element matching `css` (whose text contains `text`, if given), once there is one.

    Raises: AssertionError naming what was awaited, the page's URL and the start of what it shows.
    """

    def found(driver: webdriver.Chrome) -> WebElement | None:
        for element in driver.find_elements(By.CSS_SELECTOR, css):
            if element.is_displayed() and (text is None or text in element.text):
                return element
        return None

    try:
        return WebDriverWait(browser, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(found)
    except TimeoutException:
        raise AssertionError(f"no {css!r}{f' showing {text!r}' if text is not None else ''} after {timeout} s "
                             f"at {browser.current_url}; the page shows: {shown_text(browser)[:1000]!r}") from None


def shown_text(browser: webdriver.Chrome) -> str:
    try:
        return browser.find_element(By.TAG_NAME, "body").text
    except WebDriverException:
        return ""


def clipboard_text(browser: webdriver.Chrome) -> str:
    """What the page's origin reads from the clipboard (navigator.clipboard: the permission start_chromium grants)."""
    return browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "navigator.clipboard.readText().then(done, error => done('clipboard refused: ' + error));"
    )


def dashboard_link(server: SiplineProcess, *args: str) -> str:
    """The sign-in URL `sipline dashboard-link` prints for this server's data dir (`--portal D`, `--user ID`, ...).

    It prints one line, `http://127.0.0.1:<port>/ui/login?token=<token>`; anything else fails the test.
    """
    done = subprocess.run(
        [sys.executable, "-m", "sipline", "dashboard-link", "--data-dir", str(server.data_dir), *args],
        capture_output=True, text=True, timeout=60, env=server.env,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and LOGIN_URL.fullmatch(lines[0]), f"not one sign-in URL: {done.stdout!r}"
    return lines[0]


def save_page(browser: webdriver.Chrome, into: Path) -> str:
    """The page as a failing test left it: screenshot, source and console under `into`; says where they are."""
    into.mkdir(parents=True, exist_ok=True)
    said = []
    for what, name, save in (
        ("screenshot", "screenshot.png", lambda path: browser.save_screenshot(str(path))),
        ("page source", "page.html", lambda path: path.write_text(browser.page_source)),
        ("console", "console.log", lambda path: path.write_text(console(browser))),
    ):
        try:
            save(into / name)
            said.append(f"{what}: {into / name}")
        except WebDriverException as error:  # a browser that crashed saves what it can
            said.append(f"{what}: not saved ({error.msg})")
    try:
        said.insert(0, f"url: {browser.current_url}")
    except WebDriverException as error:
        said.insert(0, f"url: unknown ({error.msg})")
    return "\n".join([*said, f"shown text: {shown_text(browser)[:2000]!r}"])


def console(browser: webdriver.Chrome) -> str:
    """What the page wrote to its console since the last call (the `goog:loggingPrefs` start_chromium sets)."""
    return "".join(f"{entry['level']} {entry['message']}\n" for entry in browser.get_log("browser"))


def add_line(process: SiplineProcess, **fields) -> dict:
    """A line added through the process's webhook (`voximplant.sip.add`); its `result`."""
    body = {"SERVER": "sip.example.invalid", "LOGIN": "100", "PASSWORD": "secret", **fields}
    answer = httpx.post(process.webhook + "voximplant.sip.add", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]
