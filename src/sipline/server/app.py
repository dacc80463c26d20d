"""The HTTP application and the `serve` process around it.

One ASGI callable around an explicit route list (`SiplineApp.routes`): `/healthz`,
`/metrics`, CORS preflight, the OAuth server, and everything else to the REST endpoint,
which answers JSON even for unknown paths. `serve` opens the
store, makes the first portal on first start, and runs uvicorn on the event loop
that later hosts the SIP side too.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from functools import partial

import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send

from sipline.files import write_private
from sipline.registration.leases import LeaseKeeper, LeaseSettings
from sipline.rest.client_address import Networks, client_address
from sipline.rest.endpoint import RestApi, RestLimits, wire_error
from sipline.rest.envelope import json_response
from sipline.rest.errors import MethodNotFound, error_response
from sipline.rest.limits import Rate
from sipline.rest.oauth_server import OAUTH_PATHS, OAuthServer, Urls, oauth_path
from sipline.rest.routes import masked
from sipline.rest.shared_limits import Limits, LocalLimits, RedisLimits
from sipline.server.addresses import (
    BASE_URL_FILE,
    OAUTH_URL_FILE,
    print_dashboard_link,
    print_listening,
    tls_files,
    urls_of,
)
from sipline.server.event_delivery import EventDeliverer
from sipline.server.line_events import Follower, PublishedEvents
from sipline.server.line_traces import LocalTraces, SharedTraces, TraceAnswers
from sipline.server.metrics import CONTENT_TYPE, Metrics
from sipline.server.request_deadline import DeadlineProtocol
from sipline.server.settings import ConfigError, Settings
from sipline.server.sip_metrics import SipCollector
from sipline.server.sip_side import SipService, sip_settings
from sipline.server.store_opening import open_database
from sipline.server.workers import PARENT_ENV
from sipline.store.database import StoreUnavailable
from sipline.telephony.filter import FilterLimits
from sipline.telephony.lines import LineEvents, LineTraces, NoEvents
from sipline.telephony.services import Services
from sipline.web.app import dashboard_routes

log = logging.getLogger("sipline")
access = logging.getLogger("sipline.access")
# A store thread that runs Python (PostgreSQL rows made into lines) holds the GIL up to this long
# before the event loop or another store thread gets it back: 1 ms instead of 5, so that /healthz
# and SIP answers do not wait long behind a tenant's heavy read.
SWITCH_INTERVAL = 0.001


class Endpoint:
    """An ASGI app from `async (Request) -> Response`. A Route to it answers every HTTP method
    (Starlette gives a Route to a plain function GET and HEAD only): REST takes any verb."""

    def __init__(self, handler: Callable[[Request], Awaitable[Response]]) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handler(Request(scope, receive))
        await response(scope, receive, send)


class OAuthRoute(Route):
    """An OAuth server path, matched also with doubled or trailing slashes (oauth_path), as clients
    join a base URL ending in `/` with a path starting with one."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope["path"]
        # "/oauth/" first: on the REST hot path it refuses for less than oauth_path's split
        if "/oauth/" in path and oauth_path(path) == self.path:
            return super().matches({**scope, "path": self.path})
        return Match.NONE, {}


class AnyPath(Route):
    """Every path, for the methods named; a request of another method goes on to the next route
    (where a Route would answer 405)."""

    def __init__(self, endpoint: Endpoint, methods: list[str]) -> None:
        super().__init__("/{path:path}", endpoint, methods=methods)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and scope["method"] in (self.methods or ()):
            return Match.FULL, {"endpoint": self.endpoint, "path_params": {}}
        return Match.NONE, {}


async def preflight(request: Request) -> Response:
    """A CORS preflight, on any path: allowed, with nothing in it."""
    return json_response({})


async def sip_worker_answer(request: Request) -> Response:
    return error_response(MethodNotFound("This is a sip worker: the REST API is on the api processes"))


