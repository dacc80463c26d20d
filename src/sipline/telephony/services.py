"""The services a running sipline is made of, built once and handed to the wire layers."""

from __future__ import annotations

from dataclasses import dataclass

from sipline.accounts.dashboard import SESSION_IDLE, Dashboard
from sipline.accounts.oauth import ACCESS_LIFETIME, OAuth
from sipline.accounts.portals import Accounts
from sipline.events.service import Events
from sipline.store.database import Database
from sipline.telephony.filter import FilterLimits
from sipline.telephony.lines import LineEvents, LineTraces, SipLines
from sipline.telephony.outgoing import OutgoingLines


@dataclass(frozen=True)
class Services:
    db: Database
    accounts: Accounts
    oauth: OAuth
    lines: SipLines
    outgoing: OutgoingLines
    events: Events
    dashboard: Dashboard

    @classmethod
    def build(
        cls,
        db: Database,
        *,
        incoming_server: str,
        events: LineEvents | None = None,
        traces: LineTraces | None = None,
        access_lifetime: float = ACCESS_LIFETIME,
        filter_limits: FilterLimits = FilterLimits(),
        allow_private_targets: bool = False,
        dashboard_idle: float = SESSION_IDLE,
    ) -> Services:
        lines = SipLines(db, incoming_server=incoming_server, events=events, traces=traces, filter_limits=filter_limits)
        return cls(
            db=db,
            accounts=Accounts(db),
            oauth=OAuth(db, access_lifetime=access_lifetime),
            lines=lines,
            outgoing=OutgoingLines(lines),
            events=Events.build(db, allow_private_targets=allow_private_targets),
            dashboard=Dashboard(db, idle=dashboard_idle),
        )
