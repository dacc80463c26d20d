"""Real peers for registration tests: Kamailio as a registrar, SIPp as a provider, sipline between."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.server import SiplineProcess
from tests.peers.kamailio import Kamailio
from tests.waiting import wait_until

# Protocol delays in these tests run at this fraction of real time (SIPLINE_TIME_SCALE):
# Timer F is 0.64 s instead of 32 s, the first rejection retry 6 s instead of 300 s.
SCALE = 0.02


class Line:
    """A line created through the API, with its status helpers."""

    def __init__(self, webhook: str, body: dict) -> None:
        self.webhook = webhook
        response = httpx.post(webhook + "voximplant.sip.add", json=body)
        assert response.status_code == 200, response.text
        self.row = response.json()["result"]
        self.reg_id = self.row.get("REG_ID")
        self.config_id = int(self.row["CONFIG_ID"])

    def status(self) -> dict:
        return httpx.post(self.webhook + "voximplant.sip.status", json={"REG_ID": self.reg_id}).json()["result"]

    def wait(self, result: str, timeout: float = 10.0) -> dict:
        return wait_until(lambda: (status := self.status())["STATUS_RESULT"] == result and status, timeout,
                          message=lambda: f"line {self.config_id} stayed {self.status()}, wanted {result}")

    def update(self, **fields) -> None:
        response = httpx.post(self.webhook + "voximplant.sip.update", json={"CONFIG_ID": self.config_id, **fields})
        assert response.status_code == 200, response.text

    def delete(self) -> None:
        response = httpx.post(self.webhook + "voximplant.sip.delete", json={"CONFIG_ID": self.config_id})
        assert response.status_code == 200, response.text


@pytest.fixture
def kamailio(tmp_path):
    with Kamailio(tmp_path / "kamailio") as registrar:
        yield registrar


@pytest.fixture
def start_sipline(tmp_path):
    started: list[SiplineProcess] = []

    def start(*args: str, private: bool = True, scale: float = SCALE, data: str = "sipline", **kw) -> SiplineProcess:
        flags = ("--allow-private-targets",) if private else ()
        process = SiplineProcess(tmp_path / data, *flags, "--max-cloud-lines", "1000", *args,
                                 env={"SIPLINE_TIME_SCALE": str(scale), **kw.pop("env", {})}, **kw)
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def sipline(start_sipline):
    return start_sipline()


def add_line(process: SiplineProcess, server: str, login: str, password: str | None = None, **fields) -> Line:
    body = {"SERVER": server, "LOGIN": login, "PASSWORD": password if password is not None else "pw" + login, **fields}
    return Line(process.webhook, body)
