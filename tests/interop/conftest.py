"""Real peers for registration tests: Kamailio as a registrar, SIPp as a provider, sipline between."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.server import SiplineProcess
from tests.peers.kamailio import Kamailio
from tests.waiting import wait_until

# Short protocol delays, each a setting of `sipline serve` (README, "SIP"): T1 10 ms (Timer F 0.64 s
# instead of 32 s), a new line's first REGISTER within 0.1 s, retries 0.3–0.6 s after a failure and 6 s
# after a rejection (instead of 15–30 s and 300 s), keep-alives every 0.5 s over UDP and 1.9–2.4 s over
# TCP, NAT OPTIONS to PBXes every 0.6 s. Binding lifetimes are the registrar's: see `kamailio_short`.
REJECTED_RETRY_INTERVAL = 6.0
FAST = ("--sip-t1", "0.01", "--new-line-spread", "0.1", "--startup-spread", "0.1", "--retry-interval", "0.6",
        "--rejected-retry-interval", f"{REJECTED_RETRY_INTERVAL:g}", "--keepalive-interval", "0.5",
        "--flow-keepalive", "2.4", "--nat-ping-interval", "0.6")
SHORT_EXPIRES = 12  # seconds `kamailio_short` grants: a refresh every 5.4–6 s (docs/behaviour.md#reg-expiry)


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
def kamailio_short(tmp_path):
    """A Kamailio that grants SHORT_EXPIRES, so refreshes come within seconds."""
    defines = {"KAM_MIN_EXPIRES": "10", "KAM_MAX_EXPIRES": str(SHORT_EXPIRES)}
    with Kamailio(tmp_path / "kamailio-short", defines=defines) as registrar:
        yield registrar


@pytest.fixture
def start_sipline(tmp_path):
    started: list[SiplineProcess] = []

    def start(*args: str, private: bool = True, fast: bool = True, data: str = "sipline", **kw) -> SiplineProcess:
        """`args` come after FAST, so a test's own value of one of them wins; `fast=False`: the defaults."""
        flags = (*(("--allow-private-targets",) if private else ()), *(FAST if fast else ()))
        process = SiplineProcess(tmp_path / data, *flags, "--max-cloud-lines", "1000", *args, **kw)
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
