"""/metrics of `api` and `sip` processes on one PostgreSQL, and of `--workers 2` (README "Metrics"):
REST and store counts on an api process, line events on both sides, sums over workers."""

from __future__ import annotations

import base64
import os
import signal
import subprocess

import httpx
import sqlalchemy as sa

from tests.integration.server import SiplineProcess
from tests.metrics import families, value
from tests.peers import on_a_free_port
from tests.stores import ADMIN_URL, fresh_postgres, run_sql
from tests.waiting import wait_until

COUNT = "sipline_rest_request_duration_seconds_count"


def shared_env() -> dict[str, str]:
    return {"SIPLINE_DATABASE_URL": fresh_postgres(), "SIPLINE_SECRET_KEY": base64.b64encode(os.urandom(32)).decode()}


def events(process: SiplineProcess, direction: str, kind: str) -> float:
    return value(process.base_url, "sipline_line_events_total", direction=direction, kind=kind)


def cut_off(database_url: str, cut: bool) -> None:
    """No connection to the database (`cut`), as when PostgreSQL is unreachable; or connections again."""
    name = sa.engine.make_url(database_url).database
    run_sql(ADMIN_URL, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"false" if cut else "true"}')
    if cut:
        run_sql(ADMIN_URL, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")


def test_an_api_process_counts_rest_requests_and_store_errors(tmp_path):
    env = shared_env()
    api = SiplineProcess(tmp_path / "api", "--role", "api", env=env).start()
    try:
        found = families(api.base_url)
        assert {"sipline_rest_request_duration_seconds", "sipline_store_unavailable", "sipline_line_events"} <= set(
            found)
        assert "sipline_registrations" not in found  # no SIP side here
        assert httpx.post(api.webhook + "voximplant.sip.get").status_code == 200
        assert value(api.base_url, COUNT, method="voximplant.sip.get", code="200") == 1
        assert value(api.base_url, "sipline_store_unavailable_total") == 0
        cut_off(env["SIPLINE_DATABASE_URL"], True)
        try:
            assert httpx.post(api.webhook + "voximplant.sip.get", timeout=30).status_code == 503
            assert value(api.base_url, "sipline_store_unavailable_total") >= 1
            assert value(api.base_url, COUNT, method="voximplant.sip.get", code="503") == 1
        finally:
            cut_off(env["SIPLINE_DATABASE_URL"], False)
        wait_until(lambda: httpx.post(api.webhook + "voximplant.sip.get").status_code == 200, 20, interval=0.5)
    finally:
        api.stop()


def test_line_events_are_counted_where_published_and_where_received(tmp_path):
    env = shared_env()
    api = SiplineProcess(tmp_path / "api", "--role", "api", env=env).start()
    sip = SiplineProcess(tmp_path / "sip", "--role", "sip", env=env).start()
    try:
        assert events(api, "published", "added") == 0 and events(sip, "received", "added") == 0
        added = httpx.post(api.webhook + "voximplant.sip.add", json={
            "SERVER": "sip.example.invalid", "LOGIN": "100", "PASSWORD": "secret"}).json()["result"]
        assert events(api, "published", "added") == 1
        wait_until(lambda: events(sip, "received", "added") == 1, 10)
        assert httpx.post(api.webhook + "voximplant.sip.delete", json={"CONFIG_ID": added["CONFIG_ID"]}).status_code == 200
        assert events(api, "published", "deleted") == 1
        wait_until(lambda: events(sip, "received", "deleted") == 1, 10)
        held = families(sip.base_url)["sipline_leases_held"].samples
        assert len(held) == 1 and held[0].labels["worker"]
        assert value(sip.base_url, "sipline_sip_workers") == 1
    finally:
        for process in (api, sip):
            process.stop()


def test_every_worker_answers_with_the_sums_over_all_workers(tmp_path):
    temporary = tmp_path / "tmp"  # where serve makes its metrics directory ($TMPDIR)
    temporary.mkdir()
    env = {**shared_env(), "TMPDIR": str(temporary)}
    api = on_a_free_port(lambda port: SiplineProcess(tmp_path / "api", "--role", "api", "--workers", "2",
                                                     port=port, env=env).start(), udp_too=False)
    try:
        assert [path.name.startswith("sipline-metrics-") for path in temporary.iterdir()] == [True]
        for _ in range(40):  # a new connection each time: the kernel spreads them over both workers
            with httpx.Client() as client:
                assert client.post(api.webhook + "server.time").status_code == 200
        # each scrape, on a connection of its own, reaches either worker: both give the sum
        assert [value(api.base_url, COUNT, method="server.time", code="200") for _ in range(12)] == [40] * 12
        [child] = subprocess.run(["pgrep", "-P", str(api.proc.pid)], capture_output=True, text=True).stdout.split()
        os.kill(int(child), signal.SIGKILL)
        wait_until(lambda: subprocess.run(["pgrep", "-P", str(api.proc.pid)], capture_output=True).returncode != 0,
                   10, interval=0.2, message="the killed worker was not reaped")
        for _ in range(5):
            assert httpx.post(api.webhook + "server.time").status_code == 200
        assert value(api.base_url, COUNT, method="server.time", code="200") == 45  # the dead worker's counts stay
    finally:
        api.stop()
    assert list(temporary.iterdir()) == []  # the directory goes with the serve that made it
