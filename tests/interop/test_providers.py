"""`sipline.sip.providers` and the per-provider breaker against a real registrar (docs/behaviour.md#providers,
docs/behaviour.md#reg-pacing, docs/behaviour.md#line-history): Kamailio stopped with SIGSTOP answers nothing,
so every REGISTER times out; SIGCONT brings it back."""

from __future__ import annotations

import os
import re
import signal
from contextlib import contextmanager

import httpx

from tests.integration.operator import cli, fields, hook_call, result
from tests.interop.conftest import Line, add_line
from tests.metrics import by_label
from tests.waiting import wait_until

LINES = 4
ISO_WITH_OFFSET = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")


def providers(webhook: str) -> list[dict]:
    response = httpx.post(webhook + "sipline.sip.providers", json={})
    assert response.status_code == 200, response.text
    return response.json()["result"]


def causes(line: Line) -> list[str]:
    response = httpx.post(line.webhook + "sipline.sip.history", json={"CONFIG_ID": line.config_id})
    return [entry["CAUSE"] for entry in response.json()["result"]]


@contextmanager
def paused(process):
    """The registrar's processes stopped (no answer, no ICMP: timeouts), continued on leaving."""
    group = os.getpgid(process.proc.pid)
    os.killpg(group, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(group, signal.SIGCONT)


def test_a_silent_provider_opens_its_breaker_and_a_probe_brings_the_lines_back(kamailio_short, start_sipline):
    process = start_sipline("--breaker-release-spread", "2", env={"SIPLINE_TEST_LOG_LEVEL": "info"})
    name = f"127.0.0.1:{kamailio_short.port}"
    lines = [add_line(process, name, f"user{n:04d}") for n in range(1, LINES + 1)]
    for line in lines:
        line.wait("success")
    [entry] = providers(process.webhook)
    assert entry == {"PROVIDER": name, "LINES": LINES,
                     "BY_STATUS": {"wait": 0, "in_progress": 0, "success": LINES, "error": 0},
                     "LAST_ERROR": None, "LAST_ERROR_TIME": None, "BREAKER": "closed", "BREAKER_SINCE": None}

    with paused(kamailio_short):
        # refreshes (every 5.4–6 s) time out; once most lines failed the breaker holds all but the probe,
        # and the held lines' bindings (12 s) end: every line is `error`
        def down() -> dict | None:
            [entry] = providers(process.webhook)
            return entry if entry["BREAKER"] == "open" and entry["BY_STATUS"]["error"] == LINES else None

        entry = wait_until(down, 30, interval=0.5, message=lambda: f"providers: {providers(process.webhook)}")
        last_error = entry["LAST_ERROR"]  # the newest: a held line's binding end, or the probe's
        assert last_error in ({"CODE": 408, "MESSAGE": "Request Timeout", "CAUSE": cause}
                              for cause in ("timeout", "provider down"))
        for stamp in (entry["LAST_ERROR_TIME"], entry["BREAKER_SINCE"]):
            assert ISO_WITH_OFFSET.fullmatch(stamp), stamp
        assert by_label(process.base_url, "sipline_provider_breaker_open", "provider") == {name: 1.0}
        held = [line for line in lines if causes(line)[0] == "provider down"]
        assert held, [causes(line) for line in lines]  # the probe's binding ended with a timeout, the others held
        assert "breaker open" in (process.data_dir / "stderr.log").read_text()

    def closed() -> dict | None:
        [entry] = providers(process.webhook)
        return entry if entry["BREAKER"] == "closed" and entry["BY_STATUS"]["success"] == LINES else None

    entry = wait_until(closed, 40, interval=0.5, message=lambda: f"providers: {providers(process.webhook)}")
    assert entry["BREAKER_SINCE"] is not None and entry["LAST_ERROR"]["CODE"] == 408
    for line in held:
        assert causes(line)[0] == "provider recovered"
    assert by_label(process.base_url, "sipline_provider_breaker_open", "provider") == {name: 0.0}
    log = (process.data_dir / "stderr.log").read_text()
    assert "breaker recovering" in log and "breaker closed" in log

    # another portal's caller sees none of these providers
    other = fields(cli(process.data_dir, "portal", "create", "--domain", "localhost", "--title", "B"))
    assert result(hook_call(other["webhook"], process, "sipline.sip.providers", host="localhost", json={})) == []
