"""REST throughput: voximplant.sip.get and sip.add+delete against the bare HTTP stack.

    python bench/rest_bench.py [--duration 5] [--repeats 3]

wrk (Debian package `wrk`) drives every case from its own process, pinned to
another CPU than the server. The baseline is bench/bare_app.py: the same uvicorn
and starlette stack returning a constant JSON body, measured in the same run, so
the last line, `ratio <sip.get rps / bare rps at 64 connections>`, is comparable
across noisy runs. Each figure is the median over --repeats runs; cases alternate
so that drift in the machine's load hits all of them alike.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
from tests.integration.server import SiplineProcess  # noqa: E402
from tests.peers import free_port  # noqa: E402

CONNECTIONS = (1, 16, 64)
LINES = 50
SERVER_CPU, LOAD_CPU = "0", "1"


def wrk(url: str, connections: int, seconds: int, script: Path) -> dict:
    command = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
               "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    drain(int(url.split(":")[2].split("/")[0]))
    return json.loads(out.strip().splitlines()[-1])


def drain(port: int) -> None:
    """Wait until the server has closed every connection of the last run.

    wrk stops with requests in flight; the server closes those sockets a little
    later. A new run that reused one of those client ports would meet a socket in
    CLOSE-WAIT and wait a 1 s SYN retransmission: a loopback artefact, not latency.
    """
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        out = subprocess.run(["ss", "-Htan", "state", "connected", f"( sport = :{port} )"],
                             capture_output=True, text=True).stdout
        if not out.strip():
            return
        time.sleep(0.05)


def script(folder: Path, *parts: str) -> Path:
    path = folder / ("-".join(Path(part).stem for part in parts) + ".lua")
    path.write_text("\n".join((HERE / part).read_text() for part in parts))
    return path


def pin(pid: int) -> None:
    subprocess.run(["taskset", "-pc", SERVER_CPU, str(pid)], check=True, capture_output=True)


def start_bare(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(HERE / "bare_app.py"), str(port)], cwd=ROOT)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/")
            pin(proc.pid)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("bare app did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")

    folder = Path(tempfile.mkdtemp(prefix="sipline-bench-"))
    sipline = SiplineProcess(folder / "data").start()
    pin(sipline.proc.pid)
    bare_port = free_port()
    bare = start_bare(bare_port)
    try:
        webhook = sipline.webhook
        with httpx.Client() as client:
            for number in range(LINES):
                client.post(webhook + "voximplant.sip.add",
                            json={"TYPE": "office", "SERVER": "pbx.example.invalid", "LOGIN": f"user{number}",
                                  "PASSWORD": f"pw{number}", "TITLE": f"Line {number}"}).raise_for_status()
            assert len(client.post(webhook + "voximplant.sip.get").json()["result"]) == LINES
        report = script(folder, "wrk_report.lua")
        cases = {
            "bare": (f"http://127.0.0.1:{bare_port}/", report),
            "sip.get": (webhook + "voximplant.sip.get", report),
            "sip.add+delete": (webhook, script(folder, "wrk_add_delete.lua", "wrk_report.lua")),
        }
        runs: dict[tuple[str, int], list[dict]] = {}
        for _ in range(args.repeats):
            for connections in CONNECTIONS:
                for name, (url, lua) in cases.items():
                    wrk(url, connections, 1, lua)  # warm-up
                    runs.setdefault((name, connections), []).append(wrk(url, connections, args.duration, lua))
        print(f"{'case':<16}{'conns':>6}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
        median: dict[tuple[str, int], float] = {}
        for (name, connections), results in runs.items():
            rps = statistics.median(r["rps"] for r in results)
            median[(name, connections)] = rps
            errors = sum(r["errors"] + r["non2xx"] for r in results)
            print(f"{name:<16}{connections:>6}{rps:>10.0f}"
                  f"{statistics.median(r['p50_ms'] for r in results):>9.2f}"
                  f"{statistics.median(r['p99_ms'] for r in results):>9.2f}{errors:>8}")
        print("(sip.add+delete: requests/s; a pair is two requests)")
        print(f"ratio {median[('sip.get', 64)] / median[('bare', 64)]:.3f}")
    finally:
        sipline.stop()
        bare.send_signal(signal.SIGTERM)
        bare.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
