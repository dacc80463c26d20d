"""`sipline rotate-key`, then `sipline migrate-store --to postgresql://…`: an embedded installation
re-seals its secrets under a new key and moves to PostgreSQL (docs/behaviour.md#store-migrate)."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx

from tests.integration.server import SiplineProcess
from tests.stores import fresh_postgres

EMBEDDED = {"SIPLINE_DATABASE_URL": ""}  # this test's first process runs on SQLite whatever the pass


def sipline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sipline", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **EMBEDDED})


def settled(rows: list[dict]) -> list[dict]:
    """The rows without the live registration outcome, which the engine writes whenever it has one."""
    return [{key: value for key, value in row.items() if not key.startswith("REGISTRATION_")} for row in rows]


def test_an_embedded_store_moves_to_postgresql(tmp_path):
    data = tmp_path / "data"
    embedded = SiplineProcess(data, env=EMBEDDED).start()
    try:
        hook = embedded.webhook
        for body in ({"TYPE": "cloud", "TITLE": "Main", "SERVER": "sip.example.invalid", "LOGIN": "100",
                      "PASSWORD": "secret"}, {"TYPE": "office", "TITLE": "Office", "SERVER": "pbx.lan", "LOGIN": "office"}):
            assert httpx.post(hook + "voximplant.sip.add", json=body).status_code == 200
        before = settled(httpx.post(hook + "voximplant.sip.get").json()["result"])
        extra = sipline("webhook", "create", "--data-dir", str(data)).stdout.strip()
    finally:
        embedded.stop()

    old_key = (data / "secret.key").read_bytes()
    rotated = sipline("rotate-key", "--data-dir", str(data))
    # the cloud line's PASSWORD, the office line's INCOMING_PASSWORD, its registrar HA1 values, and the
    # first portal's webhook code kept to be printed at every start
    assert rotated.returncode == 0 and rotated.stdout.startswith("resealed 4 secrets"), rotated.stderr
    assert (data / "secret.key").read_bytes() != old_key and not (data / "secret.key.new").exists()

    target = fresh_postgres()
    moved = sipline("migrate-store", "--data-dir", str(data), "--to", target)
    assert moved.returncode == 0, moved.stderr
    assert "line: 2" in moved.stdout.splitlines() and "portal: 1" in moved.stdout.splitlines()
    again = sipline("migrate-store", "--data-dir", str(data), "--to", target)
    assert again.returncode == 1 and "already holds portals" in again.stderr

    shared = SiplineProcess(data, "--database-url", target, port=embedded.port).start()
    try:
        after = settled(httpx.post(hook + "voximplant.sip.get").json()["result"])
        assert after == before  # same lines, ids, generated office credentials (opened with the new key)
        assert httpx.post(extra + "voximplant.sip.get").status_code == 200  # webhooks moved too
        added = httpx.post(hook + "voximplant.sip.add", json={"TYPE": "cloud", "TITLE": "New", "LOGIN": "2",
                                                              "SERVER": "sip.example.invalid", "PASSWORD": "p"})
        assert added.status_code == 200, added.text
        assert int(added.json()["result"]["CONFIG_ID"]) == 3  # ids continue above the copied ones
    finally:
        shared.stop()
