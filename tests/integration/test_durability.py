"""Nothing acknowledged is lost: SIGKILL in the middle of a stream of writes, then restart."""

from __future__ import annotations

import signal
import threading

import httpx

from tests.integration.server import SiplineProcess
from tests.waiting import wait_until


def all_lines(webhook: str) -> list[dict]:
    rows, start = [], 0
    while True:
        body = httpx.post(webhook + "voximplant.sip.get", json={"start": start}, timeout=10).json()
        rows += body["result"]
        if "next" not in body:
            return rows
        start = body["next"]


def test_sigkill_during_adds_loses_no_acknowledged_line(tmp_path):
    server = SiplineProcess(tmp_path / "data", "--max-cloud-lines", "1000000").start()
    webhook = server.webhook
    acknowledged: dict[str, dict] = {}
    attempted: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def writer(worker: int) -> None:
        with httpx.Client(timeout=5) as client:
            number = 0
            while not stop.is_set():
                title = f"w{worker}-{number}"
                number += 1
                body = {"TYPE": "office" if number % 2 else "cloud", "TITLE": title, "SERVER": f"{title}.example.invalid",
                        "LOGIN": title, "PASSWORD": f"pw-{title}"}
                with lock:
                    attempted.add(title)
                try:
                    response = client.post(webhook + "voximplant.sip.add", json=body)
                except httpx.HTTPError:
                    continue  # the server is gone: this add was never acknowledged
                if response.status_code == 200:
                    with lock:
                        acknowledged[title] = response.json()["result"]

    threads = [threading.Thread(target=writer, args=(worker,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len(acknowledged) >= 300, 30)
    except AssertionError:
        pass  # too slow a machine: the assertion below says so, once the writers are stopped
    server.kill(signal.SIGKILL)  # while writers are mid-request
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged) >= 300

    restarted = SiplineProcess(tmp_path / "data", "--max-cloud-lines", "1000000").start()
    try:
        code_path = webhook.split("/rest/")[1]
        # the portal exists: no second bootstrap; the start prints the same webhook (on its own port)
        assert restarted.printed["webhook"] == f"{restarted.base_url}/rest/{code_path}"
        rows = {row["TITLE"]: row for row in all_lines(f"{restarted.base_url}/rest/{code_path}")}
        missing = set(acknowledged) - set(rows)
        assert not missing, f"{len(missing)} acknowledged lines lost"
        assert set(rows) <= attempted
        for title, row in rows.items():
            assert (row["SERVER"], row["LOGIN"], row["PASSWORD"]) == (f"{title}.example.invalid", title, f"pw-{title}")
            if title in acknowledged:
                assert row["CONFIG_ID"] == acknowledged[title]["CONFIG_ID"]
            if row["TYPE"] == "cloud":
                status = httpx.post(f"{restarted.base_url}/rest/{code_path}voximplant.sip.status",
                                    json={"REG_ID": row["REG_ID"]}).json()["result"]
                assert status["REG_ID"] == int(row["REG_ID"])
            else:
                assert row["INCOMING_LOGIN"] == f"sip{row['CONFIG_ID']}" and len(row["INCOMING_PASSWORD"]) == 32
    finally:
        restarted.stop()
