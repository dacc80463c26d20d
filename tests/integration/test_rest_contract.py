"""The rest of the REST contract over raw HTTP: helper methods (docs/behaviour.md#rest-helpers), batch (docs/behaviour.md#rest-batch), the request-rate and
operating-time limits (docs/behaviour.md#rest-rate-limit, docs/behaviour.md#rest-operating-limit) and the `.xml` transport for every method (docs/behaviour.md#rest-helpers, docs/behaviour.md#rest-rate-limit, docs/behaviour.md#rest-xml, docs/behaviour.md#check-real-clients)."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from sipline.rest.registry import METHODS
from tests.integration.operator import call, cli, result
from tests.integration.server import SiplineProcess

LINE = {"TYPE": "cloud", "SERVER": "sip.example.invalid", "LOGIN": "100", "PASSWORD": "s"}
TIME_KEYS = {"start", "finish", "duration", "processing", "date_start", "date_finish"}


def post(webhook: str, method: str, **kw) -> httpx.Response:
    return httpx.post(webhook + method, **kw)



def test_helper_methods(sipline):
    hook = sipline.webhook
    assert result(post(hook, "scope")) == ["telephony"]
    assert result(post(hook, "scope", json={"full": True})) == ["telephony"]
    methods = result(post(hook, "methods"))
    assert "voximplant.sip.add" in methods and "batch" in methods and methods == sorted(methods)
    assert "voximplant.sip.add" not in result(post(hook, "methods", json={"scope": ""}))
    assert result(post(hook, "method.get", json={"name": "voximplant.sip.get"})) == {"isExisting": True,
                                                                                    "isAvailable": True}
    assert result(post(hook, "method.get", json={"NAME": "voximplant.sip.get"})) == {"isExisting": False,
                                                                                    "isAvailable": False}
    assert result(post(hook, "method.get", json={"name": "crm.deal.list"})) == {"isExisting": False,
                                                                               "isAvailable": False}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", result(post(hook, "server.time")))
    assert result(post(hook, "app.info")) == {"SCOPE": ["telephony"], "LICENSE": "en_selfhosted"}
    profile = result(post(hook, "profile"))
    assert profile["ID"] == "1" and profile["ADMIN"] is True and profile["NAME"] == "Admin"
    assert result(post(hook, "feature.get", json={"CODE": "rest_offline"})) == {"value": "N"}
    empty = post(hook, "feature.get")
    assert empty.status_code == 400 and empty.json()["error"] == "CODE_EMPTY"


def test_a_method_outside_the_scope_is_refused(sipline):
    user_only = cli(sipline.data_dir, "webhook", "create", "--scope", "user")
    refused = post(user_only, "voximplant.sip.get")
    assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope"
    assert "webhook token" in refused.json()["error_description"]
    assert result(post(user_only, "server.time"))  # global methods need no scope
    assert result(post(user_only, "method.get", json={"name": "voximplant.sip.get"}))["isAvailable"] is False


def test_batch_with_references_halt_and_the_length_limit(sipline):
    hook = sipline.webhook
    cmd = {
        "add": "voximplant.sip.add?TYPE=cloud&TITLE=Batch+line&SERVER=sip.example.invalid&LOGIN=1&PASSWORD=p",
        "status": "voximplant.sip.status?REG_ID=$result[add][REG_ID]",
        "get": "voximplant.sip.get?FILTER[CONFIG_ID]=$result[add][CONFIG_ID]",
        "title": "voximplant.sip.update?CONFIG_ID=$result[get][0][CONFIG_ID]&TITLE=$result[add][TITLE]+renamed",
        "missing": "voximplant.sip.status?REG_ID=42",
        "nested": "batch?cmd[x]=server.time",
        "unknown": "no.such.method",
    }
    body = result(post(hook, "batch", json={"cmd": cmd}))
    assert set(body) == {"result", "result_error", "result_total", "result_next", "result_time"}
    assert body["result"]["status"]["STATUS_RESULT"] == "wait"
    assert body["result"]["get"][0]["TITLE"] == "Batch line" and body["result_total"] == {"get": 1}
    assert body["result"].get("title") == 1, body["result_error"]
    assert result(post(hook, "voximplant.sip.get"))[0]["TITLE"] == "Batch line renamed"
    assert body["result_error"]["missing"]["error"] == "REG_ID_NOT_FOUND"
    assert body["result_error"]["nested"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"
    assert body["result_error"]["unknown"]["error"] == "ERROR_METHOD_NOT_FOUND"
    assert all(TIME_KEYS <= set(block) for block in body["result_time"].values())

    halted = result(post(hook, "batch", json={"halt": 1, "cmd": ["voximplant.sip.status?REG_ID=42", "server.time"]}))
    assert halted["result"] == [] and halted["result_time"] == []  # server.time never ran
    assert [failure["error"] for failure in halted["result_error"]] == ["REG_ID_NOT_FOUND"]
    many = result(post(hook, "batch", data={f"cmd[c{n}]": "server.time" for n in range(52)}))
    assert len(many["result"]) == 50
    assert {key: value["error"] for key, value in many["result_error"].items()} == {
        "c50": "ERROR_BATCH_LENGTH_EXCEEDED", "c51": "ERROR_BATCH_LENGTH_EXCEEDED"}


def test_batch_sub_calls_keep_their_scope(sipline):
    user_only = cli(sipline.data_dir, "webhook", "create", "--scope", "user")
    body = result(post(user_only, "batch", json={"cmd": {"a": "voximplant.sip.get", "b": "server.time"}}))
    assert body["result_error"]["a"]["error"] == "insufficient_scope" and "b" in body["result"]


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_speaks_xml(sipline, name):
    response = httpx.post(sipline.webhook + name + ".xml", data={"CODE": "x", "name": "server.time",
                                                                 "cmd[a]": "server.time"})
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.text.startswith('<?xml version="1.0" encoding="utf-8"?><response>')
    assert response.text.endswith("</response>")
    assert ("<result>" in response.text) == (response.status_code == 200)


def test_the_request_rate_limit_per_portal_and_client_ip(tmp_path):
    server = SiplineProcess(tmp_path / "data", "--rate-limit", "5/1", "--trusted-proxy", "127.0.0.1/32").start()
    try:
        answers = [post(server.webhook, "server.time").status_code for _ in range(6)]
        assert answers == [200] * 5 + [503]
        refused = post(server.webhook, "server.time")
        assert refused.json() == {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
        assert post(server.webhook, "no.such.method").status_code == 503  # before the method lookup
        # behind a trusted proxy, each client has its own bucket
        forwarded = post(server.webhook, "server.time", headers={"X-Forwarded-For": "198.51.100.7"})
        assert forwarded.status_code == 200
        time.sleep(1.1)  # one drained
        assert post(server.webhook, "server.time").status_code == 200
        assert post(server.webhook, "server.time").status_code == 503
    finally:
        server.stop()


def test_a_portal_of_its_own_limit(tmp_path):
    server = SiplineProcess(tmp_path / "data", "--rate-limit", "2/1").start()
    try:
        cli(server.data_dir, "portal", "create", "--domain", "localhost", "--rate-limit", "off")
        hook_b = cli(server.data_dir, "webhook", "create", "--portal", "localhost")
        path_b = "/rest/" + hook_b.split("/rest/", 1)[1]
        for _ in range(10):
            response = httpx.post(f"http://127.0.0.1:{server.port}{path_b}server.time",
                                  headers={"Host": f"localhost:{server.port}"})
            assert response.status_code == 200
        assert [post(server.webhook, "server.time").status_code for _ in range(3)] == [200, 200, 503]
        # an operator changes a running portal's limit
        assert cli(server.data_dir, "portal", "limit", "--portal", "localhost", "--rate-limit", "1/1") == \
            "rate limit 1/1"
        time.sleep(0.3)  # the server sees the change within its change-check interval
        answers = [httpx.post(f"http://127.0.0.1:{server.port}{path_b}server.time",
                              headers={"Host": f"localhost:{server.port}"}).status_code for _ in range(2)]
        assert answers == [200, 503]
    finally:
        server.stop()


def test_the_operating_time_limit(tmp_path):
    server = SiplineProcess(tmp_path / "data", "--operating-limit", "0.000001").start()
    try:
        first = post(server.webhook, "voximplant.sip.get")
        block = first.json()["time"]
        assert isinstance(block["operating_reset_at"], int) and block["operating"] > 0
        assert block["operating_reset_at"] - time.time() == pytest.approx(600, abs=5)
        blocked = post(server.webhook, "voximplant.sip.get")
        assert blocked.status_code == 429 and blocked.json() == {
            "error": "OPERATION_TIME_LIMIT", "error_description": "Method is blocked due to operation time limit."}
        assert post(server.webhook, "voximplant.line.get").status_code == 200  # other methods are not affected
        other = cli(server.data_dir, "webhook", "create")
        assert post(other, "voximplant.sip.get").status_code == 200  # nor other webhooks
        batch = result(post(server.webhook, "batch", json={"cmd": {"a": "voximplant.sip.get"}}))
        assert batch["result_error"]["a"]["error"] == "OPERATION_TIME_LIMIT"
    finally:
        server.stop()


def test_without_a_limiter_the_time_block_has_no_operating_fields(tmp_path):
    server = SiplineProcess(tmp_path / "data", "--operating-limit", "off").start()
    try:
        assert set(post(server.webhook, "server.time").json()["time"]) == TIME_KEYS
    finally:
        server.stop()


def test_reserved_names_do_not_reach_methods(sipline):
    added = result(post(sipline.webhook, "voximplant.sip.add", json={**LINE, "TITLE": "T", "state": "x",
                                                                     "start": 5}))
    assert added["TITLE"] == "T"
    assert call(sipline, "server.time").status_code == 401  # /rest/<method> without credentials
