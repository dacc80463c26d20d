"""`sipline.sip.history` through a real server (docs/behaviour.md#line-history): paging as `sip.get` pages, the
errors of `sip.update`, rights, the log line of a failure (docs/behaviour.md#reg-log), and a restart."""

from __future__ import annotations

import re

import pytest

from tests.integration.conftest import Api
from tests.integration.operator import cli, error, fields, hook_call, result
from tests.integration.server import SiplineProcess
from tests.waiting import wait_until

OFFICE = {"TYPE": "office", "SERVER": "pbx.example.invalid", "LOGIN": "office", "PASSWORD": "x"}
ISO_WITH_OFFSET = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d\Z")


def history(api: Api, config_id: object, **extra) -> dict:
    response = api.call("sipline.sip.history", json={"CONFIG_ID": config_id, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def causes(api: Api, config_id: object) -> list[tuple[str, int, str]]:
    return [(entry["STATUS_RESULT"], entry["STATUS_CODE"], entry["CAUSE"])
            for entry in history(api, config_id)["result"]]


def test_120_changes_keep_the_newest_100_in_pages_of_50(api):
    office = api.add(**OFFICE)
    empty = history(api, office["CONFIG_ID"])
    assert empty["result"] == [] and "total" not in empty  # as sip.get: no total for nothing
    for number in range(120):  # every update of PASSWORD resets the line: one entry each
        api.result("voximplant.sip.update", json={"CONFIG_ID": office["CONFIG_ID"], "PASSWORD": f"p{number}"})
    first = history(api, office["CONFIG_ID"])
    assert (len(first["result"]), first["total"], first["next"]) == (50, 100, 50)
    second = history(api, office["CONFIG_ID"], start=50)
    assert (len(second["result"]), second["total"], "next" in second) == (50, 100, False)
    entries = first["result"] + second["result"]
    assert {(e["STATUS_RESULT"], e["STATUS_CODE"], e["ERROR_MESSAGE"], e["CAUSE"]) for e in entries} == {
        ("wait", 0, "", "line updated")}
    assert {(e["CONTACT"], e["SOURCE"], e["TRANSPORT"]) for e in entries} == {(None, None, None)}
    assert all(ISO_WITH_OFFSET.match(e["TIME"]) for e in entries)
    assert [e["TIME"] for e in entries] == sorted((e["TIME"] for e in entries), reverse=True)  # newest first
    past = history(api, office["CONFIG_ID"], start=100)
    assert (past["result"], past["total"], "next" in past) == ([], 100, False)
    # `start` is read as sip.get reads it: PHP intval, negative is 0
    assert history(api, office["CONFIG_ID"], start="-5")["result"] == first["result"]
    assert history(api, office["CONFIG_ID"], start="50abc")["result"] == second["result"]


def test_bad_config_ids_get_the_errors_of_sip_update(api):
    cloud = api.add()
    for bad in (None, 0, -1, "abc", 999999, 2**40):
        assert error(api.call("sipline.sip.history", json={"CONFIG_ID": bad})) == (404, "ERROR_NOT_FOUND")
    assert error(api.call("sipline.sip.history", json={"CONFIG_ID": [cloud["CONFIG_ID"]]})) == (400, "ERROR_ARGUMENT")
    deleted = api.add(TITLE="gone")
    api.result("voximplant.sip.delete", json={"CONFIG_ID": deleted["CONFIG_ID"]})
    assert error(api.call("sipline.sip.history", json={"CONFIG_ID": deleted["CONFIG_ID"]})) == (404, "ERROR_NOT_FOUND")


def test_another_portals_line_is_not_found(sipline, api):
    mine = api.add()
    wait_until(lambda: result(hook_call(sipline.webhook, sipline, "sipline.sip.history",
                                        json={"CONFIG_ID": mine["CONFIG_ID"]})), 10)
    other = fields(cli(sipline.data_dir, "portal", "create", "--domain", "localhost", "--title", "B"))
    as_other = hook_call(other["webhook"], sipline, "sipline.sip.history", host="localhost",
                         json={"CONFIG_ID": mine["CONFIG_ID"]})
    assert error(as_other) == (404, "ERROR_NOT_FOUND")


def test_an_unresolvable_server_shows_dns_logs_the_line_and_survives_a_restart(tmp_path):
    process = SiplineProcess(tmp_path / "data").start()
    api = Api(process.webhook)
    try:
        line = api.add(SERVER="sip.example.invalid")  # RFC 6761: fails without asking
        # the name fails before any REGISTER leaves: from `wait` straight to `error`
        wait_until(lambda: causes(api, line["CONFIG_ID"]) == [("error", 502, "dns")], 10,
                   message=lambda: f"history: {causes(api, line['CONFIG_ID'])}")
        [newest] = history(api, line["CONFIG_ID"])["result"]
        assert newest["ERROR_MESSAGE"] == "Unable to resolve hostname"
        status = api.result("voximplant.sip.status", json={"REG_ID": line["REG_ID"]})
        assert status["LAST_UPDATED"].replace(" ", "T") == newest["TIME"][:19]  # the same moment as sip.status
        wanted = f"WARNING sipline.registration: line {line['CONFIG_ID']} (portal 127.0.0.1): error 502 " \
                 "Unable to resolve hostname (dns)"
        assert wanted in (tmp_path / "data" / "stderr.log").read_text()
        before = history(api, line["CONFIG_ID"])["result"]
        process.stop()
        process.start()
        after = history(api, line["CONFIG_ID"])["result"]
        assert after[-1:] == before  # kept across the restart; the line goes on failing after it
    finally:
        api.client.close()
        process.stop()


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_history_of_a_cloud_line_in_json_and_xml(api, fmt):
    line = api.add(SERVER="sip.example.invalid", TITLE=fmt)
    wait_until(lambda: causes(api, line["CONFIG_ID"]), 10)
    if fmt == "xml":
        text = api.call("sipline.sip.history.xml", json={"CONFIG_ID": line["CONFIG_ID"]}).text
        assert "<CAUSE>dns</CAUSE>" in text and "<STATUS_CODE>502</STATUS_CODE>" in text and "<total>1</total>" in text
    else:
        assert causes(api, line["CONFIG_ID"])[0] == ("error", 502, "dns")
