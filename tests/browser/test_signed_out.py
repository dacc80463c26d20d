"""A browser with no session at /ui/ gets an HTML page that tells how to sign in (`sipline dashboard-link`) and
shows none of the portal's lines."""

from __future__ import annotations

import httpx

from tests.browser.harness import wait_for

LINE = {"TITLE": "Front desk trunk", "SERVER": "sip.example.invalid", "LOGIN": "frontdesk77", "PASSWORD": "secret"}


def test_the_dashboard_without_a_session_names_the_sign_in_command_and_shows_no_line(sipline, browser):
    added = httpx.post(sipline.webhook + "voximplant.sip.add", json=LINE, timeout=10)
    assert added.status_code == 200, added.text

    browser.get(f"{sipline.base_url}/ui/")
    wait_for(browser, "body", text="sipline dashboard-link")
    assert not [value for value in (LINE["TITLE"], LINE["LOGIN"], LINE["SERVER"]) if value in browser.page_source]

    page = httpx.get(f"{sipline.base_url}/ui/", follow_redirects=True, timeout=10)
    content_type = page.headers.get("content-type", "")
    assert content_type.partition(";")[0] == "text/html", f"{page.status_code} {content_type}: {page.text[:300]}"
    assert "sipline dashboard-link" in page.text
