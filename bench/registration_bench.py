"""Cloud-line registration at scale: sipline against Kamailio, next to SIPp against the same Kamailio.

    python bench/registration_bench.py [--lines 1000 10000] [--hold 60]

For each N, on loopback:
  1. SIPp's REGISTER+digest scenario (tests/peers/sipp/reg-uac.xml) registers N users with a
     fresh Kamailio; rate = N / elapsed at the highest target rate that had no failures.
  2. sipline gets N cloud lines (userNNNNN, digest auth), is restarted with pacing opened up,
     and registers all of them with a fresh Kamailio: the time from the engine's start to the
     last line's `success` (both stamped by sipline, /metrics), REGISTER transactions/s, CPU
     seconds of the process (start-up included) and peak RSS.
  3. It then holds them: CPU per second over --hold seconds, once with Kamailio granting 3600 s
     and once granting a short 60 s (a refresh every ~30 s per line).
The last line is `ratio <sipline burst rate / SIPp rate>` for the largest N.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.integration.server import SiplineProcess  # noqa: E402
from tests.peers import free_port  # noqa: E402
from tests.peers.kamailio import Kamailio  # noqa: E402
from tests.peers.sipp import SCENARIOS, users_file  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
OPEN_PACING = ["--register-rate", "1000000", "--provider-rate", "1000000", "--provider-in-flight", "1000000",
               "--startup-spread", "0.01"]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid: int) -> float:
    match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else 0.0


def user(number: int) -> str:
    return f"user{number:05d}"


def kamailio(folder: Path, port: int, lines: int, **defines: str) -> Kamailio:
    return Kamailio(folder, port, max_user=lines, shm_mb=512, defines=defines)


def sipp_rate(folder: Path, lines: int) -> float:
    """Highest achieved registrations/s of SIPp for N users, halving the target rate on failure."""
    users = users_file(folder / "users.csv", lines, width=5)
    target = 16000
    while target >= 250:
        with kamailio(folder / f"kam-sipp-{target}", free_port(True), lines) as registrar:
            command = ["sipp", f"127.0.0.1:{registrar.port}", "-sf", str(SCENARIOS / "reg-uac.xml"),
                       "-inf", str(users), "-t", "u1", "-i", "127.0.0.1", "-p", str(free_port(True)),
                       "-key", "domain", "127.0.0.1", "-key", "expires", "3600", "-r", str(target), "-rp", "1000",
                       "-m", str(lines), "-nostdin", "-default_behaviors", "all,-bye", "-buff_size", "4194304",
                       "-timeout", "120s"]
            started = time.monotonic()
            result = subprocess.run(command, capture_output=True, cwd=folder)
            elapsed = time.monotonic() - started
        if result.returncode == 0:
            return lines / elapsed
        target //= 2
    raise RuntimeError("SIPp could not register the users at any rate")


def metrics(process: SiplineProcess) -> dict[str, float]:
    """success (lines), sent (SIP messages), start and last_success (wall clock of the engine)."""
    text = httpx.get(f"{process.base_url}/metrics").text
    patterns = {
        "success": r'sipline_registrations\{status="success"\} (\S+)',
        "sent": r'sipline_sip_messages_sent_total\{kind="request"\} (\S+)',
        "start": r"^sipline_registration_engine_start_time_seconds (\S+)",
        "last_success": r"^sipline_registration_last_success_time_seconds (\S+)",
    }
    found = {name: re.search(pattern, text, re.MULTILINE) for name, pattern in patterns.items()}
    return {name: float(match.group(1)) if match else 0.0 for name, match in found.items()}


def create_lines(folder: Path, port: int, sip_port: int, kam_port: int, lines: int) -> str:
    """N cloud lines through the API, with registration held back (no REGISTER is sent)."""
    process = SiplineProcess(folder / "sipline", "--allow-private-targets", "--max-cloud-lines", str(lines),
                             "--max-lines", str(lines),
                             "--register-rate", "0.001", port=port, sip_port=sip_port).start()
    with httpx.Client() as client:
        for number in range(1, lines + 1):
            client.post(process.webhook + "voximplant.sip.add", json={
                "SERVER": f"127.0.0.1:{kam_port}", "LOGIN": user(number), "PASSWORD": "pw" + user(number),
            }).raise_for_status()
    process.stop()
    return process.webhook


def hold(process: SiplineProcess, seconds: float) -> float:
    pid = process.proc.pid
    before, started = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - started)


def sipline_run(folder: Path, lines: int, hold_seconds: float) -> dict[str, float]:
    port, sip_port, kam_port = free_port(), free_port(True), free_port(True)
    create_lines(folder, port, sip_port, kam_port, lines)
    results: dict[str, float] = {}
    # Kamailio grants 3600 s to our 600 s request (min_expires_mode 0 raises instead of 423)
    with kamailio(folder / "kam-3600", kam_port, lines, KAM_MIN_EXPIRES="3600", KAM_MIN_EXPIRES_MODE="0"):
        process = SiplineProcess(folder / "sipline", "--allow-private-targets", *OPEN_PACING, port=port,
                                 sip_port=sip_port).start()
        try:
            pid = process.proc.pid
            started = time.monotonic()
            while (done := metrics(process))["success"] < lines:
                if time.monotonic() - started > 600:
                    raise RuntimeError(f"only {done['success']:.0f} of {lines} registered after 600 s")
                time.sleep(0.5)  # the engine stamps the burst itself; a /metrics poll walks every line
            # from the engine's start to the last line's success, as the engine stamped them
            burst = done["last_success"] - done["start"]
            results.update(burst_seconds=burst, registrations_per_s=lines / burst,
                           transactions_per_s=done["sent"] / burst, burst_cpu_seconds=cpu_seconds(pid))
            results["hold_3600_cpu"] = hold(process, hold_seconds)
            results["rss_mb"] = peak_rss_mb(pid)
        finally:
            process.stop()
    with kamailio(folder / "kam-60", kam_port, lines, KAM_MAX_EXPIRES="60"):
        process = SiplineProcess(folder / "sipline", "--allow-private-targets", *OPEN_PACING, port=port,
                                 sip_port=sip_port).start()
        try:
            deadline = time.monotonic() + 300
            while metrics(process)["success"] < lines and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(5)  # past the re-registration after the restart
            results["hold_60_cpu"] = hold(process, hold_seconds)
        finally:
            process.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--hold", type=float, default=60.0, help="seconds of holding to measure CPU over")
    args = parser.parse_args()
    for tool in ("sipp", "kamailio", "kamcmd"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install sip-tester kamailio")
    ratio = None
    print(f"{'N':>6} {'SIPp reg/s':>11} {'sipline reg/s':>14} {'tx/s':>8} {'to all ok':>10} {'CPU s':>7} "
          f"{'peak RSS':>9} {'hold@3600':>10} {'hold@60':>8}")
    for lines in args.lines:
        folder = Path(tempfile.mkdtemp(prefix=f"sipline-reg-{lines}-"))
        try:
            baseline = sipp_rate(folder, lines)
            run = sipline_run(folder, lines, args.hold)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        ratio = run["registrations_per_s"] / baseline
        print(f"{lines:>6} {baseline:>11.0f} {run['registrations_per_s']:>14.0f} {run['transactions_per_s']:>8.0f} "
              f"{run['burst_seconds']:>9.2f}s {run['burst_cpu_seconds']:>7.2f} {run['rss_mb']:>7.0f}MB "
              f"{run['hold_3600_cpu'] * 100:>9.2f}% {run['hold_60_cpu'] * 100:>7.2f}%", flush=True)
    print("(hold: CPU of one core while holding all lines; @3600 and @60 are the granted expiries)")
    print(f"ratio {ratio:.3f}")


if __name__ == "__main__":
    main()
