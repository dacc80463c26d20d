"""The Bitrix24 REST wire protocol (docs/behaviour.md#rest-wire) against a real server process."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest
from tests.stores import store_env
import os

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d\Z")
CORS = {
    "access-control-allow-origin": "*",
    "access-control-allow-headers": "origin, content-type, accept",
    "x-content-type-options": "nosniff",
}


def assert_json(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    for name, value in CORS.items():
        assert response.headers[name] == value
    return response.json()


def assert_error(response: httpx.Response, status: int, code: str, description: str | None = None) -> dict:
    body = assert_json(response, status)
    assert body["error"] == code
    assert "time" not in body and "result" not in body
    if description is not None:
        assert body["error_description"] == description
    return body


def new_webhook(sipline, scope: str = "telephony", user: str = "1") -> str:
    out = subprocess.run(
        [sys.executable, "-m", "sipline", "webhook", "create", "--data-dir", str(sipline.data_dir),
         "--scope", scope, "--user", user],
        capture_output=True, text=True, check=True, env={**os.environ, **store_env(sipline.data_dir)},
    )
    lines = out.stdout.splitlines()
    assert len(lines) == 1, out.stdout
    return lines[0]


@pytest.mark.parametrize(
    "suffix",
    ["voximplant.sip.connector.status", "voximplant.sip.connector.status.json",
     "VOXIMPLANT.Sip.Connector.Status", "voximplant.sip.connector.status/",
     "voximplant.sip.connector.status.json/?bx24_request_id=abc"],
)
def test_webhook_url_forms(api, suffix):
    body = assert_json(api.call(suffix, http_method="GET"), 200)
    assert body["result"]["PAID"] is True


def test_doubled_slashes_are_tolerated(sipline):
    url = sipline.webhook.replace("/rest/", "//rest/") + "/voximplant.sip.connector.status"
    assert assert_json(httpx.get(url), 200)["result"]["FREE_MINUTES"] == 0


def test_time_block_is_complete_and_measured(api):
    before = __import__("time").time()
    body = assert_json(api.call("voximplant.sip.get"), 200)
    time = body["time"]
    assert set(time) >= {"start", "finish", "duration", "processing", "date_start", "date_finish"}
    assert before - 1 <= time["start"] <= time["finish"]
    assert time["duration"] == pytest.approx(time["finish"] - time["start"])
    assert 0 <= time["processing"] <= time["duration"]
    assert isinstance(time["start"], float) and isinstance(time["processing"], float)
    assert ISO.match(time["date_start"]) and ISO.match(time["date_finish"])


def test_parameters_in_json_form_multipart_and_query(api):
    by_json = api.add(TITLE="json")
    by_form = api.result("voximplant.sip.add", data={"SERVER": "form.example.invalid", "LOGIN": "f", "TITLE": "form"})
    by_multipart = api.result(
        "voximplant.sip.add",
        files={"SERVER": (None, "mp.example.invalid"), "LOGIN": (None, "m"), "TITLE": (None, "multipart")},
    )
    by_query = api.result(
        "voximplant.sip.add", http_method="GET", params={"SERVER": "q.example.invalid", "LOGIN": "q", "TITLE": "query"}
    )
    assert [by_json["TITLE"], by_form["TITLE"], by_multipart["TITLE"], by_query["TITLE"]] == [
        "json", "form", "multipart", "query"
    ]
    assert by_multipart["SERVER"] == "mp.example.invalid"
    assert by_query["LOGIN"] == "q"


def test_body_overlays_query_and_put_bodies_are_ignored(api):
    line = api.result(
        "voximplant.sip.add?TITLE=from-query&LOGIN=q", json={"SERVER": "s.example.invalid", "LOGIN": "from-body"}
    )
    assert (line["TITLE"], line["LOGIN"]) == ("from-query", "from-body")
    response = api.call("voximplant.sip.add", http_method="PUT", json={"SERVER": "x.example.invalid", "LOGIN": "x"})
    assert_error(response, 400, "CHECK_FIELDS_ERROR")


def test_php_style_nested_form_keys(api):
    first, second, third = (api.add(TITLE=f"n{i}")["CONFIG_ID"] for i in range(3))
    query = f"FILTER[CONFIG_ID][]={first}&FILTER[CONFIG_ID][]={third}&SORT=CONFIG_ID&ORDER=DESC"
    rows = api.result("voximplant.sip.get", content=query, headers={"content-type": "application/x-www-form-urlencoded"})
    assert [row["CONFIG_ID"] for row in rows] == [third, first]
    rows = api.result("voximplant.sip.get?" + query.replace("[]", "%5B%5D"), http_method="GET")
    assert [row["CONFIG_ID"] for row in rows] == [third, first]
    assert second not in [row["CONFIG_ID"] for row in rows]


def test_unknown_method_is_404_before_authentication(sipline):
    bad_webhook = f"{sipline.base_url}/rest/1/wrongcode/"
    for url in (bad_webhook + "voximplant.sip.nothing", f"{sipline.base_url}/rest/no.such.method",
                f"{sipline.base_url}/rest/1/x/voximplant.sip.add.php", f"{sipline.base_url}/elsewhere"):
        assert_error(httpx.post(url), 404, "ERROR_METHOD_NOT_FOUND", "Method not found!")


def test_wrong_webhook_credentials(sipline):
    code = sipline.webhook.rstrip("/").rsplit("/", 1)[1]
    for url in (f"{sipline.base_url}/rest/1/wrongcode/", f"{sipline.base_url}/rest/2/{code}/",
                f"{sipline.base_url}/rest/admin/{code}/"):
        response = httpx.post(url + "voximplant.sip.get")
        assert_error(response, 403, "INVALID_CREDENTIALS", "Invalid request credentials")


def test_oauth_form_without_and_with_unknown_token(sipline):
    url = f"{sipline.base_url}/rest/voximplant.sip.get"
    assert_error(httpx.post(url), 401, "NO_AUTH_FOUND", "Wrong authorization data")
    assert_error(httpx.post(url, json={"auth": "0123456789abcdef"}), 401, "invalid_token")
    assert_error(httpx.post(url, headers={"authorization": "Bearer abc"}), 401, "invalid_token")


def test_scope_is_checked_after_credentials(sipline):
    other = new_webhook(sipline, scope="call")
    response = httpx.post(other + "voximplant.sip.get")
    assert_error(
        response, 403, "insufficient_scope",
        "The request requires higher privileges than provided by the webhook token",
    )
    assert assert_json(httpx.post(new_webhook(sipline) + "voximplant.sip.get"), 200)["result"] == []


def test_webhooks_of_a_portal_share_lines(api, sipline):
    line = api.add(TITLE="shared")
    rows = httpx.post(new_webhook(sipline) + "voximplant.sip.get").json()["result"]
    assert [row["CONFIG_ID"] for row in rows] == [line["CONFIG_ID"]]


def test_webhook_create_for_unknown_user_fails_clearly(sipline):
    out = subprocess.run(
        [sys.executable, "-m", "sipline", "webhook", "create", "--data-dir", str(sipline.data_dir), "--user", "7"],
        capture_output=True, text=True, env={**os.environ, **store_env(sipline.data_dir)},
    )
    assert out.returncode == 1 and out.stdout == ""
    assert "no user 7" in out.stderr and "usage:" not in out.stderr


def test_options_preflight_and_healthz(sipline):
    response = httpx.options(sipline.webhook + "voximplant.sip.add")
    assert_json(response, 200)
    assert assert_json(httpx.get(f"{sipline.base_url}/healthz"), 200) == {"status": "ok"}


def test_xml_transport(api):
    response = api.call("voximplant.sip.connector.status.xml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert "<response><result><FREE_MINUTES>0</FREE_MINUTES><PAID>1</PAID>" in response.text
    assert "<time><start>" in response.text
    error = api.call("voximplant.sip.delete.xml", json={"CONFIG_ID": 5})
    assert error.status_code == 400
    assert "<error>ERROR_NOT_FOUND</error>" in error.text


@pytest.mark.parametrize(
    ("body", "content_type", "description"),
    [
        (b"{bad json", "application/json", "Invalid JSON body"),
        (b"[1, 2]", "application/json", "JSON body must be an object"),
        (b'"text"', "application/json; charset=utf-8", "JSON body must be an object"),
        (b"SERVER=%ff%fe&LOGIN=x", "application/x-www-form-urlencoded", None),
        (b"--x\r\ngarbage", "multipart/form-data; boundary=x", None),
    ],
)
def test_malformed_bodies_are_400_and_change_nothing(api, body, content_type, description):
    response = api.call("voximplant.sip.add", content=body, headers={"content-type": content_type})
    assert_error(response, 400, "ERROR_ARGUMENT", description)
    assert api.result("voximplant.sip.get") == []


def test_body_over_one_mebibyte_is_refused(api):
    big = b'{"SERVER":"x.example.invalid","LOGIN":"a","TITLE":"' + b"a" * (1 << 20) + b'"}'
    assert_error(api.call("voximplant.sip.add", content=big, headers={"content-type": "application/json"}),
                 413, "ERROR_ARGUMENT")

    def chunks():
        for _ in range(20):
            yield b"a" * 65536

    response = api.call("voximplant.sip.add", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert_error(response, 413, "ERROR_ARGUMENT")
    assert api.result("voximplant.sip.get") == []


@pytest.mark.parametrize("field", ["TYPE", "TITLE", "SERVER", "LOGIN", "PASSWORD"])
def test_non_scalar_values_are_400(api, field):
    body = {"SERVER": "x.example.invalid", "LOGIN": "a", field: {"nested": ["array"]}}
    response = api.call("voximplant.sip.add", json=body)
    assert_error(response, 400, "ERROR_ARGUMENT", f"{field} must be a scalar value")
    assert api.result("voximplant.sip.get") == []


def test_never_a_redirect(sipline):
    for url in (sipline.base_url, sipline.base_url + "/rest", sipline.base_url + "/rest/"):
        response = httpx.get(url, follow_redirects=False)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json; charset=utf-8"


def test_access_log_masks_webhook_codes_and_never_shows_passwords(tmp_path):
    from tests.integration.server import SiplineProcess

    process = SiplineProcess(tmp_path / "data", "--access-log",
                             env={"SIPLINE_TEST_LOG_LEVEL": "debug"}).start()
    try:
        code = process.webhook.rstrip("/").rsplit("/", 1)[1]
        httpx.post(process.webhook + "voximplant.sip.add",
                   json={"SERVER": "s.example.invalid", "LOGIN": "u", "PASSWORD": "pw-never-logged"})
        httpx.post(process.webhook + "voximplant.sip.add", json={"SERVER": "bad host", "LOGIN": "u",
                                                                 "PASSWORD": "pw-never-logged"})
        httpx.post(f"{process.base_url}/rest/1/wrong-code-x/voximplant.sip.get")
    finally:
        process.stop()
    log = process.stderr()
    assert '"POST /rest/1/***/voximplant.sip.add" 200' in log
    assert "wrong-code-x" not in log and code not in log and "pw-never-logged" not in log
