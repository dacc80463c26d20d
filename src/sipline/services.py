"""The services a running sipline is made of, built once and handed to the wire layers."""

from __future__ import annotations

from dataclasses import dataclass

from sipline.accounts import Accounts
from sipline.store.database import Database
from sipline.telephony.lines import LineEvents, SipLines
from sipline.telephony.outgoing import OutgoingLines


@dataclass(frozen=True)
class Services:
    db: Database
    accounts: Accounts
    lines: SipLines
    outgoing: OutgoingLines

    @classmethod
    def build(cls, db: Database, *, incoming_server: str, events: LineEvents | None = None) -> Services:
        lines = SipLines(db, incoming_server=incoming_server, events=events)
        return cls(db=db, accounts=Accounts(db), lines=lines, outgoing=OutgoingLines(lines))
