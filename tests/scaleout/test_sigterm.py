"""A `sip` worker stopped with SIGTERM (systemd, docker stop) shuts down as its code says: it hands its
leases back at once, so the other workers take its lines without waiting for the leases to run out
(docs/deploy.md), and exits 0. uvicorn alone would end the process before that shutdown ran."""

from __future__ import annotations

import base64
import os
import signal

import httpx

from tests.integration.server import SiplineProcess
from tests.stores import fresh_postgres, run_sql
from tests.waiting import wait_until

LINES = 3


def test_a_sigtermed_sip_worker_hands_its_leases_back_and_exits_0(tmp_path):
    database_url = fresh_postgres()
    env = {"SIPLINE_DATABASE_URL": database_url, "SIPLINE_SECRET_KEY": base64.b64encode(os.urandom(32)).decode()}
    api = SiplineProcess(tmp_path / "api", "--role", "api", env=env).start()
    # leases far longer than the test: only a worker's own release frees them in time
    sip = SiplineProcess(tmp_path / "sip", "--role", "sip", "--lease-time", "600", env=env).start()
    try:
        path = "/rest/" + api.webhook.split("/rest/", 1)[1]
        for number in range(LINES):
            added = httpx.post(f"http://127.0.0.1:{api.port}{path}voximplant.sip.add", timeout=10, json={
                "TYPE": "cloud", "TITLE": f"line {number}", "SERVER": "sip.example.invalid", "LOGIN": f"u{number}"})
            assert added.status_code == 200, added.text

        def owners() -> dict[object, int]:
            return dict(run_sql(database_url, "SELECT lease_owner, count(*) FROM registration GROUP BY 1"))

        wait_until(lambda: None not in owners() and sum(owners().values()) == LINES, 30,
                   message=lambda: f"the worker never leased every line: {owners()}")
        assert run_sql(database_url, "SELECT count(*) FROM sip_worker") == [(1,)]
        sip.proc.send_signal(signal.SIGTERM)
        assert sip.proc.wait(timeout=20) == 0, sip.stderr()
        assert owners() == {None: LINES}  # given back, not left to run out in 600 s
        assert run_sql(database_url, "SELECT count(*) FROM sip_worker") == [(0,)]
    finally:
        sip.stop()
        api.stop()
