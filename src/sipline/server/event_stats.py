"""The events' families of /metrics (docs/behaviour.md#event-bounds): what the deliverer counted
(plain counters, as the SIP side's: the deliverer runs in the process with the SIP side, which
`--workers` never copies) and, read from the store at scrape time, the events waiting.

    sipline_events_queued{event}              gauge: online deliveries and offline events waiting
    sipline_events_delivered_total{event}     a handler answered 2xx
    sipline_events_failed_total{event}        attempts that failed (connection, timeout, non-2xx, refused target)
    sipline_events_retried_total{event}       attempts after a failed one
    sipline_events_given_up_total{event}      deliveries dropped after --event-retry-for
    sipline_events_dropped_total{event}       events dropped over --event-queue-max
    sipline_event_delivery_seconds{event}     histogram: from the change to its delivery
"""

from __future__ import annotations

import contextlib
from bisect import bisect_left

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from sipline.store.database import Database, StoreUnavailable
from sipline.store.records import EventName

NAMES = tuple(name.value for name in EventName)
# seconds from the change to the 2xx: within a second normally, minutes to hours after failures
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86400.0)
COUNTERS = {
    "delivered": "Events a handler took (answered 2xx)",
    "failed": "Delivery attempts that failed: connection error, timeout, an answer not 2xx, a target refused",
    "retried": "Delivery attempts made after a failed one",
    "given_up": "Deliveries dropped because they failed for longer than --event-retry-for",
    "dropped": "Queued events (offline first, then online) dropped because a portal held more than --event-queue-max",
}


class EventStats:
    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {kind: dict.fromkeys(NAMES, 0) for kind in COUNTERS}
        self.buckets: dict[str, list[int]] = {name: [0] * (len(BUCKETS) + 1) for name in NAMES}
        self.seconds: dict[str, float] = dict.fromkeys(NAMES, 0.0)

    def _count(self, kind: str, event: str, count: int = 1) -> None:
        self.counts[kind][event] = self.counts[kind].get(event, 0) + count

    def delivered(self, event: str, seconds: float) -> None:
        self._count("delivered", event)
        buckets = self.buckets.setdefault(event, [0] * (len(BUCKETS) + 1))
        buckets[bisect_left(BUCKETS, seconds)] += 1
        self.seconds[event] = self.seconds.get(event, 0.0) + max(seconds, 0.0)

    def failed(self, event: str, *, given_up: bool) -> None:
        self._count("failed", event)
        if given_up:
            self._count("given_up", event)

    def retried(self, event: str) -> None:
        self._count("retried", event)

    def dropped(self, event: str, count: int) -> None:
        self._count("dropped", event, count)


class EventCollector:
    """A ScrapedCollector (server/metrics.py)."""

    def __init__(self, stats: EventStats, db: Database) -> None:
        self.stats = stats
        self.db = db
        self.queued: dict[str, int] = dict.fromkeys(NAMES, 0)

    async def refresh(self) -> None:
        with contextlib.suppress(StoreUnavailable):  # the last values stand; sipline_store_unavailable counts it
            self.queued = await self.db.read(lambda repo: repo.queued_events())

    def collect(self) -> list[Metric]:
        queued = GaugeMetricFamily(
            "sipline_events_queued", "Events waiting: online deliveries and offline events, by event", labels=["event"]
        )
        for event, count in sorted(self.queued.items()):
            queued.add_metric([event], count)
        families: list[Metric] = [queued]
        for kind, help_text in COUNTERS.items():
            family = CounterMetricFamily(f"sipline_events_{kind}", help_text, labels=["event"])
            for event, count in sorted(self.stats.counts[kind].items()):
                family.add_metric([event], count)
            families.append(family)
        latency = HistogramMetricFamily(
            "sipline_event_delivery_seconds", "Seconds from a change to its event's delivery", labels=["event"]
        )
        for event, buckets in sorted(self.stats.buckets.items()):
            cumulative, total = [], 0
            for bound, count in zip((*map(str, BUCKETS), "+Inf"), buckets, strict=True):
                total += count
                cumulative.append((bound, total))
            latency.add_metric([event], cumulative, self.stats.seconds.get(event, 0.0))
        families.append(latency)
        return families
