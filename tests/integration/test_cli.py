"""The `sipline` command: bad settings are refused with a clear message and exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def sipline(*args: str, env: dict[str, str] | None = None, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sipline", *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, **(env or {})}, cwd=cwd)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--port", "65536"], {}, "port: '65536' is not a port number"),
        (["--port", "http"], {}, "port: 'http' is not a port number"),
        ([], {"SIPLINE_PORT": "99999"}, "port: '99999' is not a port number"),
        (["--tls-cert", "/nonexistent.pem"], {}, "--tls-cert and --tls-key go together"),
        (["--tls-cert", "/etc/hostname", "--tls-key", "/nonexistent"], {}, "is not a readable file"),
        (["--max-cloud-lines", "-1"], {}, "max-cloud-lines: '-1' is not a positive whole number"),
        (["--incoming-server", "bad host"], {}, "incoming-server: 'bad host' is not a host name"),
        (["--log-level", "loud"], {}, "log-level"),
        ([], {"SIPLINE_ACCESS_LOG": "maybe"}, "SIPLINE_ACCESS_LOG"),
        (["--tls", "mine"], {}, "invalid choice"),
    ],
)
def test_bad_settings(tmp_path, args, env, message):
    result = sipline("serve", "--data-dir", str(tmp_path), *args, env=env)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert result.stdout == ""


def test_bad_secret_key(tmp_path):
    result = sipline("serve", "--data-dir", str(tmp_path), "--port", "1", env={"SIPLINE_SECRET_KEY": "c2hvcnQ="})
    assert result.returncode == 2 and "SIPLINE_SECRET_KEY must decode to 32 bytes" in result.stderr


def test_commands_need_a_portal_first(tmp_path):
    result = sipline("webhook", "create", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "start `sipline serve` once first" in result.stderr




def test_a_wrong_key_is_refused_at_start(tmp_path):
    from tests.integration.server import SiplineProcess

    process = SiplineProcess(tmp_path / "data").start()
    import httpx

    httpx.post(process.webhook + "voximplant.sip.add", json={"SERVER": "s.example.invalid", "LOGIN": "u",
                                                             "PASSWORD": "p"})
    process.stop()
    (tmp_path / "data" / "secret.key").write_bytes(b"x" * 32)
    from tests.stores import store_env

    result = sipline("serve", "--data-dir", str(tmp_path / "data"), "--port", str(process.port),
                     env=store_env(tmp_path / "data"))
    assert result.returncode == 2 and "does not open with this key" in result.stderr


def test_https_with_the_operators_certificate(tmp_path):
    import ssl

    import httpx

    from sipline.server.tls import ensure_self_signed
    from tests.integration.server import SiplineProcess

    ca, cert, key = ensure_self_signed(tmp_path / "pki", "127.0.0.1")
    process = SiplineProcess(tmp_path / "data", "--tls-cert", str(cert), "--tls-key", str(key)).start()
    try:
        assert process.webhook.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(ca))
        response = httpx.get(process.webhook + "voximplant.sip.connector.status", verify=context)
        assert response.json()["result"]["PAID"] is True
    finally:
        process.stop()


def test_webhook_codes_are_stored_hashed(tmp_path):
    import hashlib

    from tests.integration.server import SiplineProcess

    process = SiplineProcess(tmp_path / "data").start()
    process.stop()
    code = process.webhook.rstrip("/").rsplit("/", 1)[1]
    from tests.stores import stored_bytes

    stored = stored_bytes(tmp_path / "data")
    assert code.encode() not in stored
    assert hashlib.sha256(code.encode()).hexdigest().encode() in stored
