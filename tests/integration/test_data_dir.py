"""The data dir of a real `sipline serve` is its owner's alone: folders 0700, files 0600 (SQLite's
-wal and -shm too), also where an older version left them readable."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx

from tests.integration.server import SiplineProcess
from tests.stores import ON_POSTGRES


def modes(data_dir: Path) -> dict[str, int]:
    entries = [data_dir, *data_dir.rglob("*")]
    return {str(path.relative_to(data_dir)): stat.S_IMODE(path.lstat().st_mode) for path in entries}


def not_private(data_dir: Path) -> dict[str, str]:
    return {name: oct(mode) for name, mode in modes(data_dir).items()
            if mode != (0o700 if (data_dir / name).is_dir() else 0o600)}


def add_line(process: SiplineProcess) -> None:
    answer = httpx.post(process.webhook + "voximplant.sip.add", verify=False,
                        json={"SERVER": "sip.example.invalid", "LOGIN": "u", "PASSWORD": "p"})
    assert answer.status_code == 200, answer.text


def test_every_file_in_the_data_dir_is_private_while_serving(tmp_path):
    data = tmp_path / "data"
    process = SiplineProcess(data, "--tls", "self-signed").start()
    try:
        add_line(process)  # a write: SQLite's -wal and -shm are there while it runs
        found = set(modes(data))
        expected = {"secret.key", "base_url", "oauth_url", "tls/ca.pem", "tls/ca.key", "tls/server.pem",
                    "tls/server.key"}
        if not ON_POSTGRES:
            expected |= {"sipline.db", "sipline.db-wal", "sipline.db-shm"}
        assert expected <= found, found
        assert not_private(data) == {}
    finally:
        process.stop()
    assert not_private(data) == {}


def test_a_data_dir_left_readable_is_tightened_at_start(tmp_path):
    data = tmp_path / "data"
    process = SiplineProcess(data, "--tls", "self-signed").start()
    add_line(process)
    process.kill()  # SIGKILL: SQLite's -wal and -shm stay behind
    for path in [data, *data.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert not_private(data) != {}
    process = SiplineProcess(data, "--tls", "self-signed", port=process.port).start()
    try:
        assert not_private(data) == {}
    finally:
        process.stop()
