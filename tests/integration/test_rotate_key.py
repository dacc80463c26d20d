"""`sipline rotate-key`: refused while any process holds the store; a rotation killed at any point
leaves a store that the next `rotate-key` and `serve` open, every secret readable."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from sipline.store.engines import lock_store
from sipline.store.urls import sqlite_url
from tests.integration.server import SiplineProcess
from tests.stores import database_url_for, store_env
from tests.waiting import wait_until

LINES = [{"TYPE": "cloud", "TITLE": f"Line {n}", "SERVER": "sip.example.invalid", "LOGIN": str(n),
          "PASSWORD": f"secret-{n}"} for n in range(3)] + [{"TYPE": "office", "TITLE": "Office", "SERVER": "pbx.lan",
                                                           "LOGIN": "office"}]


def sipline(data: Path, *args: str, wrapper: str | None = None) -> subprocess.CompletedProcess[str]:
    command = ["-c", wrapper, *args] if wrapper else ["-m", "sipline", *args]
    return subprocess.run([sys.executable, *command, "--data-dir", str(data)], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **store_env(data)})


def secrets_read(hook: str) -> list[tuple[str, str]]:
    answer = httpx.post(hook + "voximplant.sip.get")
    assert answer.status_code == 200, answer.text
    return sorted((row["TITLE"], row.get("PASSWORD") or row.get("INCOMING_PASSWORD")) for row in
                  answer.json()["result"])


def secrets_served(data: Path, stopped: SiplineProcess) -> list[tuple[str, str]]:
    """What a `serve` started on the data dir (on the stopped one's port) reads of the secrets."""
    process = SiplineProcess(data, port=stopped.port).start()
    try:
        return secrets_read(stopped.webhook)
    finally:
        process.stop()


def installation(data: Path) -> tuple[SiplineProcess, list[tuple[str, str]]]:
    """A stopped installation with lines whose secrets are sealed, and what sip.get read of them
    (the stopped process's `webhook` serves the processes started on its port after it)."""
    process = SiplineProcess(data).start()
    try:
        for body in LINES:
            assert httpx.post(process.webhook + "voximplant.sip.add", json=body).status_code == 200
        return process, secrets_read(process.webhook)
    finally:
        process.stop()


def test_rotate_key_is_refused_while_a_server_runs(tmp_path):
    data = tmp_path / "data"
    stopped, before = installation(data)
    key = (data / "secret.key").read_bytes()
    process = SiplineProcess(data, port=stopped.port).start()
    try:
        refused = sipline(data, "rotate-key")
        assert refused.returncode != 0 and "another sipline process uses the store" in refused.stderr, refused
        assert (data / "secret.key").read_bytes() == key and not (data / "secret.key.new").exists()
        assert secrets_read(stopped.webhook) == before  # the running server still opens every secret
    finally:
        process.stop()
    rotated = sipline(data, "rotate-key")
    assert rotated.returncode == 0 and rotated.stdout.startswith("resealed 6 secrets"), rotated.stderr
    assert secrets_served(data, stopped) == before


# `sipline rotate-key` with a SIGKILL at a chosen point of its work, told by what it does there
KILLED_AT = """
import os, signal, sys
from pathlib import Path
from sipline.cli import main as cli
from sipline.store import crypto

point = sys.argv.pop(1)
if point.startswith("seal-"):
    # seal-1: the new key made, the store not touched yet; seal-3: inside the transaction, some re-sealed
    seal, calls = crypto.SecretBox.seal, []
    def sealing(self, *args):
        calls.append(1)
        if len(calls) == int(point[5:]):
            os.kill(os.getpid(), signal.SIGKILL)
        return seal(self, *args)
    crypto.SecretBox.seal = sealing
else:
    # committed: the store re-sealed, `secret.key` about to be moved or replaced;
    # replacing: about to put the new key in the place of `secret.key`
    replace = os.replace
    def replacing(source, target):
        if Path(target).name == "secret.key" or (point == "committed" and Path(source).name == "secret.key"):
            os.kill(os.getpid(), signal.SIGKILL)
        return replace(source, target)
    os.replace = replacing
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("point", ["seal-1", "seal-3", "committed", "replacing"])
def test_a_rotation_killed_midway_is_recovered(tmp_path, point):
    data = tmp_path / "data"
    stopped, before = installation(data)
    killed = sipline(data, point, "rotate-key", wrapper=KILLED_AT)
    assert killed.returncode == -9, killed.stderr
    assert secrets_served(data, stopped) == before
    rotated = sipline(data, "rotate-key")
    assert rotated.returncode == 0 and rotated.stdout.startswith("resealed 6 secrets"), rotated.stderr
    assert secrets_served(data, stopped) == before
    assert [path.name for path in data.glob("secret.key*")] == ["secret.key"]


def test_a_rotation_killed_midway_is_recovered_by_the_next_rotation(tmp_path):
    data = tmp_path / "data"
    stopped, before = installation(data)
    assert sipline(data, "committed", "rotate-key", wrapper=KILLED_AT).returncode == -9
    rotated = sipline(data, "rotate-key")
    assert rotated.returncode == 0 and rotated.stdout.startswith("resealed 6 secrets"), rotated.stderr
    assert secrets_served(data, stopped) == before


def test_with_the_key_in_the_environment_the_new_key_is_left_for_the_operator(tmp_path):
    data = tmp_path / "data"
    old = {"SIPLINE_SECRET_KEY": base64.b64encode(b"o" * 32).decode()}
    first = SiplineProcess(data, env=old).start()
    try:
        assert httpx.post(first.webhook + "voximplant.sip.add", json=LINES[0]).status_code == 200
        before = secrets_read(first.webhook)
    finally:
        first.stop()
    rotated = subprocess.run([sys.executable, "-m", "sipline", "rotate-key", "--data-dir", str(data)],
                             capture_output=True, text=True, timeout=60, env={**os.environ, **store_env(data), **old})
    assert rotated.returncode == 0 and "secret.key.new" in rotated.stdout, rotated.stderr
    refused = subprocess.run([sys.executable, "-m", "sipline", "portal", "list", "--data-dir", str(data)],
                             capture_output=True, text=True, timeout=60, env={**os.environ, **store_env(data), **old})
    assert refused.returncode == 1 and "secret.key.new holds the key" in refused.stderr, refused.stderr
    new = {"SIPLINE_SECRET_KEY": base64.b64encode((data / "secret.key.new").read_bytes()).decode()}
    process = SiplineProcess(data, port=first.port, env=new).start()
    try:
        assert secrets_read(first.webhook) == before
    finally:
        process.stop()


def test_a_server_started_during_a_rotation_waits_for_it(tmp_path):
    data = tmp_path / "data"
    stopped, before = installation(data)
    process = SiplineProcess(data, port=stopped.port)
    try:
        with ThreadPoolExecutor(1) as pool:
            rotation = lock_store(database_url_for(data) or sqlite_url(data), exclusive=True)  # as rotate-key
            try:
                started = pool.submit(process.start, 60)
                waiting = process.data_dir / "stderr.log"
                wait_until(lambda: waiting.exists() and "waiting for it to finish" in process.stderr(), 30,
                           message=lambda: f"the server never said it waits: {process.stderr()}")
                assert not started.done() and process.proc.poll() is None
            finally:
                rotation.release()
            started.result(30)  # the lock released: the server starts
        assert secrets_read(stopped.webhook) == before
    finally:
        process.stop()


def test_key_files_a_store_without_secrets_cannot_tell_about_are_kept(tmp_path):
    data = tmp_path / "data"
    # a store with a portal and its webhook, no line: the only sealed secret is the kept webhook code
    # (docs/behaviour.md#dashboard), which tells nothing of the key files
    SiplineProcess(data).start().stop()
    for _ in range(2):
        rotated = sipline(data, "rotate-key")
        assert rotated.returncode == 0 and rotated.stdout.startswith("resealed 1 secrets"), rotated.stderr
    (data / "secret.key.new").write_bytes(b"n" * 32)  # another store's unfinished rotation, say
    refused = sipline(data, "rotate-key")
    assert refused.returncode == 1 and "left by an earlier rotate-key" in refused.stderr, refused.stderr
    assert (data / "secret.key.new").read_bytes() == b"n" * 32
