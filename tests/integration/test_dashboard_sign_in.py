"""Signing in to the web dashboard over HTTP (docs/behaviour.md#dashboard-sign-in, #dashboard-rights): the
links `serve` and `sipline dashboard-link` print, the session cookie, CSRF, sign-out, revocation, idle
sessions, and what a user without the right sees."""

from __future__ import annotations

import time

import httpx

from tests.integration.dashboard import csrf, link, signed_in
from tests.integration.operator import cli
from tests.integration.server import SiplineProcess


def test_every_start_prints_the_webhook_and_a_dashboard_link(tmp_path):
    first = SiplineProcess(tmp_path / "data").start()
    try:
        webhook, dashboard = first.printed["webhook"], first.printed["dashboard"]
        assert dashboard.startswith(f"{first.base_url}/ui/login?token=")
    finally:
        first.stop()
    again = SiplineProcess(tmp_path / "data", port=first.port).start()
    try:
        assert again.printed["webhook"] == webhook  # the same webhook, still working
        assert httpx.post(webhook + "voximplant.sip.get").status_code == 200
        assert again.printed["dashboard"] != dashboard
        # each start's link is stored: the first one still works within its 10 minutes, once
        assert httpx.get(dashboard).status_code == 303 and httpx.get(dashboard).status_code == 403
    finally:
        again.stop()


def test_a_link_starts_a_session_once_with_a_strict_httponly_cookie(sipline, api):
    api.add(TITLE="Main line")
    url = sipline.printed["dashboard"]
    with signed_in(sipline, url) as client:
        cookie = client.cookies.jar
        [session] = [each for each in cookie if each.name == "sipline_session"]
        assert session.path == "/ui" and not session.secure and session.has_nonstandard_attr("HttpOnly")
        assert session.get_nonstandard_attr("SameSite").lower() == "strict"
        page = client.get("/ui/")
        assert page.status_code == 200 and "Main line" in page.text and "text/html" in page.headers["content-type"]
        used = httpx.get(url)  # a link works once
        assert used.status_code == 403 and "sipline dashboard-link" in used.text and "Main line" not in used.text
        assert "text/html" in used.headers["content-type"]
        assert httpx.get(f"{sipline.base_url}/ui/login?token=made-up").status_code == 403
        assert httpx.get(f"{sipline.base_url}/ui/login").status_code == 403


def test_without_a_session_every_page_says_how_to_sign_in_and_shows_nothing(sipline, api):
    api.add(TITLE="Secret title")
    for path in ("/ui/", "/ui/lines/rows", "/ui/?type=cloud"):
        page = httpx.get(sipline.base_url + path, cookies={"sipline_session": "forged"})
        assert page.status_code == 401 and "sipline dashboard-link" in page.text, path
        assert "Secret title" not in page.text and "sip.example.invalid" not in page.text
    assert httpx.get(sipline.base_url + "/ui", follow_redirects=False).headers["location"] == "/ui/"


def test_a_cookie_is_secure_under_https(tmp_path):
    process = SiplineProcess(tmp_path / "data", "--tls", "self-signed").start()
    try:
        with signed_in(process, process.printed["dashboard"]) as client:
                [session] = [each for each in client.cookies.jar if each.name == "sipline_session"]
        assert session.secure
    finally:
        process.stop()


def test_a_user_without_the_right_sees_no_line(sipline, api):
    api.add(TITLE="Main line")
    clerk = cli(sipline.data_dir, "user", "create", "--name", "Clerk")
    with signed_in(sipline, link(sipline, "--user", clerk)) as client:
        for path in ("/ui/", "/ui/lines/rows"):
            page = client.get(path)
            assert page.status_code == 403 and "no right" in page.text and "Main line" not in page.text
    numbers = cli(sipline.data_dir, "user", "create", "--name", "Numbers", "--numbers-modify")
    with signed_in(sipline, link(sipline, "--user", numbers)) as client:
        assert "Main line" in client.get("/ui/").text


