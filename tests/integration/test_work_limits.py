"""The bounds on what one call may cost: FILTER sizes (ERROR_ARGUMENT) and a portal's lines
(MAX_SIP_LINES), with their flags and operator commands (README, REST limits)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.integration.operator import cli, error, fields, hook_call, result
from tests.integration.server import SiplineProcess
from tests.stores import store_env

CLOUD = {"TYPE": "cloud", "SERVER": "sip.example.invalid", "LOGIN": "100", "PASSWORD": "s"}
OFFICE = {"TYPE": "office", "SERVER": "pbx.example.invalid", "LOGIN": "200"}


def test_a_filter_list_over_500_values_is_refused(api):
    api.add(TITLE="A")
    allowed = api.call("voximplant.sip.get", data={"FILTER[CONFIG_ID][]": [str(n) for n in range(500)]})
    assert allowed.status_code == 200
    refused = api.call("voximplant.sip.get", data={"FILTER[CONFIG_ID][]": [str(n) for n in range(501)]})
    assert refused.status_code == 400 and refused.json() == {
        "error": "ERROR_ARGUMENT", "error_description": "Filter CONFIG_ID: more than 500 values in one list"}


def test_search_alternatives_count_as_values_of_their_list(api):
    refused = api.call("voximplant.sip.get", json={"FILTER": {"?TITLE": "|".join(["a"] * 501)}})
    assert (refused.status_code, refused.json()["error"]) == (400, "ERROR_ARGUMENT")


def test_a_filter_over_1000_values_in_all_is_refused(api):
    lists = {"CONFIG_ID": list(range(500)), "!CONFIG_ID": list(range(500))}
    assert api.call("voximplant.sip.get", json={"FILTER": lists}).status_code == 200
    refused = api.call("voximplant.sip.get", json={"FILTER": {**lists, "%TITLE": "x"}})
    assert refused.status_code == 400 and refused.json() == {
        "error": "ERROR_ARGUMENT", "error_description": "FILTER: more than 1000 values in all"}


def test_a_batch_is_bounded_in_all_its_filters(api):
    heavy = "voximplant.sip.get?" + "&".join(f"FILTER[!{field}][]={n}" for field in ("ID", "CONFIG_ID")
                                             for n in range(500))
    answer = api.result("batch", json={"cmd": [heavy] * 6 + ["voximplant.sip.get"]})
    assert answer["result"] == {"0": [], "1": [], "2": [], "3": [], "4": [], "6": []}  # a call without FILTER runs
    assert list(answer["result_error"]) == ["5"]
    assert answer["result_error"]["5"] == {
        "error": "ERROR_ARGUMENT", "error_description": "batch: more than 5000 FILTER values in all of its calls"}


@pytest.fixture
def tight(tmp_path):
    server = SiplineProcess(tmp_path / "data", "--filter-max-values", "2", "--filter-max-terms", "3",
                            "--filter-max-batch-terms", "4", "--max-lines", "2").start()
    yield server
    server.stop()


def test_the_filter_and_line_limits_follow_the_serve_flags(tight):
    assert error(hook_call(tight.webhook, tight, "voximplant.sip.get",
                           json={"FILTER": {"ID": [1, 2, 3]}})) == (400, "ERROR_ARGUMENT")
    assert error(hook_call(tight.webhook, tight, "voximplant.sip.get",
                           json={"FILTER": {"ID": [1, 2], "!ID": [3, 4]}})) == (400, "ERROR_ARGUMENT")
    assert result(hook_call(tight.webhook, tight, "voximplant.sip.get",
                            json={"FILTER": {"ID": [1, 2], "!ID": 3}})) == []
    batch = result(hook_call(tight.webhook, tight, "batch",
                             json={"cmd": ["voximplant.sip.get?FILTER[ID][]=1&FILTER[ID][]=2"] * 3}))
    assert list(batch["result_error"]) == ["2"]
    result(hook_call(tight.webhook, tight, "voximplant.sip.add", json=CLOUD))
    result(hook_call(tight.webhook, tight, "voximplant.sip.add", json=OFFICE))
    # the bootstrap portal took --max-lines 2
    refused = hook_call(tight.webhook, tight, "voximplant.sip.add", json={**OFFICE, "LOGIN": "201"})
    assert refused.status_code == 400 and refused.json() == {
        "error": "MAX_SIP_LINES", "error_description": "You cannot connect more than 2 SIP lines."}


def test_a_portal_refuses_lines_past_its_limit_until_it_is_raised(sipline):
    made = fields(cli(sipline.data_dir, "portal", "create", "--domain", "localhost", "--max-lines", "2"))
    hook = made["webhook"]

    def add(fields_):
        return hook_call(hook, sipline, "voximplant.sip.add", host="localhost", json=fields_)

    result(add(CLOUD))
    result(add(OFFICE))
    refused = add({**OFFICE, "LOGIN": "201"})
    assert refused.json() == {"error": "MAX_SIP_LINES", "error_description": "You cannot connect more than 2 SIP lines."}
    assert refused.status_code == 400
    assert len(result(hook_call(hook, sipline, "voximplant.sip.get", host="localhost"))) == 2  # nothing added
    assert cli(sipline.data_dir, "portal", "limit", "--portal", "localhost", "--max-lines", "3") == "max lines 3"
    result(add({**OFFICE, "LOGIN": "201"}))
    assert error(add({**CLOUD, "LOGIN": "101"})) == (400, "MAX_SIP_LINES")
    # the default portal keeps the default limit
    result(hook_call(sipline.webhook, sipline, "voximplant.sip.add", json=OFFICE))


@pytest.mark.parametrize("args", [[], ["--max-lines", "0"], ["--max-lines", "x"], ["--max-lines", str(2**31)]])
def test_portal_limit_needs_a_valid_setting(sipline, args):
    done = subprocess.run([sys.executable, "-m", "sipline", "portal", "limit", "--data-dir", str(sipline.data_dir),
                           *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **store_env(sipline.data_dir)})
    assert done.returncode == 2 and "max-lines" in done.stderr
