"""The SIP side's families, read at scrape time (server/metrics.py): the transport's counters
(`SipTransport.stats`), the registrar's decisions and its abuse guard, the registration engine's
lines, the lease keeper, and the live bindings in the store.

Each family is a row of FAMILIES (type, HELP, label names); STATS says which family and labels each
of the transport's counters feeds; ZEROS the label values shown before anything is counted, so that
a rate over them starts at zero instead of appearing out of nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from sipline.server.sip_side import SipService
from sipline.store.database import Database, StoreUnavailable
from sipline.store.records import BreakerState, StatusResult

Values = dict[tuple[str, ...], float]

# fmt: off
FAMILIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "sipline_registrations": (
        "gauge", "Cloud lines this process registers, by STATUS_RESULT (every status present, at zero too)",
        ("status",)),
    "sipline_registration_engine_start_time_seconds": (
        "gauge", "When the registration engine began registering (Unix time)", ()),
    "sipline_registration_last_success_time_seconds": (
        "gauge", "When the latest cloud line reached `success` (Unix time; absent until one has)", ()),
    "sipline_provider_breaker_open": (
        "gauge", "1 while the provider's breaker holds its lines (open), else 0 (closed, recovering); one series "
        "per provider this process has registered with", ("provider",)),
    "sipline_leases_held": (
        "gauge", "Cloud lines this sip worker holds the lease of (PostgreSQL only)", ("worker",)),
    "sipline_sip_workers": ("gauge", "Live sip workers sharing the cloud lines (PostgreSQL only)", ()),
    "sipline_sip_messages_received": (
        "counter", "SIP datagrams and stream messages read from sockets, UDP keep-alives included", ()),
    "sipline_sip_messages_sent": (
        "counter", "SIP messages sent: requests (REGISTERs, NAT pings) and responses (the registrar's and "
        "every other answer)", ("kind",)),
    "sipline_sip_messages_dropped": (
        "counter", "SIP messages dropped, by reason: received ones that do not parse (malformed, oversized), "
        "answer no transaction (unmatched_response) or broke a handler (handler_error); requests to a "
        "target the gate refuses (refused_target)", ("reason",)),
    "sipline_sip_keepalives_sent": (
        "counter", "Keep-alives sent: CRLFCRLF over UDP to registrars, CRLF pings on our TCP/TLS flows",
        ("kind",)),
    "sipline_sip_transport_errors": (
        "counter", "Transport errors: UDP send or ICMP errors, failed accepts, flows silent after a ping",
        ("kind",)),
    "sipline_sip_peer_flows": ("gauge", "TCP/TLS connections peers hold open to sipline", ()),
    "sipline_sip_peer_flows_refused": (
        "counter", "TCP/TLS connections from peers refused at accept, by cap (total, per_source)", ("reason",)),
    "sipline_sip_peer_flows_closed_idle": (
        "counter", "TCP/TLS connections from peers closed for silence (idle timeout, lifetime)", ()),
    "sipline_registrar_accepted": ("counter", "REGISTERs the registrar answered 200 (bindings committed)", ()),
    "sipline_registrar_challenged": (
        "counter", "401 challenges the registrar sent: to REGISTERs without credentials or with a stale nonce, "
        "and after a failed attempt", ()),
    "sipline_registrar_refused": (
        "counter", "REGISTERs refused, by reason: a failed authentication (wrong_credentials, bad_nonce, "
        "replayed_nonce_count; answered by a new challenge or, under the abuse limits, not at all) or the "
        "SIP error answered (forbidden, not_found, bad_request, bad_extension, interval_too_brief, ...)",
        ("reason",)),
    "sipline_registrar_dropped": (
        "counter", "REGISTERs left unanswered under the abuse limits: from a blocked or flooding source "
        "(blocked), past the user's challenge interval (challenge_limited), not the current nonce "
        "(verify_limited)", ("reason",)),
    "sipline_registrar_blocks": (
        "counter", "Source IPs blocked, by cause (flood, auth_failures)", ("cause",)),
    "sipline_registrar_blocked_sources": ("gauge", "Source IPs blocked now", ()),
    "sipline_registrar_bindings": (
        "gauge", "Live office-line bindings in the store, by transport (the store's total: every sip process "
        "sharing it reports the same; absent while the store is unreachable)", ("transport",)),
    "sipline_registrar_nat_pings": ("counter", "OPTIONS pings sent to NAT-flagged UDP bindings", ()),
}

_DROPPED, _ERRORS = "sipline_sip_messages_dropped", "sipline_sip_transport_errors"
STATS: dict[str, tuple[str, tuple[str, ...]]] = {
    "received": ("sipline_sip_messages_received", ()),
    "sent": ("sipline_sip_messages_sent", ("request",)),
    "replied": ("sipline_sip_messages_sent", ("response",)),
    "dropped_malformed": (_DROPPED, ("malformed",)),
    "dropped_oversized": (_DROPPED, ("oversized",)),
    "unmatched_responses": (_DROPPED, ("unmatched_response",)),
    "handler_errors": (_DROPPED, ("handler_error",)),
    "refused_target": (_DROPPED, ("refused_target",)),
    "udp_keepalives": ("sipline_sip_keepalives_sent", ("udp_crlf",)),
    "crlf_pings": ("sipline_sip_keepalives_sent", ("crlf_ping",)),
    "udp_errors": (_ERRORS, ("udp",)),
    "accept_errors": (_ERRORS, ("accept",)),
    "flows_failed": (_ERRORS, ("flow_silent",)),
    "flows_refused_total": ("sipline_sip_peer_flows_refused", ("total",)),
    "flows_refused_per_source": ("sipline_sip_peer_flows_refused", ("per_source",)),
    "flows_closed_idle": ("sipline_sip_peer_flows_closed_idle", ()),
    "nat_pings": ("sipline_registrar_nat_pings", ()),
}
REFUSALS = ("wrong_credentials", "bad_nonce", "replayed_nonce_count", "forbidden", "not_found", "bad_request",
            "bad_extension", "interval_too_brief", "server_internal_error")
# fmt: on
ZEROS: dict[str, list[tuple[str, ...]]] = {
    "sipline_registrations": [(status.value,) for status in StatusResult],
    "sipline_registrar_accepted": [()],
    "sipline_registrar_challenged": [()],
    "sipline_registrar_refused": [(reason,) for reason in REFUSALS],
    "sipline_registrar_dropped": [("blocked",), ("challenge_limited",), ("verify_limited",)],
    "sipline_registrar_blocks": [("flood",), ("auth_failures",)],
    "sipline_registrar_bindings": [("udp",), ("tcp",), ("tls",)],
}
for _family, _labels in STATS.values():
    ZEROS.setdefault(_family, []).append(_labels)


class SipCollector:
    def __init__(self, sip: SipService, db: Database, wall: Callable[[], float] = time.time) -> None:
        self.sip, self.db, self.wall = sip, db, wall
        self.bindings: dict[str, int] | None = None  # by transport, as the store said at the last scrape

    async def refresh(self) -> None:
        """What needs the store: one query per scrape, none per REGISTER."""
        try:
            self.bindings = await self.db.read(lambda repo: repo.live_bindings_by_transport(self.wall()))
        except StoreUnavailable:
            self.bindings = None

    def collect(self) -> list[Metric]:
        found = self.values()
        families: list[Metric] = []
        for name, (kind, help_text, labels) in FAMILIES.items():
            family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(name, help_text, labels=labels)
            for label_values, value in found[name].items():
                family.add_metric(label_values, value)
            families.append(family)
        return families

    def values(self) -> dict[str, Values]:
        found: dict[str, Values] = {name: dict.fromkeys(ZEROS.get(name, ()), 0.0) for name in FAMILIES}
        sip, now = self.sip, self.wall()
        for key, count in sip.transport.stats.items():
            if key in STATS:
                family, labels = STATS[key]
                found[family][labels] = count
        found["sipline_sip_peer_flows"][()] = sip.transport.accepted.open
        engine = sip.engine
        for status, count in engine.status_counts().items():
            found["sipline_registrations"][(status,)] = count
        for provider, state in engine.breaker_states().items():
            found["sipline_provider_breaker_open"][(provider,)] = float(state is BreakerState.OPEN)
        for name, stamp in (
            ("sipline_registration_engine_start_time_seconds", engine.started_at),
            ("sipline_registration_last_success_time_seconds", engine.last_success_at),
        ):
            if stamp is not None:
                found[name][()] = stamp
        if sip.leases is not None:
            found["sipline_leases_held"][(sip.leases.worker,)] = len(sip.leases.held)
            found["sipline_sip_workers"][()] = sip.leases.workers
        registrar = sip.registrar
        for (decision, reason), count in registrar.decisions.items():
            found["sipline_registrar_" + decision][(reason,) if reason else ()] = count
        for cause, count in registrar.guard.blocks.items():
            found["sipline_registrar_blocks"][(cause,)] = count
        found["sipline_registrar_blocked_sources"][()] = registrar.guard.blocked_sources(now)
        if self.bindings is None:
            found["sipline_registrar_bindings"].clear()
        else:
            found["sipline_registrar_bindings"].update({(transport,): n for transport, n in self.bindings.items()})
        return found
