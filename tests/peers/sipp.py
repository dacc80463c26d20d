"""SIPp as a provider's registrar (sipp/reg-uas.xml) and as a REGISTER load (sipp/reg-uac.xml).

Scenarios from the shared test rig (../shared/peers/sipp/): see their headers for the modes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

from tests.peers import PortTaken, on_a_free_port, terminate

IN_USE = "Address already in use"  # what SIPp prints when it cannot bind its port

SCENARIOS = Path(__file__).with_name("sipp")


def _require() -> None:
    if shutil.which("sipp") is None:
        raise RuntimeError("sipp is not installed (apt-get install sip-tester)")


class SippRegistrar:
    """`sipp -sf reg-uas.xml` in one MODE: ok, noauth, 401, 403, 404, 423, 503, drop, dropauth."""

    def __init__(self, folder: Path, mode: str, *, transport: str = "udp", realm: str = "provider.test",
                 expires: int = 3600, min_expires: int | None = None, max_expires: int = 7200,
                 retry_after: int = 30, password: str = " ") -> None:
        """Listens on a free port: `.port` once entered."""
        _require()
        self.folder, self.mode, self.transport, self.port = folder, mode, transport, 0
        minimum = min_expires if min_expires is not None else (3600 if mode == "423" else 60)
        self.keys = {"mode": mode, "realm": realm, "qop": ', qop="auth"', "expires": str(expires),
                     "min_expires": str(minimum), "max_expires": str(max_expires), "retry_after": str(retry_after),
                     "password": password}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def messages(self) -> Path:
        return self.folder / f"sipp-uas-{self.port}.msg"

    def __enter__(self) -> SippRegistrar:
        self.folder.mkdir(parents=True, exist_ok=True)
        return on_a_free_port(self._start_on)

    def _start_on(self, port: int) -> SippRegistrar:
        self.port = port
        output = self.folder / f"sipp-uas-{port}.out"
        with open(output, "ab") as out:
            self.proc = subprocess.Popen(self._command(), stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        time.sleep(0.3)
        if self.proc.poll() is not None:
            text = output.read_text(errors="replace")
            raise (PortTaken if IN_USE in text else RuntimeError)(f"sipp exited at start: {text}")
        return self

    def _command(self) -> list[str]:
        return ["sipp", "-sf", str(SCENARIOS / "reg-uas.xml"), "-i", "127.0.0.1", "-p", str(self.port),
                "-t", "u1" if self.transport == "udp" else "t1", "-deadcall_wait", "0", "-nostdin",
                *(arg for name, value in self.keys.items() for arg in ("-key", name, value)),
                "-trace_msg", "-message_file", str(self.messages),
                "-trace_screen", "-screen_file", str(self.folder / f"sipp-uas-{self.port}.screen")]

    def __exit__(self, *exc) -> None:
        terminate(self.proc)

    def registers(self) -> list[tuple[float, str]]:
        """(arrival time, message text) of every REGISTER received so far, from SIPp's message trace."""
        if not self.messages.exists():
            return []
        text = self.messages.read_text(errors="replace")
        found = []
        for block in re.split(r"\n(?=-{10,} )", text):
            header = re.match(r"-{10,} (\d{4}-\d\d-\d\d\s\d\d:\d\d:\d\d\.\d+)", block)
            if header and "message received" in block and "\nREGISTER " in block:
                stamp = datetime.strptime(header.group(1).replace("\t", " "), "%Y-%m-%d %H:%M:%S.%f").timestamp()
                found.append((stamp, block.split("\nREGISTER ", 1)[1]))
        return found


def users_file(path: Path, count: int, prefix: str = "user", width: int = 4) -> Path:
    """SIPp injection file: user;password;[authentication …] (SIPp 3.6 cannot nest keywords)."""
    lines = ["SEQUENTIAL"]
    for number in range(1, count + 1):
        user = f"{prefix}{number:0{width}d}"
        lines.append(f"{user};pw{user};[authentication username={user} password=pw{user}]")
    path.write_text("\n".join(lines) + "\n")
    return path


def register_office(folder: Path, port: int, local_port: int | None, users: list[tuple[str, str]], *,
                    domain: str = "127.0.0.1", expires: int = 600, wildcard: bool = False, reuse: bool = False,
                    transport: str = "udp", rate: float = 10, timeout: float = 10) -> list[str]:
    """Run sipp/office-uac.xml once per user, from 127.0.0.1:local_port (None: a free port), against
    sipline's registrar.

    Returns the `result …` / `reuse …` lines the scenario logged, one per user in order.
    Raises: PortTaken when local_port was taken (a caller that chose it runs again on another, `on_a_free_port`).
    """
    _require()
    if local_port is None:
        return on_a_free_port(lambda free: register_office(folder, port, free, users, domain=domain, expires=expires,
                                                           wildcard=wildcard, reuse=reuse, transport=transport,
                                                           rate=rate, timeout=timeout))
    folder.mkdir(parents=True, exist_ok=True)
    inject = folder / "office-users.csv"
    inject.write_text("SEQUENTIAL\n" + "".join(
        f"{user};{password};[authentication username={user} password={password}];"
        f"{'*' if wildcard else f'<sip:{user}@127.0.0.1:{local_port}'}\n"
        for user, password in users))
    log = folder / "office-uac.log"
    log.unlink(missing_ok=True)
    command = ["sipp", f"127.0.0.1:{port}", "-sf", str(SCENARIOS / "office-uac.xml"), "-inf", str(inject),
               "-t", "u1" if transport == "udp" else "t1", "-i", "127.0.0.1", "-p", str(local_port),
               "-m", str(len(users)), "-l", "1", "-r", str(rate), "-nostdin",
               "-key", "contact_end", "" if wildcard else f";transport={transport}>", "-key", "domain", domain, "-key", "expires", str(expires), "-key", "reuse", "yes" if reuse else "no",
               "-default_behaviors", "all,-bye", "-timeout", f"{int(timeout) + 5}s",
               "-trace_logs", "-log_file", str(log), "-trace_msg", "-message_file", str(folder / "office-uac.msg")]
    ran = subprocess.run(command, capture_output=True, cwd=folder, timeout=timeout + 30)
    if IN_USE in (ran.stdout + ran.stderr).decode(errors="replace"):
        raise PortTaken(f"sipp could not bind 127.0.0.1:{local_port}")
    return [line.strip() for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
