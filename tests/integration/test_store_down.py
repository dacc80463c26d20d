"""One envelope for every HTTP error, over real HTTP (docs/behaviour.md#rest-errors): with the
PostgreSQL database refusing connections, /healthz, REST in JSON and in XML, the OAuth server and its
`app.info` all answer the same DATABASE_UNAVAILABLE, and answer again once it is back; a sip worker's
paths other than /healthz and /metrics are the 404 envelope."""

from __future__ import annotations

import httpx
import psycopg
import pytest
import sqlalchemy as sa

from tests.integration.server import SiplineProcess
from tests.integration.test_wire import assert_error, assert_json
from tests.stores import ADMIN_URL, fresh_postgres
from tests.waiting import wait_until

UNAVAILABLE = "Database unreachable, try again"


def allow_connections(url: str, allowed: bool) -> None:
    """Let the database take connections, or not, and end the ones it has (as a PostgreSQL restart
    would, without touching the other tests' databases)."""
    name = sa.engine.make_url(url).database
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


@pytest.fixture
def on_postgres(tmp_path):
    url = fresh_postgres()
    process = SiplineProcess(tmp_path / "data", "--oauth-listen", "127.0.0.1:0",
                             env={"SIPLINE_DATABASE_URL": url}).start()
    yield process, url
    allow_connections(url, True)
    process.stop()


def test_every_answer_that_needs_the_store_is_the_same_envelope_while_it_is_down(on_postgres):
    process, url = on_postgres
    webhook = process.webhook
    code = webhook.rstrip("/").rsplit("/", 1)[1]
    token_url = f"{process.base_url}/oauth/token/"
    grant = {"grant_type": "refresh_token", "client_id": "local.x", "client_secret": "s", "refresh_token": "r"}
    assert assert_json(httpx.get(f"{process.base_url}/healthz"), 200) == {"status": "ok"}

    allow_connections(url, False)
    wait_until(lambda: httpx.get(f"{process.base_url}/healthz").status_code == 503, 10, message="/healthz stays 200")
    for response in (
        httpx.get(f"{process.base_url}/healthz"),
        httpx.post(webhook + "voximplant.sip.get"),  # a portal's lines are always read from the store
        httpx.get(token_url, params=grant),
        httpx.post(f"http://127.0.0.1:{process.oauth_port}/rest/app.info", data={"auth": "a" * 70}),
    ):
        assert assert_error(response, 503, "DATABASE_UNAVAILABLE", UNAVAILABLE) == {
            "error": "DATABASE_UNAVAILABLE", "error_description": UNAVAILABLE}
    xml = httpx.post(webhook + "voximplant.sip.get.xml")
    assert xml.status_code == 503 and xml.headers["content-type"] == "text/xml; charset=utf-8"
    assert xml.text == ('<?xml version="1.0" encoding="utf-8"?><response><error>DATABASE_UNAVAILABLE</error>'
                        f"<error_description>{UNAVAILABLE}</error_description></response>")

    allow_connections(url, True)
    wait_until(lambda: httpx.get(f"{process.base_url}/healthz").status_code == 200, 10, message="/healthz stays 503")
    assert httpx.post(webhook + "voximplant.sip.get").json()["result"] == []
    assert assert_error(httpx.get(token_url, params=grant), 401, "invalid_client", "Invalid client credentials")

    log = process.stderr()
    assert "database unavailable for /rest/1/***/voximplant.sip.get:" in log
    assert "database unavailable for /healthz:" in log and "database unavailable for /oauth/token/:" in log
    assert code not in log and "Traceback" not in log


def test_a_sip_worker_answers_other_paths_with_the_404_envelope(on_postgres, tmp_path):
    _, url = on_postgres
    worker = SiplineProcess(tmp_path / "sip", "--role", "sip", env={"SIPLINE_DATABASE_URL": url}).start()
    try:
        for path in ("/rest/1/abc/voximplant.sip.get", "/oauth/token/", "/"):
            assert_error(httpx.post(worker.base_url + path), 404, "ERROR_METHOD_NOT_FOUND",
                         "This is a sip worker: the REST API is on the api processes")
        assert assert_json(httpx.get(worker.base_url + "/healthz"), 200) == {"status": "ok"}
    finally:
        worker.stop()
