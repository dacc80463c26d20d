"""voximplant.sip.* and voximplant.line.* exactly as docs/behaviour.md#telephony-methods describes them, over HTTP."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest

from tests.integration.conftest import FRESH_CLOUD_LINE
from tests.integration.test_wire import assert_error, assert_json, new_webhook
from tests.stores import store_env
import os

CLOUD_KEYS = ["ID", "TYPE", "CONFIG_ID", "REG_ID", "SERVER", "LOGIN", "PASSWORD", "AUTH_USER", "OUTBOUND_PROXY",
              "DETECT_LINE_NUMBER", "LINE_DETECT_HEADER_ORDER", "REGISTRATION_STATUS_CODE",
              "REGISTRATION_ERROR_MESSAGE", "TITLE"]
OFFICE_KEYS = ["ID", "TYPE", "CONFIG_ID", "INCOMING_SERVER", "INCOMING_LOGIN", "INCOMING_PASSWORD", "SERVER",
               "LOGIN", "PASSWORD", "AUTH_USER", "OUTBOUND_PROXY", "DETECT_LINE_NUMBER", "LINE_DETECT_HEADER_ORDER",
               "REGISTRATION_STATUS_CODE", "REGISTRATION_ERROR_MESSAGE", "TITLE",
               "DIGEST_ALGORITHMS"]  # sipline's own, after Bitrix24's (README, "Office lines")


def error_of(api, method: str, **kw) -> httpx.Response:
    return api.call(method, **kw)


# -- add ------------------------------------------------------------------------------


def test_add_cloud_result_shape(api):
    line = api.result("voximplant.sip.add", json={
        "TYPE": "cloud", "TITLE": "SIP line 1", "SERVER": "sip.provider.com", "LOGIN": "sip_user", "PASSWORD": "secret"
    })
    assert list(line) == CLOUD_KEYS
    assert isinstance(line["ID"], str) and isinstance(line["CONFIG_ID"], str)
    assert isinstance(line["REG_ID"], int) and line["REG_ID"] > 0
    assert {k: line[k] for k in CLOUD_KEYS[4:]} == {
        "SERVER": "sip.provider.com", "LOGIN": "sip_user", "PASSWORD": "secret", "AUTH_USER": None,
        "OUTBOUND_PROXY": None, "DETECT_LINE_NUMBER": "N", "LINE_DETECT_HEADER_ORDER": "diversion;to",
        "REGISTRATION_STATUS_CODE": None, "REGISTRATION_ERROR_MESSAGE": None, "TITLE": "SIP line 1",
    }


def test_add_office_result_shape_and_generated_credentials(api):
    line = api.result("voximplant.sip.add", json={"TYPE": "office", "SERVER": "office.provider.local",
                                                  "LOGIN": "office_user", "PASSWORD": "secret"})
    assert list(line) == OFFICE_KEYS
    assert line["INCOMING_LOGIN"] == f"sip{line['CONFIG_ID']}"
    assert re.fullmatch(r"[0-9a-f]{32}", line["INCOMING_PASSWORD"])
    assert line["INCOMING_SERVER"] == "127.0.0.1"
    assert line["TITLE"] == "" and line["REGISTRATION_STATUS_CODE"] is None
    another = api.result("voximplant.sip.add", json={"TYPE": "office", "SERVER": "o.example.invalid", "LOGIN": "o"})
    assert another["INCOMING_PASSWORD"] != line["INCOMING_PASSWORD"]
    assert another["PASSWORD"] is None  # absent PASSWORD is null [S]
    row = api.result("voximplant.sip.get", json={"FILTER": {"CONFIG_ID": line["CONFIG_ID"]}})[0]
    assert row["REGISTRATION_STATUS_CODE"] == "0" and row["REGISTRATION_ERROR_MESSAGE"] is None


def test_incoming_server_comes_from_configuration(tmp_path):
    from tests.integration.server import SiplineProcess

    process = SiplineProcess(tmp_path / "d", "--incoming-server", "pbx.sipline.test").start()
    try:
        line = httpx.post(process.webhook + "voximplant.sip.add",
                          json={"TYPE": "office", "SERVER": "o.example.invalid", "LOGIN": "o"}).json()["result"]
        assert line["INCOMING_SERVER"] == "pbx.sipline.test"
    finally:
        process.stop()


def test_type_defaults_to_cloud_and_is_case_insensitive(api):
    assert api.add()["TYPE"] == "cloud"
    assert api.add(TYPE="OFFICE", TITLE="o")["TYPE"] == "office"
    response = api.call("voximplant.sip.add", json={"TYPE": "pbx", "SERVER": "x.example.invalid", "LOGIN": "u"})
    assert_error(response, 400, "CHECK_FIELDS_ERROR", "PBX type is not specified.")


def test_every_failed_check_is_reported_in_order(api):
    response = api.call("voximplant.sip.add", json={"TYPE": "x", "PASSWORD": "p" * 101})
    assert_error(response, 400, "CHECK_FIELDS_ERROR", "<br> ".join([
        "PBX type is not specified.",
        "Server address not specified",
        "Login for connecting to the server not specified",
        "Password for connecting to the server cannot exceed 100 characters",
    ]))
    response = api.call("voximplant.sip.add", json={"SERVER": "s" * 101, "LOGIN": "l" * 101})
    assert_error(response, 400, "CHECK_FIELDS_ERROR",
                 "Server address must not exceed 100 characters.<br> Server login must not exceed 100 characters.")


def test_values_are_cleaned_like_bitrix(api):
    line = api.add(SERVER="  https://sip.example.invalid  ", LOGIN=" user ", PASSWORD=" pw ", TITLE="  Named  ")
    assert (line["SERVER"], line["LOGIN"], line["PASSWORD"], line["TITLE"]) == (
        "sip.example.invalid", "user", "pw", "Named"
    )
    # the untrimmed PASSWORD length counts
    response = api.call("voximplant.sip.add", json={"SERVER": "a.example.invalid", "LOGIN": "u",
                                                    "PASSWORD": " " + "p" * 100})
    assert_error(response, 400, "CHECK_FIELDS_ERROR")
    assert api.add(PASSWORD="", TITLE="empty password")["PASSWORD"] == ""


def test_php_casting_of_scalars(api):
    line = api.result("voximplant.sip.add", json={"SERVER": "n.example.invalid", "LOGIN": 1234, "PASSWORD": True,
                                                  "TITLE": None})
    assert (line["LOGIN"], line["PASSWORD"], line["TITLE"]) == ("1234", "1", "")


@pytest.mark.parametrize("field", ["SERVER", "LOGIN", "PASSWORD", "TITLE"])
@pytest.mark.parametrize("bad", ["a\r\nVia: evil", "a\nb", "a\x00b", "\tx", "x\x7f", "x\x85y"])
def test_control_characters_are_refused(api, field, bad):
    body = {"SERVER": "sip.example.invalid", "LOGIN": "u", field: bad}
    response = api.call("voximplant.sip.add", json=body)
    assert_error(response, 400, "CHECK_FIELDS_ERROR")
    assert "control characters" in response.json()["error_description"]
    assert api.result("voximplant.sip.get") == []


@pytest.mark.parametrize("server", ["sip.example.invalid", "sip.example.invalid:5080", "10.1.2.3", "[2001:db8::1]:5060",
                                    "sip:sip.example.invalid", "sips:sip.example.invalid:5061",
                                    "sip:sip.example.invalid;transport=tcp", "SIP:Sip.Example.Invalid;transport=TLS",
                                    "localhost"])
def test_server_forms_accepted(api, server):
    assert api.add(SERVER=server)["SERVER"] == server


@pytest.mark.parametrize("server", ["sip.example.invalid:0", "sip.example.invalid:65536", "host name", "a/b",
                                    "sip:user@sip.example.invalid", "sips:x.example.invalid;transport=udp",
                                    "x.example.invalid;transport=tcp", "sip:x.example.invalid;transport=sctp",
                                    "999.1.1.1", "[zz::1]", "-bad.example", "http://", "ftp://x.example.invalid"])
def test_server_forms_refused(api, server):
    response = api.call("voximplant.sip.add", json={"SERVER": server, "LOGIN": "u"})
    assert_error(response, 400, "CHECK_FIELDS_ERROR")


def test_cloud_line_limit_per_portal(api):
    for number in range(10):
        api.add(TITLE=f"cloud {number}")
    response = api.call("voximplant.sip.add", json={"SERVER": "x.example.invalid", "LOGIN": "u", "TITLE": "11th"})
    assert_error(response, 400, "MAX_CLOUD_PBX", "You cannot connect more than 10 virtual PBXs.")
    assert api.add(TYPE="office", TITLE="office is not limited")["TYPE"] == "office"
    # field checks come before the limit
    response = api.call("voximplant.sip.add", json={"LOGIN": "u"})
    assert_error(response, 400, "CHECK_FIELDS_ERROR")


def test_cloud_line_limit_is_configurable(tmp_path):
    from tests.integration.server import SiplineProcess

    process = SiplineProcess(tmp_path / "d", "--max-cloud-lines", "2").start()
    try:
        for title in ("a", "b", "c"):
            response = httpx.post(process.webhook + "voximplant.sip.add",
                                  json={"SERVER": "x.example.invalid", "LOGIN": "u", "TITLE": title})
        assert_error(response, 400, "MAX_CLOUD_PBX", "You cannot connect more than 2 virtual PBXs.")
    finally:
        process.stop()


def test_title_is_unique_per_portal_trimmed_and_case_insensitive(api):
    api.add(TITLE="Main line")
    for clash in ("Main line", " MAIN LINE ", "main line"):
        response = api.call("voximplant.sip.add", json={"TYPE": "office", "SERVER": "o.example.invalid",
                                                        "LOGIN": "u", "TITLE": clash})
        assert_error(response, 400, "TITLE_EXISTS",
                     "The specified connection name is already registered in the system")
    assert api.add(TITLE="")["TITLE"] == "" and api.add()["TITLE"] == ""  # unnamed lines never collide


def test_reg_ids_come_from_one_sequence(api):
    reg_ids = [api.add(TITLE=f"r{n}")["REG_ID"] for n in range(3)]
    assert reg_ids == sorted(set(reg_ids))
    api.result("voximplant.sip.delete", json={"CONFIG_ID": api.add(TITLE="gone")["CONFIG_ID"]})
    assert api.add(TITLE="after")["REG_ID"] > max(reg_ids) + 1  # never reused


def test_first_line_becomes_the_default_outgoing_line(api):
    assert api.result("voximplant.line.outgoing.get") == "LINK_BASE_NUMBER"
    first = api.add(TITLE="first")
    api.add(TITLE="second")
    assert api.result("voximplant.line.outgoing.get") == f"reg{first['REG_ID']}"


# -- update -----------------------------------------------------------------------------


@pytest.mark.parametrize("config_id", [None, 0, -1, 999999, "abc", "", True])
def test_update_unknown_line_is_404(api, config_id):
    response = api.call("voximplant.sip.update", json={"CONFIG_ID": config_id, "TITLE": "x"})
    assert_error(response, 404, "ERROR_NOT_FOUND", "Specified CONFIG_ID is not found")


def test_update_without_fields_changes_nothing(api):
    line = api.add(TITLE="keep")
    assert api.result("voximplant.sip.update", json={"CONFIG_ID": line["CONFIG_ID"], "TYPE": "nonsense"}) == 1
    assert api.result("voximplant.sip.get")[0]["TITLE"] == "keep"


def test_update_checks_and_applies(api):
    line = api.add(TITLE="one")
    api.add(TITLE="two")
    config_id = int(line["CONFIG_ID"])
    for body, code in (
        ({"TITLE": "TWO"}, "TITLE_EXISTS"),
        ({"SERVER": ""}, "CHECK_FIELDS_ERROR"),
        ({"TYPE": "Cloud", "TITLE": "x"}, "CHECK_FIELDS_ERROR"),
        ({"LOGIN": "a\r\nb"}, "CHECK_FIELDS_ERROR"),
    ):
        assert_error(api.call("voximplant.sip.update", json={"CONFIG_ID": config_id, **body}), 400, code)
    response = api.call("voximplant.sip.update", json={"CONFIG_ID": config_id, "SERVER": ""})
    assert response.json()["error_description"] == "Server address not specified"
    assert api.result("voximplant.sip.update", json={"config_id": config_id, "title": "ONE"}) == 1
    row = api.result("voximplant.sip.get", json={"FILTER": {"CONFIG_ID": config_id}})[0]
    assert row["TITLE"] == "ONE" and row["REGISTRATION_STATUS_CODE"] is None  # TITLE alone keeps the status
    assert api.result("voximplant.sip.update", data={"CONFIG_ID": str(config_id), "SERVER": "127.0.0.9",
                                                     "PASSWORD": "p2", "TYPE": "office"}) == 1
    row = api.result("voximplant.sip.get", json={"FILTER": {"CONFIG_ID": config_id}})[0]
    assert (row["SERVER"], row["PASSWORD"], row["TYPE"]) == ("127.0.0.9", "p2", "cloud")
    status = api.result("voximplant.sip.status", json={"REG_ID": line["REG_ID"]})
    # The registration starts over: wait and code 0 until the engine's next attempt, which may already
    # have refused the loopback SERVER (only an attempt made after the update can name it).
    if status["STATUS_RESULT"] in ("wait", "in_progress"):
        assert row["REGISTRATION_STATUS_CODE"] == "0"
    else:
        assert (status["STATUS_RESULT"], status["STATUS_CODE"]) == ("error", 403), status
        assert "127.0.0.9" in status["ERROR_MESSAGE"]


# -- get ----------------------------------------------------------------------------------


def test_get_empty_has_no_total(api):
    body = assert_json(api.call("voximplant.sip.get"), 200)
    assert body["result"] == [] and "total" not in body and "next" not in body


def test_get_rows_are_rendered_as_strings(api):
    cloud = api.add(TITLE="c")
    office = api.add(TYPE="office", TITLE="o")
    rows = api.result("voximplant.sip.get")
    assert [row["CONFIG_ID"] for row in rows] == [cloud["CONFIG_ID"], office["CONFIG_ID"]]
    cloud_row, office_row = rows
    assert "ID" not in cloud_row and "APP_ID" not in cloud_row
    assert list(cloud_row) == [k for k in CLOUD_KEYS if k != "ID"]
    assert list(office_row) == [k for k in OFFICE_KEYS if k != "ID"]
    assert cloud_row["REG_ID"] == str(cloud["REG_ID"])
    assert office_row["INCOMING_PASSWORD"] == office["INCOMING_PASSWORD"]


def test_get_pages_of_fifty(api):
    for number in range(120):
        api.result("voximplant.sip.add", data={"TYPE": "office", "SERVER": "o.example.invalid", "LOGIN": f"u{number}"})
    seen = []
    for start, size, next_ in ((0, 50, 50), (50, 50, 100), (100, 20, None)):
        body = assert_json(api.call("voximplant.sip.get", json={"start": start}), 200)
        assert (len(body["result"]), body["total"], body.get("next")) == (size, 120, next_)
        seen += [row["LOGIN"] for row in body["result"]]
    assert seen == [f"u{n}" for n in range(120)]
    body = assert_json(api.call("voximplant.sip.get?start=500", http_method="GET"), 200)
    assert body["result"] == [] and body["total"] == 120 and "next" not in body
    body = assert_json(api.call("voximplant.sip.get", json={"start": -5}), 200)
    assert body["next"] == 50


def test_get_filter_sort_and_order(api):
    lines = [api.add(TITLE=title, LOGIN=login) for title, login in (("Bravo", "200"), ("alpha", "100"), ("Charlie", "300"))]
    office = api.add(TYPE="office", TITLE="delta")
    ids = [line["CONFIG_ID"] for line in lines]

    def titles(body):
        return [row["TITLE"] for row in api.result("voximplant.sip.get", json=body)]

    assert titles({"FILTER": {"CONFIG_ID": [ids[0], ids[2]]}, "SORT": "CONFIG_ID", "ORDER": "DESC"}) == ["Charlie", "Bravo"]
    assert titles({"SORT": "title", "ORDER": "asc"}) == ["alpha", "Bravo", "Charlie", "delta"]
    assert titles({"filter": {"%title": "AR"}}) == ["Charlie"]
    assert titles({"FILTER": {"!TYPE": "cloud"}}) == ["delta"]
    assert titles({"FILTER": {">=LOGIN": "200", "TYPE": "cloud"}}) == ["Bravo", "Charlie"]
    assert titles({"FILTER": {"><CONFIG_ID": [ids[1], office["CONFIG_ID"]]}}) == ["alpha", "Charlie", "delta"]
    assert titles({"FILTER": {"?TITLE": "alp|char"}}) == ["alpha", "Charlie"]
    assert titles({"FILTER": {"APP_ID": "someone-else"}}) == ["Bravo", "alpha", "Charlie", "delta"]  # forced
    assert titles({"FILTER": {"!APP_ID": ""}}) == []
    assert titles({"FILTER": {"REG_ID": None}}) == ["delta"]
    assert titles({"FILTER": "not an array", "SORT": "TITLE"}) == ["Bravo", "alpha", "Charlie", "delta"]
    assert titles({"SORT": "TITLE", "ORDER": {"ID": "ASC"}}) == ["Bravo", "alpha", "Charlie", "delta"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"FILTER": {"NOPE": 1}}, "ERROR_CORE"),
        ({"FILTER": {"~TITLE": 1}}, "ERROR_CORE"),
        ({"SORT": "NOPE", "ORDER": "ASC"}, "ERROR_CORE"),
        ({"SORT": "TITLE", "ORDER": "sideways"}, "ERROR_ARGUMENT"),
        ({"FILTER": {"><CONFIG_ID": 5}}, "ERROR_ARGUMENT"),
        ({"FILTER": {"><CONFIG_ID": [1, 2, 3]}}, "ERROR_ARGUMENT"),
        ({"FILTER": {"CONFIG_ID": [[1]]}}, "ERROR_ARGUMENT"),
    ],
)
def test_get_bad_filter_or_sort_is_400(api, body, code):
    api.add()
    assert_error(api.call("voximplant.sip.get", json=body), 400, code)


# -- delete, status, connector ----------------------------------------------------------------


def test_delete(api):
    assert_error(api.call("voximplant.sip.delete", json={"CONFIG_ID": 12345}), 400, "ERROR_NOT_FOUND",
                 "Specified CONFIG_ID is not found")
    first, second = api.add(TITLE="first"), api.add(TITLE="second")
    assert api.result("voximplant.sip.delete", json={"CONFIG_ID": first["CONFIG_ID"]}) == 1
    assert [row["TITLE"] for row in api.result("voximplant.sip.get")] == ["second"]
    assert_error(api.call("voximplant.sip.status", json={"REG_ID": first["REG_ID"]}), 400, "REG_ID_NOT_FOUND",
                 "Settings not found")
    assert api.result("voximplant.line.outgoing.get") == "LINK_BASE_NUMBER"  # the deleted line was the default
    assert api.result("voximplant.sip.status", json={"REG_ID": second["REG_ID"]})["REG_ID"] == second["REG_ID"]
    assert_error(api.call("voximplant.sip.delete", json={"CONFIG_ID": first["CONFIG_ID"]}), 400, "ERROR_NOT_FOUND")


def test_status_of_a_new_cloud_line(api):
    line = api.add()
    status = api.result("voximplant.sip.status", params={"REG_ID": str(line["REG_ID"])}, http_method="GET")
    assert list(status) == ["REG_ID", "LAST_UPDATED", "ERROR_MESSAGE", "STATUS_CODE", "STATUS_RESULT"]
    assert status["REG_ID"] == line["REG_ID"]
    assert (status["STATUS_RESULT"], status["STATUS_CODE"], status["ERROR_MESSAGE"]) in FRESH_CLOUD_LINE
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", status["LAST_UPDATED"])


@pytest.mark.parametrize("reg_id", [None, 0, "x", 99999999])
def test_status_unknown(api, reg_id):
    office = api.add(TYPE="office")
    assert_error(api.call("voximplant.sip.status", json={"REG_ID": reg_id}), 400, "REG_ID_NOT_FOUND")
    assert_error(api.call("voximplant.sip.status", json={"REG_ID": office["CONFIG_ID"]}), 400, "REG_ID_NOT_FOUND")


def test_connector_status(api):
    assert api.result("voximplant.sip.connector.status") == {
        "FREE_MINUTES": 0, "PAID": True, "PAID_DATE_END": "2099-12-31T00:00:00+00:00"
    }


# -- voximplant.line.* ------------------------------------------------------------------------------


def test_line_get_and_outgoing(api):
    assert api.result("voximplant.line.get") == []
    cloud = api.add()
    office = api.add(TYPE="office", TITLE="<Office & \"Co\" 'x'>")
    names = api.result("voximplant.line.get")
    assert names == {
        f"reg{cloud['REG_ID']}": f"Cloud PBX ({cloud['CONFIG_ID']})",
        f"sip{office['CONFIG_ID']}": "&lt;Office &amp; &quot;Co&quot; &#039;x&#039;&gt;",
    }
    assert api.result("voximplant.line.outgoing.set", json={"LINE_ID": "nonexistent"}) == 1
    assert api.result("voximplant.line.outgoing.get") == f"reg{cloud['REG_ID']}"
    assert api.result("voximplant.line.outgoing.set", json={"LINE_ID": f"sip{office['CONFIG_ID']}"}) == 1
    assert api.result("voximplant.line.outgoing.get") == f"sip{office['CONFIG_ID']}"
    assert api.result("voximplant.line.outgoing.set", json={"LINE_ID": "LINK_BASE_NUMBER"}) == 1
    assert api.result("voximplant.line.outgoing.get") == "LINK_BASE_NUMBER"
    for config_id in (None, 0, -3, 424242):
        assert_error(api.call("voximplant.line.outgoing.sip.set", json={"CONFIG_ID": config_id}), 400,
                     "ERROR_ARGUMENT", "Specified CONFIG_ID is not found")
    assert api.result("voximplant.line.outgoing.sip.set", json={"CONFIG_ID": cloud["CONFIG_ID"]}) == 1
    assert api.result("voximplant.line.outgoing.get") == f"reg{cloud['REG_ID']}"


# -- permission ----------------------------------------------------------------------------------


METHODS = ["voximplant.sip.add", "voximplant.sip.update", "voximplant.sip.get", "voximplant.sip.delete",
           "voximplant.sip.status", "voximplant.sip.connector.status", "voximplant.line.get",
           "voximplant.line.outgoing.get", "voximplant.line.outgoing.set", "voximplant.line.outgoing.sip.set"]


def test_users_without_the_numbers_right_are_denied_before_any_parameter(sipline, api):
    line = api.add()
    user = subprocess.run([sys.executable, "-m", "sipline", "user", "create", "--data-dir", str(sipline.data_dir),
                           "--name", "Clerk"], capture_output=True, text=True, check=True,
                          env={**os.environ, **store_env(sipline.data_dir)}).stdout.strip()
    clerk = new_webhook(sipline, user=user)
    for method in METHODS:
        response = httpx.post(clerk + method, json={"CONFIG_ID": {"not": "scalar"}, "FILTER": {"~X": 1}})
        assert_error(response, 403, "ACCESS_DENIED", "Access denied!")
    manager = subprocess.run([sys.executable, "-m", "sipline", "user", "create", "--data-dir", str(sipline.data_dir),
                              "--name", "Manager", "--numbers-modify"], capture_output=True, text=True,
                             check=True, env={**os.environ, **store_env(sipline.data_dir)}).stdout.strip()
    rows = httpx.post(new_webhook(sipline, user=manager) + "voximplant.sip.get").json()["result"]
    assert [row["CONFIG_ID"] for row in rows] == [line["CONFIG_ID"]]
