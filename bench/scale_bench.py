"""Scale-out: REST throughput of 1, 2 and 4 `api` workers on PostgreSQL against one process on
SQLite, and cloud registrations held per `sip` worker with 1 and 3 workers on one PostgreSQL.

    python bench/scale_bench.py [--duration 5] [--lines 10000] [--hold 20] [--part rest] [--api-workers 2]

REST: wrk (Debian package `wrk`) at 64 connections on voximplant.sip.get (50 lines) and on
sip.add+delete pairs. The baseline, measured in the same run, is one sipline process on the
embedded SQLite store; each PostgreSQL row prints its ratio to it.

SIP: --lines cloud lines registered to Kamailio (a real registrar, granting 3600 s), held by one
`sip` worker, then by three on the same store: time until every line is `success`, each
worker's share, CPU and RSS while holding, and PostgreSQL transactions and rows written per
second (pg_stat_database) while holding: the figures the capacity estimate scales.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
from bench.rest_bench import script, wrk  # noqa: E402
from tests.integration.server import SiplineProcess  # noqa: E402
from tests.peers import free_port  # noqa: E402
from tests.peers.kamailio import Kamailio  # noqa: E402
from tests.stores import fresh_postgres, run_sql  # noqa: E402

CONNECTIONS = 64
LINES = 50


def rest_case(folder: Path, name: str, args: tuple[str, ...], env: dict[str, str], duration: int,
              repeats: int) -> dict[str, float]:
    # the operating-time limit (480 s of one method per 10 min) would refuse a saturating load
    process = SiplineProcess(folder / name, "--max-cloud-lines", "100000", "--max-lines", "100000",
                             "--operating-limit", "off", *args,
                             # several workers share one port, which `--port 0` cannot give them
                             port=free_port() if "--workers" in args else None, env=env).start()
    try:
        webhook = process.webhook
        with httpx.Client() as client:
            for number in range(LINES):
                client.post(webhook + "voximplant.sip.add",
                            json={"TYPE": "office", "SERVER": "pbx.example.invalid", "LOGIN": f"user{number}",
                                  "TITLE": f"Line {number}"}).raise_for_status()
        report = script(folder, "wrk_report.lua")
        pairs = script(folder, "wrk_add_delete.lua", "wrk_report.lua")
        get, add = [], []
        for _ in range(repeats):
            wrk(webhook + "voximplant.sip.get", CONNECTIONS, 1, report)  # warm-up
            get.append(wrk(webhook + "voximplant.sip.get", CONNECTIONS, duration, report))
            add.append(wrk(webhook, CONNECTIONS, duration, pairs))
        return {"sip.get": statistics.median(r["rps"] for r in get),
                "sip.add+delete": statistics.median(r["rps"] for r in add),
                "errors": sum(r["errors"] + r["non2xx"] for r in get + add)}
    finally:
        process.stop()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024


def activity(database_url: str) -> tuple[int, int]:
    """(transactions committed, rows written) so far in this database; PostgreSQL's statistics
    lag by up to its stats interval, so they are read after a pause."""
    name = database_url.rsplit("/", 1)[1]
    time.sleep(1)
    commits, rows = run_sql(database_url, "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted "
                                          f"FROM pg_stat_database WHERE datname = '{name}'")[0]
    return commits, rows


def shares(database_url: str) -> list[int]:
    return sorted(count for _, count in run_sql(database_url,
                                                "SELECT lease_owner, count(*) FROM registration GROUP BY 1"))


def sip_case(folder: Path, workers: int, lines: int, hold: float) -> dict[str, float]:
    database_url = fresh_postgres()
    env = {"SIPLINE_DATABASE_URL": database_url, "SIPLINE_SECRET_KEY": base64.b64encode(os.urandom(32)).decode()}
    kam_port = free_port(udp_too=True)
    with Kamailio(folder / f"kam{workers}", kam_port, max_user=lines, children=2, shm_mb=512,
                  defines={"KAM_MIN_EXPIRES": "3600", "KAM_MIN_EXPIRES_MODE": "0"}):
        api = SiplineProcess(folder / f"api{workers}", "--role", "api", "--max-cloud-lines", str(lines + 1),
                             "--max-lines", str(lines + 1),
                             env=env).start()
        try:
            with httpx.Client() as client:
                for number in range(1, lines + 1):
                    user = f"user{number:05d}"
                    client.post(api.webhook + "voximplant.sip.add", json={
                        "TYPE": "cloud", "TITLE": user, "SERVER": f"127.0.0.1:{kam_port}", "LOGIN": user,
                        "PASSWORD": "pw" + user}).raise_for_status()
            sips = [SiplineProcess(folder / f"sip{workers}-{i}", "--role", "sip", "--allow-private-targets",
                                   "--register-rate", "100000", "--provider-rate", "100000",
                                   "--provider-in-flight", "2000", "--startup-spread", "1", env=env)
                    for i in range(workers)]
            started = time.monotonic()
            for process in sips:
                process.start()
            try:
                while run_sql(database_url, "SELECT count(*) FROM registration WHERE status_result = 'success'"
                              )[0][0] < lines:
                    if time.monotonic() - started > 900:
                        raise RuntimeError("not every line registered within 900 s")
                    time.sleep(0.2)
                registered = time.monotonic() - started
                settled = shares(database_url)
                while True:  # hold is measured once the shares stopped moving and the last writes are in
                    time.sleep(5)
                    now = shares(database_url)
                    if now == settled and len(now) == workers:
                        break
                    settled = now
                pids = [process.proc.pid for process in sips]
                cpu_before = [cpu_seconds(pid) for pid in pids]
                (commits_before, rows_before), began = activity(database_url), time.monotonic()
                time.sleep(hold)
                commits_after, rows_after = activity(database_url)
                elapsed = time.monotonic() - began
                cpu = [(cpu_seconds(pid) - before) / (elapsed - 1) for pid, before in zip(pids, cpu_before)]
                return {"workers": workers, "registered_s": registered, "shares": settled,
                        "cpu_per_worker": max(cpu), "rss_mb_per_worker": max(rss_mb(pid) for pid in pids),
                        "commits_per_s": (commits_after - commits_before) / elapsed,
                        "rows_per_s": (rows_after - rows_before) / elapsed}
            finally:
                for process in sips:
                    process.stop()
        finally:
            api.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lines", type=int, default=10_000, help="cloud lines for the SIP part")
    parser.add_argument("--hold", type=float, default=20.0, help="seconds to measure the holding cost")
    parser.add_argument("--part", choices=["all", "rest", "sip"], default="all")
    parser.add_argument("--api-workers", default="1,2,4", help="api worker counts for the REST part (2 is the goal's)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    folder = Path(tempfile.mkdtemp(prefix="sipline-scale-"))
    try:
        ratio = rest_part(folder, args) if args.part != "sip" else None
        if args.part != "rest":
            sip_part(folder, args)
        if ratio is not None:
            print(f"ratio {ratio:.3f}  (sip.get with 2 api workers on PostgreSQL / 1 process on SQLite)")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def rest_part(folder: Path, args: argparse.Namespace) -> float:
    baseline = rest_case(folder, "sqlite", (), {"SIPLINE_DATABASE_URL": ""}, args.duration, args.repeats)
    rows = [("SQLite, 1 process", baseline)]
    counts = sorted({int(count) for count in args.api_workers.split(",")} | {2})
    for workers in counts:
        env = {"SIPLINE_DATABASE_URL": fresh_postgres()}
        rows.append((f"PostgreSQL, {workers} api", rest_case(
            folder, f"pg{workers}", ("--role", "api", "--workers", str(workers)), env, args.duration,
            args.repeats)))
    print(f"{'store, processes':<24}{'sip.get/s':>11}{'ratio':>7}{'add+del/s':>11}{'ratio':>7}{'errors':>8}")
    for name, result in rows:
        print(f"{name:<24}{result['sip.get']:>11.0f}{result['sip.get'] / baseline['sip.get']:>7.2f}"
              f"{result['sip.add+delete']:>11.0f}"
              f"{result['sip.add+delete'] / baseline['sip.add+delete']:>7.2f}{result['errors']:>8.0f}")
    print(f"({os.cpu_count()} CPUs on this machine, wrk included)")
    two = dict(rows)["PostgreSQL, 2 api"]
    print(f"ratio {two['sip.add+delete'] / baseline['sip.add+delete']:.3f}  "
          "(sip.add+delete with 2 api workers on PostgreSQL / 1 process on SQLite)")
    return two["sip.get"] / baseline["sip.get"]


def sip_part(folder: Path, args: argparse.Namespace) -> None:
    held = [sip_case(folder, workers, args.lines, args.hold) for workers in (1, 3)]
    print(f"\n{'sip workers':<12}{'lines':>7}{'to success s':>14}{'shares':>20}{'cpu/worker':>11}"
          f"{'RSS MB/worker':>14}{'PG txn/s':>10}{'PG rows/s':>10}")
    for result in held:
        print(f"{result['workers']:<12}{args.lines:>7}{result['registered_s']:>14.1f}"
              f"{'/'.join(map(str, result['shares'])):>20}{result['cpu_per_worker']:>11.3f}"
              f"{result['rss_mb_per_worker']:>14.0f}{result['commits_per_s']:>10.1f}"
              f"{result['rows_per_s']:>10.1f}")


if __name__ == "__main__":
    main()