class SiplineApp:
    def __init__(
        self,
        services: Services,
        urls: Urls,
        *,
        metrics: Metrics | None = None,
        access_log: bool = False,
        limits: RestLimits = RestLimits(),
        counters: Limits | None = None,
        oauth_only: bool = False,
        api: bool = True,
        trusted_proxies: Networks = (),
        secure: bool = False,
    ) -> None:
        """`oauth_only`: the OAuth server's own listener, where /rest/app.info is the OAuth-side one;
        without `api` (a `sip` worker) only /healthz and /metrics are served. `trusted_proxies` may
        name the client in X-Forwarded-For. `metrics`: served at /metrics, REST requests counted in them."""
        self.services = services
        self.metrics = metrics
        self.urls = urls
        self.rest = RestApi(services, portal_base=urls.portal_base, limits=limits, counters=counters)
        self.oauth = OAuthServer(services, urls, dashboard_here=not oauth_only)
        self.access_log = access_log
        self.oauth_only = oauth_only
        self.api = api
        self.trusted_proxies = trusted_proxies
        self.secure = secure  # served over HTTPS: the dashboard's cookie is Secure
        self.router = Router(self.routes(), default=self.fallback(), redirect_slashes=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        scope = {**scope, "client": self._client(scope)}  # what the log, the limits and the rest all see
        if self.access_log:
            await self._logged(scope, receive, send)
        else:
            await self.router(scope, receive, send)

    def _client(self, scope: Scope) -> tuple[str, int] | None:
        peer = scope.get("client")
        if peer is None:
            return None
        forwarded = [value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"]
        address = client_address(peer[0], forwarded, self.trusted_proxies)
        return (address, peer[1]) if address == peer[0] else (address, 0)

    async def _logged(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One line per request; webhook codes masked (they are credentials)."""
        began, status = time.perf_counter(), [0]

        async def watch(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        await self.router(scope, receive, watch)
        client = scope.get("client") or ("-", 0)
        access.info(
            '%s "%s %s" %d %.1fms',
            client[0],
            scope["method"],
            masked(scope["path"]),
            status[0],
            (time.perf_counter() - began) * 1000,
        )

    def routes(self) -> list[BaseRoute]:
        """The first route that matches a request answers it; `fallback` what none takes."""
        routes: list[BaseRoute] = [Route("/healthz", Endpoint(lambda _: self.healthz()))]
        if self.metrics is not None:
            routes.append(Route("/metrics", Endpoint(self.scrape)))
        if not self.api:
            return routes
        return [
            *routes,
            AnyPath(Endpoint(preflight), methods=["OPTIONS"]),
            *(OAuthRoute(path, Endpoint(partial(self.oauth, path=path))) for path in OAUTH_PATHS),
            *([] if self.oauth_only else dashboard_routes(self.services, self.urls, secure_cookie=self.secure)),
        ]

    def fallback(self) -> Endpoint:
        """REST, which answers its own unknown paths; the OAuth server's listener has one REST method,
        its app.info; a sip worker has none."""
        if not self.api:
            return Endpoint(sip_worker_answer)
        if self.oauth_only:
            return Endpoint(self.oauth.app_info)
        return Endpoint(self.metrics.timed(self.rest) if self.metrics else self.rest)

    async def scrape(self, request: Request) -> Response:
        assert self.metrics is not None  # the route is there only with them
        return Response(await self.metrics.exposition(), media_type=CONTENT_TYPE)

    async def healthz(self) -> Response:
        try:
            await self.services.db.ping()
        except StoreUnavailable as error:
            return error_response(wire_error(error, "/healthz"))
        return json_response({"status": "ok"})


def raise_open_files_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard one (systemd's soft default, 1024, is the old select()
    bound, not a budget); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as error:  # e.g. an unlimited hard limit the kernel caps lower
            log.warning("open-file limit stays at %d (hard %d): %s", soft, hard, error)
            return soft
    log.info("open-file limit: %d (was %d)", hard, soft)
    return hard


async def serve(settings: Settings, *, reuse_port: bool = False, metrics_dir: str | None = None) -> None:
    """`reuse_port`: one of several processes on the HTTP port (--workers), which count their metrics
    in `metrics_dir` (server/workers.py)."""
    settings, bound = _bind_free_ports(settings)
    open_files = raise_open_files_limit()
    metrics = Metrics(metrics_dir)
    db = open_database(settings)
    db.on_unavailable = metrics.store_unavailable.inc
    sip = SipService(db, sip_settings(settings, db.box, open_files)) if settings.role != "api" else None
    keeper = None
    traces: LineTraces | None = None
    if db.peers is not None:  # line changes and traces reach the other processes through the store
        events: LineEvents = PublishedEvents(db.peers, metrics.line_event)
        traces = SharedTraces(db, db.peers)
        if sip is not None:
            keeper = LeaseKeeper(db, sip.engine, LeaseSettings(settings.lease_time, settings.reconcile_interval))
            Follower(db, db.peers, sip.engine, keeper, metrics.line_event)
            TraceAnswers(db, db.peers, sip.trace)
            sip.leases = keeper
    else:
        events = sip.engine if sip is not None else NoEvents()
        traces = LocalTraces(sip.trace) if sip is not None else None
    if sip is not None:
        metrics.add(SipCollector(sip, db))
    await db.start()  # after every subscription: LISTEN covers the channels known at start
    services = Services.build(
        db,
        incoming_server=settings.registrar_name,
        events=events,
        traces=traces,
        access_lifetime=settings.access_token_lifetime,
        allow_private_targets=settings.allow_private_targets,  # handler URLs: docs/behaviour.md#event-bind
        dashboard_idle=settings.dashboard_idle,
        filter_limits=FilterLimits(
            settings.filter_max_values, settings.filter_max_terms, settings.filter_max_batch_terms
        ),
    )
    api = settings.role != "sip"
    created = await services.accounts.bootstrap(
        domain=settings.url_host, max_cloud_lines=settings.max_cloud_lines, max_lines=settings.max_lines, kept=api
    )
    cert, key = tls_files(settings)
    # docs/behaviour.md#dashboard: at every start, before binding (shown even if the port is taken)
    if created is not None:
        print(f"webhook: {settings.base_url}{created.path}", flush=True)
    if api:
        await print_dashboard_link(services, settings)
    urls = urls_of(settings)
    # docs/behaviour.md#event-delivery: every process with a SIP side delivers
    deliverer = EventDeliverer.built(db, services.oauth, urls, settings, metrics) if sip is not None else None
    limits = RestLimits(
        rate=Rate(*settings.rate_limit) if settings.rate_limit else None, operating_limit=settings.operating_limit
    )
    counters: Limits = (
        RedisLimits(settings.redis_url, settings.operating_limit)
        if settings.redis_url
        else LocalLimits(settings.operating_limit)
    )
    app = SiplineApp(
        services,
        urls,
        metrics=metrics,
        access_log=settings.access_log,
        limits=limits,
        counters=counters,
        api=api,
        trusted_proxies=settings.trusted_proxies,
        secure=settings.tls,
    )
    server = _server(settings, app, settings.host, settings.port, cert, key)
    servers = [server]
    if settings.oauth_listen is not None and api:
        servers.append(
            _server(
                settings,
                SiplineApp(
                    services,
                    urls,
                    limits=limits,
                    counters=counters,
                    oauth_only=True,
                    trusted_proxies=settings.trusted_proxies,
                ),
                *settings.oauth_listen,
                cert,
                key,
            )
        )
    if (
        sip is not None
        and settings.sip_public is None
        and any(host in ("0.0.0.0", "::") for host, _ in settings.sip_listen)
    ):
        log.warning(
            "SIP listens on a wildcard address without --sip-public: Via and Contact need a "
            "reachable address until one is learnt from the registrar (received/rport)"
        )
    try:
        if sip is not None:
            await sip.start(resume=keeper is None)
        if keeper is not None:
            await keeper.start()
        if deliverer is not None:
            await deliverer.start()
    except OSError as error:
        db.close()
        raise ConfigError(f"sip-listen: cannot listen ({error.strerror or error})") from None
    # Most of what start-up built (modules, the app, the lines resumed) lives as long as the process:
    # the cyclic collector need not walk it on every full collection (~1.5 % of a busy registrar's
    # CPU, ~70 ms of a 10 000-line start-up burst), so it is frozen before the first timer fires;
    # what of it is dropped later is still freed by reference counting. Young collections every
    # 50 000 new objects instead of 700: a burst's objects mostly die young, by reference counting,
    # before a collection would walk them (GC time in a 10 000-line burst: ~0.12 s → ~0.015 s,
    # for a few MB more between collections).
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)
    sys.setswitchinterval(SWITCH_INTERVAL)
    if reuse_port:
        bound["http"] = _listening_socket(settings.host, settings.port, reuse_port=True)
    sockets = [bound.get("http"), bound.get("oauth")]
    tasks: list[asyncio.Task[object]] = [
        asyncio.create_task(each.serve(sockets=[sock] if sock else None))
        for each, sock in zip(servers, sockets, strict=False)  # no OAuth server: one server, two sockets
    ]
    # what ends a serve besides a server stopping: SIGTERM (systemd, docker stop) or SIGINT, which run
    # the shutdown below and exit 0; in a --workers child, the parent gone
    stop = asyncio.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(number, stop.set)
    watchers: list[asyncio.Task[object]] = [asyncio.create_task(stop.wait())]
    if PARENT_ENV in os.environ:
        watchers.append(asyncio.create_task(_orphaned(int(os.environ[PARENT_ENV]))))
    tasks += watchers
    while not all(each.started for each in servers) and not any(each.done() for each in tasks):
        await asyncio.sleep(0.01)
    if all(each.started for each in servers):
        write_private(settings.data_dir / BASE_URL_FILE, f"{settings.base_url}\n".encode())
        write_private(settings.data_dir / OAUTH_URL_FILE, f"{urls.oauth_base}\n".encode())
        log.info(
            "sipline (%s) listening on %s, SIP on %s",
            settings.role,
            settings.base_url,
            ", ".join(f"{host}:{port}" for host, port in settings.sip_listen) if sip else "none",
        )
        print_listening(settings, urls, sip)
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for each in servers:
            each.should_exit = True
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if deliverer is not None:
            await deliverer.stop()
        if keeper is not None:
            await keeper.stop()
        if sip is not None:
            await sip.stop()
        await counters.close()
        db.close()


def _bind_free_ports(settings: Settings) -> tuple[Settings, dict[str, socket.socket]]:
    """Port 0 (--port, --oauth-listen) is bound first, so that every URL printed and stored names the
    port the system gave."""
    bound: dict[str, socket.socket] = {}
    if settings.port == 0:
        bound["http"] = _listening_socket(settings.host, 0)
        settings = replace(settings, port=bound["http"].getsockname()[1])
    if settings.oauth_listen is not None and settings.oauth_listen[1] == 0:
        bound["oauth"] = _listening_socket(settings.oauth_listen[0], 0, setting="oauth-listen")
        settings = replace(settings, oauth_listen=(settings.oauth_listen[0], bound["oauth"].getsockname()[1]))
    return settings, bound


def _listening_socket(host: str, port: int, *, reuse_port: bool = False, setting: str = "port") -> socket.socket:
    """An HTTP listening socket; with `reuse_port` (SO_REUSEPORT) every --workers process accepts on
    the same port and the kernel spreads the connections."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ConfigError(f"{setting}: cannot listen on {host}:{port} ({error.strerror or error})") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def _orphaned(parent: int) -> None:
    """A --workers child ends when the process that started it is gone (even after SIGKILL)."""
    while os.getppid() == parent:
        await asyncio.sleep(1)


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handling: uvicorn ends a SIGTERMed serve by raising the
    signal again under the handler it found, which ends the process before serve's own shutdown
    (a sip worker's leases handed back, the store closed). serve() takes SIGTERM and SIGINT itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _server(
    settings: Settings, app: SiplineApp, host: str, port: int, cert: str | None, key: str | None
) -> uvicorn.Server:
    return _Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            ssl_certfile=cert,
            ssl_keyfile=key,
            lifespan="off",
            access_log=False,  # paths carry webhook codes; never log them
            http=DeadlineProtocol.with_timeout(settings.http_header_timeout),
            ws="none",  # no WebSocket here: an Upgrade is an ordinary request
            # the client address is SiplineApp's to work out, from --trusted-proxy only
            proxy_headers=False,
            log_level=settings.log_level,
            log_config=None,  # uvicorn's records go to the root's one handler (server/logs.py)
            server_header=False,
            # a client that never closes its connection must not hold up a stop (systemd, tests)
            timeout_graceful_shutdown=5,
        )
    )
