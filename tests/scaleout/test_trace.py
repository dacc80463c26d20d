"""`sipline.sip.trace` on PostgreSQL with separate `api` and `sip` processes (docs/behaviour.md#line-trace): the API
process asks the workers through the store, and shows what the worker that did the SIP work kept."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time

import httpx
import pytest

from tests.integration.server import SiplineProcess
from tests.interop.conftest import FAST
from tests.interop.test_office_registrar import MD5_FIRST, NO_ABUSE_LIMITS
from tests.peers import sipp
from tests.peers.kamailio import Kamailio
from tests.stores import fresh_postgres, run_sql
from tests.waiting import wait_until


@pytest.fixture
def kamailio(tmp_path):
    with Kamailio(tmp_path / "kamailio") as registrar:
        yield registrar


@pytest.fixture
def processes(tmp_path):
    database_url = fresh_postgres()
    env = {"SIPLINE_DATABASE_URL": database_url, "SIPLINE_SECRET_KEY": base64.b64encode(os.urandom(32)).decode()}
    api = SiplineProcess(tmp_path / "api", "--role", "api", env=env)
    sips = [SiplineProcess(tmp_path / f"sip{i}", "--role", "sip", "--allow-private-targets", *FAST, *MD5_FIRST,
                           *NO_ABUSE_LIMITS, env=env) for i in range(2)]
    started = []
    try:
        for process in (api, *sips):
            started.append(process.start())
        yield env, api, sips
    finally:
        for process in started:
            process.stop()


def call(api: SiplineProcess, method: str, **body) -> httpx.Response:
    return httpx.post(api.webhook + method, json=body, timeout=10)


def ladder(entries: list[dict]) -> list[tuple[str, str]]:
    return [(entry["DIRECTION"], entry["MESSAGE"].split("\r\n", 1)[0]) for entry in entries]


def trace(api: SiplineProcess, config_id: int) -> list[dict]:
    response = call(api, "sipline.sip.trace", CONFIG_ID=config_id)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def test_the_api_process_shows_what_the_workers_kept(processes, kamailio, tmp_path):
    env, api, sips = processes
    database_url = env["SIPLINE_DATABASE_URL"]
    added = call(api, "voximplant.sip.add", TYPE="cloud", TITLE="t", SERVER=f"127.0.0.1:{kamailio.port}",
                 LOGIN="user0001", PASSWORD="not-the-password")
    cloud = int(added.json()["result"]["CONFIG_ID"])
    uri = f"REGISTER sip:127.0.0.1:{kamailio.port} SIP/2.0"
    entries = wait_until(lambda: len(found := trace(api, cloud)) >= 4 and found, 20,
                         message=lambda: f"trace {ladder(trace(api, cloud))}")
    assert ladder(entries)[:3] == [("out", uri), ("in", "SIP/2.0 401 Unauthorized"), ("out", uri)]
    assert 'response="…"' in entries[2]["MESSAGE"] and "not-the-password" not in str(entries)
    sip_ports = {process.sip_port for process in sips}
    assert {int(entry["LOCAL"].rsplit(":", 1)[1]) for entry in entries} <= sip_ports
    assert run_sql(database_url, "SELECT count(*) FROM line_trace") == [(0,)]  # taken rows are deleted
    # the operator's `line show --trace` asks the workers as the api process does
    shown = subprocess.run([sys.executable, "-m", "sipline", "line", "show", str(cloud), "--trace", "--json",
                            "--data-dir", str(api.data_dir)], capture_output=True, text=True, timeout=60,
                           env={**os.environ, **env})
    assert shown.returncode == 0, shown.stderr
    shown_trace = json.loads(shown.stdout)["TRACE"]
    assert ladder(shown_trace)[:3] == ladder(entries)[:3] and "not-the-password" not in shown.stdout
    text = subprocess.run([sys.executable, "-m", "sipline", "line", "show", str(cloud), "--trace",
                           "--data-dir", str(api.data_dir)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env}).stdout
    assert "trace (sipline.sip.trace): " in text and f"-> 127.0.0.1:{kamailio.port}\n{uri}\nVia: " in text

    office = call(api, "voximplant.sip.add", TYPE="office", TITLE="o", SERVER="pbx.example.invalid", LOGIN="trunk",
                  PASSWORD="x").json()["result"]
    began = time.monotonic()
    assert trace(api, int(office["CONFIG_ID"])) == []  # no worker holds anything: [] after the wait
    assert time.monotonic() - began < 3
    user = (office["INCOMING_LOGIN"], office["INCOMING_PASSWORD"])
    assert sipp.register_office(tmp_path / "pbx", sips[1].sip_port, None, [user]) == ["result 200 expires=600"]
    office_entries = trace(api, int(office["CONFIG_ID"]))
    assert [direction for direction, _ in ladder(office_entries)] == ["in", "out", "in", "out"]
    assert ladder(office_entries)[-1] == ("out", "SIP/2.0 200 OK")
    assert {entry["LOCAL"] for entry in office_entries} == {f"127.0.0.1:{sips[1].sip_port}"}
    assert user[1] not in str(office_entries) and re.search(r'response="…"', office_entries[2]["MESSAGE"])
