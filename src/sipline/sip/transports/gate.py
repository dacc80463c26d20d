"""The one check on where sipline may originate SIP traffic.

Everything sipline sends of its own accord (REGISTERs and un-REGISTERs, UDP keep-alives, the
TCP/TLS connections they open, NAT pings to PBXes) passes `TargetGate` in the transport; answers
to requests we received go back to their source and are not originated (RFC 3261 §18.2.2).

    registrar, keep-alive target   -> globally reachable only (sip/reachability.py),
                                      unless --allow-private-targets
    a PBX's observed source        -> any unicast address: a registered binding's source is where
                                      the PBX really is (docs/behaviour.md#office-nat), on a LAN too; the
                                      Contact it claims is never a destination

Each refusal is logged and counted (`refused_target` in /metrics).
"""

from __future__ import annotations

import logging
from collections import Counter

from sipline.sip.reachability import is_global, is_unicast

log = logging.getLogger("sipline.sip.transport")


def refusal_text(address: str) -> str:
    """The line's ERROR_MESSAGE when its SERVER leads only to refused addresses."""
    return f"Target address {address} is not allowed (not globally reachable)"


class TargetGate:
    def __init__(self, allow_private: bool, stats: Counter[str]) -> None:
        self.allow_private = allow_private  # --allow-private-targets
        self._stats = stats

    def permits(self, address: str) -> bool:
        """May sipline send to, or connect to, `address` (a registrar or its keep-alive target)?"""
        return self._decide(address, self.allow_private or is_global(address), "not globally reachable")

    def permits_peer(self, address: str) -> bool:
        """May sipline send to `address`, the source a PBX's request came from?"""
        return self._decide(address, is_unicast(address), "not a unicast address")

    def _decide(self, address: str, allowed: bool, reason: str) -> bool:
        if not allowed:
            self._stats["refused_target"] += 1
            log.warning("not sending to %s: %s", address, reason)
        return allowed
