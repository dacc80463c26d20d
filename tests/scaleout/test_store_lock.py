"""PostgreSQL: a serving process holds the store lock again after its connections were cut, so
`sipline rotate-key` stays refused while it runs."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import sqlalchemy as sa

from tests.integration.server import SiplineProcess
from tests.stores import fresh_postgres, run_sql
from tests.waiting import wait_until


def lock_holders(url: str) -> int:
    """Sessions holding an advisory lock in this database (the server's store lock, once retaken)."""
    return run_sql(url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())")[0][0]


def test_rotate_key_stays_refused_after_the_servers_connections_were_cut(tmp_path):
    url = fresh_postgres()
    data = tmp_path / "data"
    process = SiplineProcess(data, env={"SIPLINE_DATABASE_URL": url}).start()
    try:
        added = httpx.post(process.webhook + "voximplant.sip.add",
                           json={"SERVER": "sip.example.invalid", "LOGIN": "u", "PASSWORD": "secret"})
        assert added.status_code == 200, added.text
        name = sa.engine.make_url(url).database
        run_sql(url, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
                     "AND pid <> pg_backend_pid()")  # what a network cut or a server restart does
        wait_until(lambda: lock_holders(url) > 0, 20, interval=0.1,
                   message="the server did not take the store lock again")
        refused = subprocess.run([sys.executable, "-m", "sipline", "rotate-key", "--data-dir", str(data)],
                                 capture_output=True, text=True, timeout=60,
                                 env={**os.environ, "SIPLINE_DATABASE_URL": url})
        assert refused.returncode != 0 and "another sipline process uses the store" in refused.stderr, refused
        got = httpx.post(process.webhook + "voximplant.sip.get")
        assert got.status_code == 200 and got.json()["result"][0]["PASSWORD"] == "secret", got.text
    finally:
        process.stop()
