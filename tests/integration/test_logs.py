"""The log of a real `sipline serve` (docs/behaviour.md#logs): with --log-format json (or SIPLINE_LOG_FORMAT, or
by default when stderr is not a terminal) every line on stderr is one JSON object, sipline's and uvicorn's alike,
a line's status change carries its fields, and no webhook code shows; with --log-format text the fields follow
the message as key=value."""

from __future__ import annotations

import re

import httpx
import orjson

from tests.integration.conftest import Api
from tests.integration.server import SiplineProcess
from tests.integration.test_store_down import allow_connections
from tests.stores import fresh_postgres
from tests.waiting import wait_until

ISO_MS_OFFSET = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d\Z")
# the first REGISTER of a new line at once: its name fails at once (RFC 6761 .invalid)
FAST = ("--new-line-spread", "0.1")
INFO = {"SIPLINE_TEST_LOG_LEVEL": "info"}


def log_text(process: SiplineProcess) -> str:
    return (process.data_dir / "stderr.log").read_text()


def entries(process: SiplineProcess) -> list[dict]:
    """Every line of stderr as JSON; each must be one object with the keys every record has."""
    found = []
    for line in log_text(process).splitlines():
        entry = orjson.loads(line)
        assert isinstance(entry, dict), line
        assert ISO_MS_OFFSET.match(entry["time"]), line
        assert entry["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), line
        assert isinstance(entry["logger"], str) and isinstance(entry["message"], str), line
        found.append(entry)
    return found


def status_change(process: SiplineProcess, config_id: int) -> dict | None:
    return next((entry for entry in entries(process)
                 if entry["logger"] == "sipline.registration" and entry.get("config_id") == int(config_id)), None)


def failing_line(process: SiplineProcess) -> tuple[Api, dict]:
    api = Api(process.webhook)
    return api, api.add(SERVER="sip.example.invalid")


def code_of(process: SiplineProcess) -> str:
    return process.webhook.rstrip("/").rsplit("/", 1)[1]


def test_json_lines_of_sipline_and_uvicorn_with_a_status_change_and_no_webhook_code(tmp_path):
    process = SiplineProcess(tmp_path / "data", "--log-format", "json", "--access-log", *FAST, env=INFO).start()
    api, line = failing_line(process)
    try:
        change = wait_until(lambda: status_change(process, line["CONFIG_ID"]), 10,
                            message=lambda: log_text(process)[-2000:])
        assert api.call("voximplant.sip.nothing").status_code == 404  # a REST error, in the access log
    finally:
        api.client.close()
        process.stop()
    assert {key: change.get(key) for key in ("level", "portal", "code", "reason", "cause")} == {
        "level": "WARNING", "portal": "127.0.0.1", "code": 502, "reason": "Unable to resolve hostname", "cause": "dns"}
    assert "sip.example.invalid" in change["provider"]
    assert change["message"] == (f"line {line['CONFIG_ID']} (portal 127.0.0.1): error 502 Unable to resolve "
                                 "hostname (dns)")
    found = entries(process)
    by_logger = {(entry["logger"], entry["message"].split(" ")[0]) for entry in found}
    assert ("sipline", "sipline") in by_logger  # "sipline (all) listening on …"
    assert ("uvicorn.error", "Started") in by_logger  # uvicorn's own record, in the same format
    access = [entry["message"] for entry in found if entry["logger"] == "sipline.access"]
    assert any('"POST /rest/1/***/voximplant.sip.add" 200' in message for message in access)
    assert any('"POST /rest/1/***/voximplant.sip.nothing" 404' in message for message in access)
    assert code_of(process) not in log_text(process)


def test_the_variable_chooses_json_and_a_store_error_is_a_json_warning_without_the_code(tmp_path):
    url = fresh_postgres()
    process = SiplineProcess(tmp_path / "data", env={"SIPLINE_DATABASE_URL": url, "SIPLINE_LOG_FORMAT": "json",
                                                     **INFO}).start()
    try:
        allow_connections(url, False)
        wait_until(lambda: httpx.post(process.webhook + "voximplant.sip.get").status_code == 503, 10)
    finally:
        allow_connections(url, True)
        process.stop()
    [warning, *_] = [entry for entry in entries(process) if entry["logger"] == "sipline.rest"]
    assert warning["level"] == "WARNING"
    assert warning["message"].startswith("database unavailable for /rest/1/***/voximplant.sip.get: ")
    assert code_of(process) not in log_text(process)


def test_without_a_terminal_the_default_is_json(tmp_path):
    process = SiplineProcess(tmp_path / "data", env={"SIPLINE_LOG_FORMAT": "", **INFO}).start()  # empty: unset
    process.stop()
    assert any(entry["message"].startswith("sipline (all) listening on") for entry in entries(process))


def test_text_shows_the_fields_as_key_value(tmp_path):
    process = SiplineProcess(tmp_path / "data", "--log-format", "text", *FAST, env=INFO).start()
    api, line = failing_line(process)
    wanted = (f"WARNING sipline.registration: line {line['CONFIG_ID']} (portal 127.0.0.1): error 502 Unable to "
              f"resolve hostname (dns) portal=127.0.0.1 config_id={line['CONFIG_ID']} code=502 "
              'reason="Unable to resolve hostname" cause=dns provider=')
    try:
        wait_until(lambda: wanted in log_text(process), 10, message=lambda: log_text(process)[-2000:])
    finally:
        api.client.close()
        process.stop()
    assert not [text for text in log_text(process).splitlines() if text.startswith("{")]
    assert "INFO uvicorn.error: Started server process" in log_text(process)
