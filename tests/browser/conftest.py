"""Fixtures of the dashboard's browser tests: a real `sipline serve`, and a fresh headless chromium per test whose
page is saved (screenshot, source, console) when the test fails."""

from __future__ import annotations

import pytest

from tests.browser.harness import save_page, start_chromium
from tests.integration.server import SiplineProcess
from tests.interop.conftest import FAST

BROWSER = pytest.StashKey[tuple]()  # (the driver, where a failure saves its page)


@pytest.fixture
def sipline(tmp_path):
    """On SQLite in the data dir, or a fresh PostgreSQL database with SIPLINE_TEST_STORE=postgresql (tests/stores.py)."""
    process = SiplineProcess(tmp_path / "data").start()
    yield process
    process.stop()


@pytest.fixture
def registering(tmp_path):
    """A `sipline serve` that may register to loopback providers (SIPp), with short protocol delays."""
    process = SiplineProcess(tmp_path / "data", "--allow-private-targets", *FAST).start()
    yield process
    process.stop()


@pytest.fixture
def browser(tmp_path, request):
    driver = start_chromium(tmp_path / "chromium-profile")
    request.node.stash[BROWSER] = (driver, tmp_path / "browser-at-failure")
    yield driver
    del request.node.stash[BROWSER]
    driver.quit()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report says where its page was saved, and what the page showed (CI's log keeps that)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and BROWSER in item.stash:
        driver, into = item.stash[BROWSER]
        report.sections.append(("browser at failure", save_page(driver, into)))
