"""Kamailio as a real registrar for tests and benchmarks (users userNNNN, password "pw" + user)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

from tests.peers import PortTaken, free_port, on_a_free_port, terminate
from tests.waiting import wait_until

CONFIG = Path(__file__).with_name("kamailio.cfg")


def password(user: str) -> str:
    return "pw" + user


class KamailioProcess:
    """A Kamailio in the foreground of its own session (`-DD -E`), driven through its ctl socket."""

    folder: Path
    ctl: str
    proc: subprocess.Popen[bytes] | None = None

    def _launch(self, config: Path, shm_mb: int, args: list[str]) -> None:
        """Start it and wait until the ctl socket answers. Raises: PortTaken, RuntimeError."""
        with open(self.folder / "kamailio.log", "ab") as log:
            logged_before = log.tell()
            self.proc = subprocess.Popen(
                ["kamailio", "-DD", "-E", "-f", str(config), "-m", str(shm_mb), "-M", "8",
                 "-A", f'CTL_SOCK="{self.ctl}"', *args],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        try:
            wait_until(lambda: self._answers(logged_before), 10, interval=0.1)
        except AssertionError:
            self.stop()
            raise RuntimeError("kamailio ctl socket never answered") from None

    def _answers(self, logged_before: int) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            log = (self.folder / "kamailio.log").read_bytes()[logged_before:].decode(errors="replace")
            raise (PortTaken if "Address already in use" in log else RuntimeError)(f"kamailio exited: {log[-2000:]}")
        return self._kamcmd("core.uptime").returncode == 0

    def stop(self) -> None:
        terminate(self.proc)

    def log(self) -> str:
        return (self.folder / "kamailio.log").read_text(errors="replace")

    def _kamcmd(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kamcmd", "-s", self.ctl, *args], capture_output=True, text=True, timeout=30)


class Kamailio(KamailioProcess):
    def __init__(self, folder: Path, port: int | None = None, *, max_user: int = 5000, children: int = 2,
                 shm_mb: int = 256, tls: tuple[Path, Path] | None = None, defines: dict[str, str] | None = None):
        """`port`: None picks a free one (`.port` once started). `tls` = (certificate chain, private key) adds a
        TLS listener on a free port (`.tls_port`)."""
        if shutil.which("kamailio") is None:
            raise RuntimeError("kamailio is not installed (apt-get install kamailio)")
        self.folder = folder
        self.chosen_port = port
        self.port = port or 0
        self.tls_port = 0
        self.max_user = max_user
        self.children = children
        self.shm_mb = shm_mb
        self.ctl = f"unix:{folder / 'kamailio_ctl'}"
        self.tls = tls
        self.defines = defines or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Kamailio:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> Kamailio:
        if self.chosen_port is not None:
            return self._start_on(self.chosen_port)
        return on_a_free_port(self._start_on)

    def _start_on(self, port: int) -> Kamailio:
        self.port, self.tls_port = port, free_port() if self.tls else 0
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "kamailio.cfg"
        text = CONFIG.read_text().replace("KAM_TLS_PORT", str(self.tls_port))
        text = text.replace("KAM_PORT", str(self.port)).replace("KAM_TLS_CFG", str(self.folder / "tls.cfg"))
        config.write_text(text)
        defines = ["-A", "WITH_TLS"] if self.tls else []
        for name, value in self.defines.items():
            defines += ["-A", f"{name}={value}"]
        if self.tls:
            certificate, key = self.tls
            (self.folder / "tls.cfg").write_text(
                "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"
                f"private_key = {key}\ncertificate = {certificate}\n"
            )
        self._launch(config, self.shm_mb, ["-A", f"MAX_USER={self.max_user}", "-A", f"KAM_CHILDREN={self.children}",
                                           *defines])
        return self

    def pause(self) -> None:
        """SIGSTOP every Kamailio process: sockets stay open, nothing answers (a hung peer)."""
        os.killpg(self.proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]

    def resume(self) -> None:
        os.killpg(self.proc.pid, signal.SIGCONT)  # type: ignore[union-attr]

    def contacts(self, user: str) -> list[str]:
        """The Contact URIs bound to `user` right now (usrloc)."""
        return [binding["Address"] for binding in self.bindings(user)]

    def bindings(self, user: str) -> list[dict[str, str]]:
        """Each binding of `user` as usrloc shows it: Address, Call-ID, CSeq, Expires, Socket, …"""
        result = self._kamcmd("ul.lookup", "location", user)
        if result.returncode != 0:
            return []
        bindings = []
        for block in result.stdout.split("Contact: {")[1:]:
            bindings.append(dict(re.findall(r"^\s*([A-Za-z-]+): (.*)$", block, re.MULTILINE)))
        return bindings

    def location_counts(self) -> tuple[int, int]:
        """(AoRs, contacts) in usrloc right now: cheap enough to poll with thousands of bindings."""
        stats = dict(re.findall(r"usrloc:location_(users|contacts) = (\d+)",
                                self._kamcmd("stats.get_statistics", "usrloc:").stdout))
        return int(stats["users"]), int(stats["contacts"])

    def all_contacts(self) -> dict[str, list[str]]:
        """user → Contact URIs, for every AoR in usrloc."""
        dump = self._kamcmd("ul.dump").stdout
        bindings: dict[str, list[str]] = {}
        user = None
        for line in dump.splitlines():
            aor = re.search(r"AoR:\s*(\S+)", line)
            if aor:
                user = aor.group(1)
                bindings[user] = []
            address = re.search(r"Address:\s*(\S+)", line)
            if address and user is not None:
                bindings[user].append(address.group(1))
        return bindings
