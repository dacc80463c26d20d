"""/metrics: what a sipline process exposes, through prometheus_client's registry and text format.

Two kinds of families:

- counted as things happen, by the instruments here: REST requests, store errors, line
  events between processes. These are the counts of api processes, which may run as
  `--workers N` on one port: then they live in prometheus_client's multiprocess files
  (server/workers.py), and any worker's /metrics gives the sums over all of them.
- read at scrape time from the plain counters of the rooms below (server/sip_metrics.py):
  the SIP side, the registration engine, the registrar. Those rooms import nothing of
  prometheus_client and pay one Counter increment per event; the SIP side runs in one
  process (`--workers` is for api processes only), so its memory is the whole truth.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, values
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response

from sipline.rest.errors import MethodNotFound
from sipline.rest.registry import METHODS
from sipline.rest.routes import parse_rest_path
from sipline.server.line_events import KINDS

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # the text format every Prometheus reads
UNKNOWN_METHOD = "unknown"  # the one `method` label of every name sipline does not serve: clients choose names
# seconds: prometheus_client's default buckets, with 1 and 2.5 ms below them, where cached reads answer
REST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
EVENT_LABELS = [(direction, kind) for direction in ("published", "unpublished", "received") for kind in KINDS]

Handler = Callable[[Request], Awaitable[Response]]


class ScrapedCollector(Protocol):
    """A collector of values read when /metrics is asked for; `refresh` first reads what needs awaiting."""

    async def refresh(self) -> None: ...

    def collect(self) -> list[Metric]: ...


class Metrics:
    def __init__(self, directory: str | None = None) -> None:
        """`directory`: the --workers processes' shared multiprocess directory (server/workers.py), None
        for a process alone. Raises: RuntimeError when prometheus_client was imported before it was set."""
        if (directory is not None) != values.ValueClass._multiprocess:
            raise RuntimeError("prometheus_client was imported before its multiprocess directory was chosen")
        disable_created_metrics()  # no `_created` series beside each counter: nothing here reads them
        self.rest_duration = Histogram(
            "sipline_rest_request_duration_seconds",
            "REST requests by method (the wire name in lower case; `unknown` for any name sipline does not "
            "serve) and HTTP status, from the request's arrival at the REST endpoint to its answer",
            ["method", "code"],
            buckets=REST_BUCKETS,
            registry=None,
        )
        self.store_unavailable = Counter(
            "sipline_store_unavailable",
            "Store operations that failed because the database could not be reached (a PostgreSQL restart, "
            "a network cut, no pooled connection free in time): each answered 503 or retried later",
            registry=None,
        )
        self.line_events = Counter(
            "sipline_line_events",
            "Line changes between processes on PostgreSQL (NOTIFY): published by the process that made them, "
            "unpublished when the store could not take the notification (the lease reconcile finds the change "
            "later), received by sip processes (kind `malformed`: ignored)",
            ["direction", "kind"],
            registry=None,
        )
        for labels in [*EVENT_LABELS, ("received", "malformed")]:
            self.line_events.labels(*labels)  # present at zero
        self._durations: dict[tuple[str, str], Histogram] = {}
        self._scraped: list[ScrapedCollector] = []
        self.registry = CollectorRegistry()
        if directory is not None:
            MultiProcessCollector(self.registry, directory)
        else:
            for instrument in (self.rest_duration, self.store_unavailable, self.line_events):
                self.registry.register(instrument)

    def add(self, collector: ScrapedCollector) -> None:
        self._scraped.append(collector)
        self.registry.register(collector)

    async def exposition(self) -> bytes:
        for collector in self._scraped:
            await collector.refresh()
        return generate_latest(self.registry)

    def line_event(self, direction: str, kind: str) -> None:
        self.line_events.labels(direction, kind).inc()

    def timed(self, handler: Handler) -> Handler:
        """`handler` (the REST endpoint), its answers counted and timed by method and status."""

        async def answer(request: Request) -> Response:
            began = time.perf_counter()
            response = await handler(request)
            key = (method_label(request.scope["path"]), str(response.status_code))
            child = self._durations.get(key)
            if child is None:  # at most (methods + 1) × statuses of them
                child = self._durations[key] = self.rest_duration.labels(*key)
            child.observe(time.perf_counter() - began)
            return response

        return answer


def method_label(path: str) -> str:
    """The REST method a path names, if sipline serves it (docs/behaviour.md#rest-urls), else UNKNOWN_METHOD."""
    try:
        name = parse_rest_path(path).method
    except MethodNotFound:
        return UNKNOWN_METHOD
    return name if name in METHODS else UNKNOWN_METHOD
