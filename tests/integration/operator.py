"""The operator's side in tests: `sipline portal|user|webhook|app …` against a server's data dir, and OAuth."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx

from tests.integration.server import SiplineProcess
from tests.stores import store_env


def run_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sipline", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=60, env={**os.environ, **store_env(data_dir)})


def cli(data_dir: Path, *args: str) -> str:
    """Run an operator command; its standard output (it must succeed)."""
    done = run_cli(data_dir, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def cli_refused(data_dir: Path, *args: str) -> str:
    """Run an operator command that must fail (exit 1, nothing on stdout); its standard error."""
    done = run_cli(data_dir, *args)
    assert done.returncode == 1 and done.stdout == "", (done.returncode, done.stdout, done.stderr)
    return done.stderr.strip()


def fields(output: str) -> dict[str, str]:
    """`key: value` lines as a dict."""
    return dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)


class Handler:
    """An app's handler URL, a real HTTP server: records what the portal POSTs to it, answers `status`."""

    def __init__(self, status: int = 200) -> None:
        received = self.received = []

        class Recorder(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server spelling
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.headers["Content-Type"], parse_qs(body.decode())))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.http = HTTPServer(("127.0.0.1", 0), Recorder)
        self.url = f"http://127.0.0.1:{self.http.server_port}/install"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


class App:
    """An OAuth app made with `sipline app create`, and its way to tokens."""

    def __init__(self, server: SiplineProcess, *args: str, host: str = "127.0.0.1", scheme: str = "http") -> None:
        self.server, self.host = server, host
        self.base = f"{scheme}://127.0.0.1:{server.port}"
        created = fields(cli(server.data_dir, "app", "create", "--name", "test app", *args))
        self.client_id, self.client_secret, self.installed = (created["client_id"], created["client_secret"],
                                                               created["installed"])

    def code(self, user: int = 1) -> str:
        """A code for `user`, consented to by the operator: `sipline app authorize` (docs/behaviour.md#oauth-consent)."""
        portal = [] if self.host == "127.0.0.1" else ["--portal", self.host]
        printed = fields(cli(self.server.data_dir, "app", "authorize", "--client-id", self.client_id,
                             "--user", str(user), *portal))
        return printed["code"]

    def token(self, **params: str) -> httpx.Response:
        return httpx.get(f"{self.base}/oauth/token/", verify=False,
                         params={"client_id": self.client_id, "client_secret": self.client_secret, **params})

    def tokens(self, user: int = 1) -> dict:
        response = self.token(grant_type="authorization_code", code=self.code(user))
        assert response.status_code == 200, response.text
        return response.json()


def call(server: SiplineProcess, method: str, *, host: str = "127.0.0.1", **kw) -> httpx.Response:
    """POST /rest/<method> at the server, as `host` (portals are chosen by the Host header)."""
    return httpx.post(f"http://127.0.0.1:{server.port}/rest/{method}", headers={"Host": f"{host}:{server.port}",
                                                                               **kw.pop("headers", {})}, **kw)


def hook_call(webhook: str, server: SiplineProcess, method: str, *, host: str = "127.0.0.1", **kw) -> httpx.Response:
    """POST <webhook>/<method>, sent to the server whatever host the webhook URL names."""
    path = "/rest/" + webhook.split("/rest/", 1)[1]
    return httpx.post(f"http://127.0.0.1:{server.port}{path}{method}", headers={"Host": f"{host}:{server.port}"},
                      **kw)


def result(response: httpx.Response):
    assert response.status_code == 200, response.text
    return response.json()["result"]


def error(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]