def test_sign_out_needs_the_csrf_token_and_ends_the_session(sipline):
    with signed_in(sipline) as client:
        page = client.get("/ui/")
        session = client.cookies["sipline_session"]
        refused = client.post("/ui/logout")
        assert refused.status_code == 403 and "CSRF" in refused.text
        forged = client.post("/ui/logout", data={"csrf": "0" * 64})
        assert forged.status_code == 403 and client.get("/ui/").status_code == 200
        out = client.post("/ui/logout", data={"csrf": csrf(page)})
        assert out.status_code == 200 and "signed out" in out.text
        assert 'sipline_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
        # the session itself is gone, not only the cookie
        again = httpx.get(sipline.base_url + "/ui/", headers={"Cookie": f"sipline_session={session}"})
        assert again.status_code == 401


def test_revoke_all_ends_every_session_of_the_portal(sipline):
    with signed_in(sipline) as client:
        unused = link(sipline)
        assert cli(sipline.data_dir, "dashboard-link", "--revoke-all") == "revoked 1 dashboard sessions"
        assert client.get("/ui/").status_code == 401 and httpx.get(unused).status_code == 403


def test_a_session_unused_longer_than_dashboard_idle_ends(tmp_path):
    process = SiplineProcess(tmp_path / "data", "--dashboard-idle", "1").start()
    try:
        with signed_in(process) as client:
            assert client.get("/ui/").status_code == 200
            time.sleep(1.5)
            assert client.get("/ui/").status_code == 401
    finally:
        process.stop()


def test_a_link_of_another_portal_does_not_sign_in_here(sipline):
    cli(sipline.data_dir, "portal", "create", "--domain", "b.example")
    other = link(sipline, "--portal", "b.example")
    assert "b.example" in other
    path = other.split("/ui/", 1)[1]
    assert httpx.get(f"{sipline.base_url}/ui/{path}").status_code == 403  # at the first portal's address
    here = httpx.get(f"{sipline.base_url}/ui/{path}", headers={"Host": "b.example"})
    assert here.status_code == 303


def test_the_lines_page_filters_by_type_status_and_title_and_ignores_what_it_does_not_know(sipline, api):
    api.add(TITLE="Alpha cloud")
    api.add(TITLE="Beta office", TYPE="office")
    with signed_in(sipline) as client:
        both = client.get("/ui/").text
        assert "Alpha cloud" in both and "Beta office" in both
        office = client.get("/ui/", params={"type": "office"}).text
        assert "Beta office" in office and "Alpha cloud" not in office
        search = client.get("/ui/lines/rows", params={"q": "alpha"}).text
        assert "Alpha cloud" in search and "Beta office" not in search and "<html" not in search
        waiting = client.get("/ui/", params={"status": "wait", "type": "office"}).text
        assert "Beta office" in waiting
        odd = client.get("/ui/", params={"type": "<script>", "status": "x" * 5000, "q": "\x00" * 10})
        assert odd.status_code == 200 and "<script>" not in odd.text


def test_what_the_dashboard_does_not_have_is_an_html_404_and_no_form_body_is_a_refusal(sipline):
    with signed_in(sipline) as client:
        for path in ("/ui/nothing", "/ui/lines/abc", "/ui/lines/99999999999999999999999", "/ui/lines/0"):
            page = client.get(path)
            assert page.status_code == 404 and "text/html" in page.headers["content-type"], path
        for body in (b"\xff\xfe" * 1000, b"csrf=" + b"a" * 100_000, b"=&=&&"):
            answer = client.post("/ui/logout", content=body,
                                 headers={"content-type": "application/x-www-form-urlencoded"})
            assert answer.status_code == 403 and "CSRF" in answer.text
        assert client.post("/ui/logout", content=b"--x\r\n", headers={
            "content-type": "multipart/form-data; boundary=x"}).status_code == 403
        assert client.get("/ui/").status_code == 200  # still signed in
