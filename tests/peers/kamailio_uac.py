"""Kamailio (uac_reg) as an office PBX: real third-party client code registering to sipline's registrar.

The accounts go to a db_text `uacreg` table; Kamailio REGISTERs each, with digest auth, to
registrar_host:registrar_port (uacreg.auth_proxy): R-URI sip:<domain>, From/To sip:<username>@<domain>,
Contact <sip:<username>@127.0.0.1:<port>>. Kamailio 5.6 answers only the FIRST WWW-Authenticate and
only MD5 (SHA-256 first = no registration), and counts a 200 OK only if it lists that Contact.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tests.peers import on_a_free_port
from tests.peers.kamailio import KamailioProcess

CONFIG = Path(__file__).with_name("kamailio-uac.cfg")
UACREG_HEADER = ("id(int,auto) l_uuid(string) l_username(string) l_domain(string) r_username(string) "
                 "r_domain(string) realm(string,null) auth_username(string) auth_password(string) "
                 "auth_ha1(string,null) auth_proxy(string) expires(int) flags(int) reg_delay(int) "
                 "contact_addr(string) socket(string,null)\n")
FLAGS = {1: "disabled", 2: "ongoing", 4: "registered", 8: "auth_sent", 16: "initialized"}


@dataclass
class Account:
    username: str  # also the Contact user (uacreg l_uuid): must be unique in one KamailioUac
    password: str
    registrar_host: str
    registrar_port: int
    domain: str  # realm host: R-URI sip:<domain>, To/From sip:<username>@<domain>
    expires: int = 600
    transport: str = "udp"


class KamailioUac(KamailioProcess):
    """Kamailio registering accounts to a remote registrar with uac_reg (an office PBX that is real software)."""

    def __init__(self, folder: Path, accounts: list[Account], *, port: int | None = None, retry_interval: int = 8,
                 timer_interval: int = 1, fr_timer_ms: int = 4000):
        """`port`: None picks a free one (`.port` once started), the Contact port of every account."""
        if shutil.which("kamailio") is None:
            raise RuntimeError("kamailio is not installed (apt-get install kamailio)")
        if len({a.username for a in accounts}) != len(accounts):
            raise ValueError("account usernames must be unique (they are the uacreg l_uuid)")
        self.folder, self.chosen_port, self.port, self.accounts = folder, port, port or 0, list(accounts)
        self.defines = {"REG_RETRY_INTERVAL": retry_interval, "REG_TIMER_INTERVAL": timer_interval,
                        "TM_FR_TIMER": fr_timer_ms}
        self.ctl = f"unix:{folder / 'kamailio_ctl'}"
        self.proc = None
        self._mtime = 0.0

    def __enter__(self) -> KamailioUac:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _write_db(self) -> None:
        db = self.folder / "db"
        db.mkdir(parents=True, exist_ok=True)
        (db / "version").write_text("table_name(string) table_version(int)\nuacreg:5\n")
        rows = []
        for n, a in enumerate(self.accounts, 1):
            suffix = ";transport=tcp" if a.transport == "tcp" else ""
            proxy = f"sip:{a.registrar_host}:{a.registrar_port}{suffix}"
            fields = [a.username, a.username, "127.0.0.1", a.username, a.domain, "", a.username, a.password,
                      "", proxy, str(a.expires), "0", "0", f"127.0.0.1:{self.port}{suffix}", ""]
            rows.append(f"{n}:" + ":".join(f.replace("\\", "\\\\").replace(":", "\\:") for f in fields) + "\n")
        (db / "uacreg").write_text(UACREG_HEADER + "".join(rows))
        # db_text re-reads a table when its mtime (whole seconds) changes: make sure it does
        self._mtime = max(time.time(), self._mtime + 1.0)
        os.utime(db / "uacreg", (self._mtime, self._mtime))

    def start(self) -> KamailioUac:
        if self.chosen_port is not None:
            return self._start_on(self.chosen_port)
        return on_a_free_port(self._start_on)

    def _start_on(self, port: int) -> KamailioUac:
        self.port = port
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write_db()
        config = self.folder / "kamailio-uac.cfg"
        config.write_text(CONFIG.read_text().replace("KAM_PORT", str(self.port))
                          .replace("KAM_DB_DIR", str(self.folder / "db")))
        defines = [arg for name, value in self.defines.items() for arg in ("-A", f"{name}={value}")]
        self._launch(config, 64, defines)
        return self

    def status(self) -> list[dict[str, str]]:
        """One dict per account from `uac.reg_dump` (l_uuid, r_username, flags, timer_expires, …) plus
        "state": its flag names joined by "," ("registered,initialized" once the 200 OK came)."""
        records = []
        for block in re.findall(r"\{(.*?)\}", self._kamcmd("uac.reg_dump").stdout, re.DOTALL):
            record = dict(re.findall(r"^\s*([A-Za-z_]+): ?(.*)$", block, re.MULTILINE))
            flags = int(record.get("flags", "0"))
            record["state"] = ",".join(name for bit, name in FLAGS.items() if flags & bit) or "idle"
            records.append(record)
        return records

    def registered(self, username: str) -> bool:
        return any(r.get("l_uuid") == username and int(r.get("flags", "0")) & 4 for r in self.status())

    def refresh(self, accounts: list[Account] | None = None) -> None:
        """Rewrite the uacreg table (with `accounts` if given) and reload each account from it
        (`uac.reg_refresh`): the record is replaced and registers afresh at the next timer run.
        Accounts no longer listed are dropped (`uac.reg_remove`, no un-REGISTER sent)."""
        new = self.accounts if accounts is None else list(accounts)
        dropped = {a.username for a in self.accounts} - {a.username for a in new}
        self.accounts = new
        self._write_db()
        for username in dropped:
            self._kamcmd("uac.reg_remove", username)
        for account in self.accounts:
            self._kamcmd("uac.reg_refresh", account.username)
