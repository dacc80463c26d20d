"""The office registrar under load: SIPp REGISTER+digest from N office lines, sipline against Kamailio.

    python bench/registrar_bench.py [--users 5000] [--duration 10] [--repeats 1]

Both registrars get the same load from the shared rig's rate search
(../shared/peers/bench/bench-registrar.py): SIPp's reg-uac.xml, REGISTER → 401 →
REGISTER with digest → 200, N distinct users in sequence; every user registers once
(warm-up), then the rate grows by 1.5× while runs pass and is bisected between the best
pass and the lowest failure. A run passes when every registration got its 200 OK, none
failed, retransmissions stayed ≤ 0.1 % and SIPp kept to its schedule.

  1. Kamailio with the rig's registrar configuration (tests/peers/kamailio.cfg, 2 workers),
     users user0001..N with the rig's passwords;
  2. sipline, with N office lines made through the REST API; users are their
     INCOMING_LOGIN / INCOMING_PASSWORD.

sipline runs with its default MD5 challenge (SIPp answers only MD5, and only the first
challenge) and `--flood-requests 0` (all the load comes from one IP; the rig's Kamailio
has no flood limit either). Everything else is as shipped:
each binding is committed to SQLite before its 200 OK leaves.

Prints sustained registrations/s (each is 2 SIP transactions), CPU in cores and the RSS
of each registrar; the last line is `ratio <sipline / Kamailio>`.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.integration.server import SiplineProcess  # noqa: E402
from tests.peers import free_port  # noqa: E402
from tests.peers.kamailio import Kamailio  # noqa: E402
from tests.peers.sipp import users_file  # noqa: E402

RIG = ROOT.parent / "shared" / "peers" / "bench" / "bench-registrar.py"


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set of a process, in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    values = [int(re.search(rf"{name}:\s+(\d+) kB", status).group(1)) / 1024 for name in ("VmRSS", "VmHWM")]
    return values[0], values[1]


def office_users(process: SiplineProcess, count: int, path: Path) -> Path:
    """`count` office lines through the REST API, written as a SIPp injection file."""
    def add(number: int) -> tuple[str, str]:
        response = client.post(process.webhook + "voximplant.sip.add", json={
            "TYPE": "office", "TITLE": f"office {number}", "SERVER": "pbx.example.invalid",
            "LOGIN": f"trunk{number}", "PASSWORD": "trunk-secret"})
        row = response.raise_for_status().json()["result"]
        return row["INCOMING_LOGIN"], row["INCOMING_PASSWORD"]

    with httpx.Client(limits=httpx.Limits(max_connections=8)) as client, ThreadPoolExecutor(8) as pool:
        users = list(pool.map(add, range(1, count + 1)))
    path.write_text("SEQUENTIAL\n" + "".join(
        f"{user};{password};[authentication username={user} password={password}]\n" for user, password in users))
    return path


def rate_search(folder: Path, target: int, pid: int, users: Path, args: argparse.Namespace, start_rate: int) -> dict:
    """Run the rig's rate search against a running registrar; the best passing run, as the rig logged it."""
    out = folder / "runs.jsonl"
    command = [sys.executable, str(RIG), "--no-kamailio", "--target", f"127.0.0.1:{target}", "--server-pid", str(pid),
               "--users", str(users), "--local-port", str(free_port(udp_too=True)), "--duration", str(args.duration),
               "--start-rate", str(start_rate), "--repeats", str(args.repeats), "--warmup-rate", "1000",
               "--max-runs", str(args.max_runs), "--out", str(out)]
    subprocess.run(command, check=True, stdout=sys.stderr)
    runs = [json.loads(line) for line in out.read_text().splitlines()]
    passed = [run for run in runs if run.get("pass") and "warmup" not in run.get("tag", "")]
    if not passed:
        raise RuntimeError(f"no passing run against 127.0.0.1:{target}; see {out}")
    best = max(passed, key=lambda run: run["rate"])
    return {"rate": best["rate"], "achieved": best["achieved_per_s"], "cores": best["kam_cores"],
            "response_ms": best["rt_avg_ms"]}


def kamailio_run(folder: Path, args: argparse.Namespace) -> dict:
    users = users_file(folder / "kamailio-users.csv", args.users)
    with Kamailio(folder / "kamailio", free_port(udp_too=True), max_user=args.users, shm_mb=512) as registrar:
        assert registrar.proc is not None
        result = rate_search(folder / "kamailio", registrar.port, registrar.proc.pid, users, args, 4000)
        result["rss_mb"] = sum(rss_mb(pid)[0] for pid in _tree(registrar.proc.pid))
    return result


def sipline_run(folder: Path, args: argparse.Namespace) -> dict:
    process = SiplineProcess(folder / "sipline", "--flood-requests", "0", "--max-lines", str(args.users))
    process.start()
    try:
        assert process.proc is not None
        users = office_users(process, args.users, folder / "sipline-users.csv")
        result = rate_search(folder / "sipline", process.sip_port, process.proc.pid, users, args, 1000)
        result["rss_mb"], result["peak_rss_mb"] = rss_mb(process.proc.pid)
    finally:
        process.stop()
    return result


def _tree(pid: int) -> list[int]:
    """A process and its direct children (Kamailio's workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per rate-search run")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--max-runs", type=int, default=8, help="rate-search runs per repeat")
    args = parser.parse_args()
    for tool in ("sipp", "kamailio", "kamcmd"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install sip-tester kamailio")
    if not RIG.exists():
        sys.exit(f"the shared rate search is not at {RIG}")
    folder = Path(tempfile.mkdtemp(prefix="sipline-registrar-bench-"))
    try:
        baseline = kamailio_run(folder, args)
        ours = sipline_run(folder, args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{args.users} office lines, {args.duration} s runs; registrations/s at < 1 % failed calls "
          "(each registration = 2 transactions)")
    print(f"{'registrar':<10} {'reg/s':>7} {'tx/s':>7} {'achieved':>9} {'CPU cores':>10} {'resp ms':>8} {'RSS MB':>7}")
    for name, run in (("Kamailio", baseline), ("sipline", ours)):
        print(f"{name:<10} {run['rate']:>7} {2 * run['rate']:>7} {run['achieved']:>9.0f} {run['cores']:>10.2f} "
              f"{run['response_ms']:>8.1f} {run['rss_mb']:>7.0f}")
    print(f"sipline peak RSS {ours['peak_rss_mb']:.0f} MB")
    print(f"ratio {ours['rate'] / baseline['rate']:.3f}")


if __name__ == "__main__":
    main()
