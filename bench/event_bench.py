"""Event delivery: 10,000 status changes made by real SIP, delivered to a local receiver.

    python bench/event_bench.py [--lines 5000]

The changes: `--lines` office lines (made through the REST API) registered by SIPp as their PBX
(office-uac.xml), each `added`, then unregistered (`Contact: *`, Expires 0), each `removed`: 2 × lines
ONSIPLINEBINDINGCHANGE events to one webhook-bound handler (bound in the store, as event.bind does).
The receiver is a bare uvicorn app in its own process that answers 204 and records each arrival.

  1. latency: the handler answers while SIPp registers; for each `added` event, its arrival less
     the time of the change (line_history.at): p50 and p99;
  2. throughput: the handler answers 503 while SIPp unregisters every line, so the `removed` events
     queue up (retried in an hour); then it answers 204 and `sipline event retry --all` makes them
     due at once: events / (last arrival − first arrival);
  3. baseline: the same receiver fed the same number of form POSTs (the bodies sipline sent) by a
     bare httpx.AsyncClient with sipline's concurrency (--event-in-flight 64, 4 per handler: the
     bench has one handler, so the baseline runs 4 at once).

The last line is `ratio X`: sipline's delivery rate / the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qsl

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.event_handlers import bind_in  # noqa: E402
from tests.integration.operator import cli  # noqa: E402
from tests.integration.server import SiplineProcess  # noqa: E402
from tests.peers import free_port  # noqa: E402
from tests.peers.sipp import register_office  # noqa: E402
from tests.stores import execute  # noqa: E402
from tests.waiting import wait_until  # noqa: E402

PER_HANDLER = 4  # sipline's --event-in-flight-per-handler default: the baseline's concurrency


def receiver_app():
    """The handler: answers `status` (POST /status/N sets it), records (arrival, body) of each event."""
    state = {"status": 204, "arrivals": []}

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        answer, status = b"", state["status"]
        if path.startswith("/status/"):
            state["status"], status = int(path.rsplit("/", 1)[1]), 200
        elif path == "/dump":
            answer, status = json.dumps(state["arrivals"]).encode(), 200
        elif path == "/reset":
            state["arrivals"], status = [], 200
        elif status < 300:
            state["arrivals"].append((time.time(), body.decode()))
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", str(len(answer)).encode())]})
        await send({"type": "http.response.body", "body": answer})

    return app


def start_receiver(port: int) -> subprocess.Popen:
    code = ("import sys, uvicorn; sys.path.insert(0, %r); from bench.event_bench import receiver_app; "
            "uvicorn.run(receiver_app(), host='127.0.0.1', port=%d, log_level='warning', access_log=False)")
    proc = subprocess.Popen([sys.executable, "-c", code % (str(ROOT), port)])
    wait_until(lambda: _get(port, "/reset"), 10)
    return proc


def _get(port: int, path: str):
    try:
        return httpx.post(f"http://127.0.0.1:{port}{path}", timeout=30)
    except httpx.HTTPError:
        return None


def office_lines(process: SiplineProcess, count: int) -> list[tuple[str, str]]:
    def add(number: int) -> tuple[str, str]:
        row = client.post(process.webhook + "voximplant.sip.add", json={
            "TYPE": "office", "TITLE": f"office {number}", "SERVER": "pbx.example.invalid",
            "LOGIN": f"trunk{number}", "PASSWORD": "trunk-secret"}).raise_for_status().json()["result"]
        return row["INCOMING_LOGIN"], row["INCOMING_PASSWORD"]

    with httpx.Client(limits=httpx.Limits(max_connections=8)) as client, ThreadPoolExecutor(8) as pool:
        return list(pool.map(add, range(1, count + 1)))


def arrivals(port: int) -> list[tuple[float, dict[str, str]]]:
    return [(at, dict(parse_qsl(body, keep_blank_values=True))) for at, body in _get(port, "/dump").json()]


async def baseline(port: int, bodies: list[str]) -> float:
    """Events/s of a bare client POSTing the same bodies, PER_HANDLER at once."""
    queue = list(reversed(bodies))
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with httpx.AsyncClient() as client:
        async def worker() -> None:
            while queue:
                (await client.post(f"http://127.0.0.1:{port}/hook", content=queue.pop(), headers=headers)).raise_for_status()

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(PER_HANDLER)))
        return len(bodies) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=5000, help="office lines: twice as many events")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="event-bench-"))
    port = free_port()
    receiver = start_receiver(port)
    process = SiplineProcess(folder / "sipline", "--allow-private-targets", "--flood-requests", "0",
                             "--auth-failures", "0", "--max-lines", str(args.lines + 10),
                             "--event-retry-after", "3600").start()
    try:
        users = office_lines(process, args.lines)
        bind_in(process.data_dir, "ONSIPLINEBINDINGCHANGE", f"http://127.0.0.1:{port}/hook")
        timeout = args.lines / 10 + 60  # SIPp sends one REGISTER at a time (office-uac.xml, -l 1)
        register_office(folder / "sipp", process.sip_port, None, users, rate=5000, timeout=timeout)
        wait_until(lambda: len(_get(port, "/dump").json()) >= args.lines, 120)
        added = arrivals(port)
        changes = {(config, cause): at for config, cause, at in execute(process.data_dir, (
            "SELECT line.config_id, line_history.cause, line_history.at FROM line_history "
            "JOIN line ON line.id = line_history.line_id"))}
        latencies = sorted(at - changes[(int(form["data[CONFIG_ID]"]), "binding added")] for at, form in added)

        _get(port, "/status/503")
        _get(port, "/reset")
        register_office(folder / "sipp", process.sip_port, None, users, rate=5000, timeout=timeout, expires=0, wildcard=True)
        [[gone]] = execute(process.data_dir, "SELECT count(*) FROM line_history WHERE cause = 'binding removed'")
        wait_until(lambda: execute(process.data_dir, "SELECT count(*) FROM event_delivery")[0][0] >= gone, 120)
        wait_until(lambda: execute(process.data_dir, "SELECT count(*) FROM event_delivery WHERE attempts = 0")[0][0] == 0, 120)
        _get(port, "/status/204")
        cli(process.data_dir, "event", "retry", "--all")
        wait_until(lambda: len(_get(port, "/dump").json()) >= gone, 300, interval=0.2)
        removed = arrivals(port)
        first, last = min(at for at, _ in removed), max(at for at, _ in removed)
        rate = (len(removed) - 1) / (last - first)  # the CLI's own start is not sipline's delivery
        bodies = [body for _, body in _get(port, "/dump").json()]
        _get(port, "/reset")
        bare = asyncio.run(baseline(port, bodies))
    finally:
        process.stop()
        receiver.terminate()
        receiver.wait(10)
    p50, p99 = latencies[len(latencies) // 2], latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"changes: {len(latencies)} added + {len(removed)} removed (office lines registered, unregistered by SIPp)")
    print(f"latency change -> delivery ({len(latencies)} added events, live handler): p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    print(f"sipline: {len(removed)} queued events delivered at {rate:.0f} events/s")
    print(f"baseline (bare httpx, {PER_HANDLER} at once): {bare:.0f} events/s")
    print(f"ratio {rate / bare:.2f}")


if __name__ == "__main__":
    main()
