"""What the operator sets for the registration of cloud lines (server/settings.py gives each a flag).

Every delay here is a protocol or load-control setting with a meaning of its own; tests shorten
them one by one (docs/architecture.md, house rule 6), never through a common factor.
"""

from __future__ import annotations

from dataclasses import dataclass

from sipline.registration.breaker import RELEASE_SPREAD
from sipline.registration.keepalive import UDP_KEEPALIVE
from sipline.registration.pacing import PacingSettings
from sipline.registration.schedule import Retries
from sipline.sip.transaction import Timers

NEW_LINE_SPREAD = 5.0  # docs/behaviour.md#reg-lifecycle: a new line's first REGISTER within this many seconds
STARTUP_SPREAD = 5.0  # docs/behaviour.md#reg-pacing: first attempts after a start over max(this, N / rate) seconds


@dataclass(frozen=True)
class EngineSettings:
    pacing: PacingSettings = PacingSettings()
    public_address: bool = (
        False  # --sip-public given: never learn our address from Via (docs/behaviour.md#reg-keepalive)
    )
    startup_spread: float = STARTUP_SPREAD
    new_line_spread: float = NEW_LINE_SPREAD
    timers: Timers = Timers()  # docs/behaviour.md#reg-transactions: T1 as set, T2 and T4 with it
    retries: Retries = Retries()  # docs/behaviour.md#reg-retry
    breaker_release_spread: float = RELEASE_SPREAD  # docs/behaviour.md#reg-pacing
    keepalive_interval: float = UDP_KEEPALIVE  # docs/behaviour.md#reg-keepalive: UDP CRLF keep-alives, ±20 %
