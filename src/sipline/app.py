"""The HTTP application and the `serve` process around it.

One ASGI callable (no router): `/healthz`, CORS preflight, and everything else to
the REST endpoint, which answers JSON even for unknown paths. `serve` opens the
store, makes the first portal on first start, and runs uvicorn on the event loop
that later hosts the SIP side too.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
import time
from pathlib import Path

import uvicorn
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from sipline.config import ConfigError, Settings
from sipline.registrar.abuse import AbuseLimits
from sipline.registrar.bindings import Limits
from sipline.registrar.nat import PING_INTERVAL
from sipline.registrar.service import RegistrarSettings
from sipline.registration.engine import EngineSettings
from sipline.registration.pacing import PacingSettings
from sipline.sip_service import SipService, SipSettings
from sipline.rest.endpoint import RestApi, json_response
from sipline.rest.routes import masked
from sipline.services import Services
from sipline.store.crypto import SecretBox, load_or_create_key
from sipline.store.database import Database, sqlite_url
from sipline.tls import ensure_self_signed

log = logging.getLogger("sipline")
access = logging.getLogger("sipline.access")
BASE_URL_FILE = "base_url"  # where `serve` leaves its URL for `sipline webhook create`


class SiplineApp:
    def __init__(self, services: Services, *, sip: SipService | None = None, access_log: bool = False) -> None:
        self.services = services
        self.sip = sip
        self.rest = RestApi(services)
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if self.access_log:
            await self._logged(scope, receive, send)
        else:
            await self._respond(scope, receive, send)

    async def _logged(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One line per request; webhook codes masked (they are credentials)."""
        began, status = time.perf_counter(), [0]

        async def watch(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        await self._respond(scope, receive, watch)
        client = scope.get("client") or ("-", 0)
        access.info('%s "%s %s" %d %.1fms', client[0], scope["method"], masked(scope["path"]), status[0],
                    (time.perf_counter() - began) * 1000)

    async def _respond(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if scope["path"] == "/healthz":
            response = await self.healthz()
        elif scope["path"] == "/metrics":
            response = Response(self.sip.metrics() if self.sip else "", media_type="text/plain; version=0.0.4")
        elif request.method == "OPTIONS":
            response = json_response({})
        else:
            response = await self.rest(request)
        await response(scope, receive, send)

    async def healthz(self) -> Response:
        try:
            await self.services.db.ping()
        except SQLAlchemyError:
            return json_response({"error": "DATABASE_UNAVAILABLE", "error_description": "Database unreachable"}, 503)
        return json_response({"status": "ok"})


def open_database(settings: Settings) -> Database:
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    box = SecretBox(load_or_create_key(settings.data_dir, settings.secret_key))
    db = Database(sqlite_url(settings.data_dir), box)
    db.migrate()
    db.check_key()
    return db


def sip_settings(settings: Settings) -> SipSettings:
    pacing = PacingSettings(rate=settings.register_rate, burst=settings.register_rate,
                            host_rate=settings.provider_rate, host_burst=settings.provider_rate,
                            host_in_flight=settings.provider_in_flight)
    engine = EngineSettings(pacing=pacing, allow_private_targets=settings.allow_private_targets,
                            public_address=settings.sip_public is not None, time_scale=settings.time_scale,
                            startup_spread=settings.startup_spread)
    addresses = {host for host, _ in settings.sip_listen + settings.sip_tls_listen}
    if settings.sip_public:
        addresses.add(settings.sip_public[0])
    registrar = RegistrarSettings(
        realm=settings.registrar_name,
        addresses=frozenset(address.lower() for address in addresses),
        algorithms=settings.registrar_algorithms,
        limits=Limits(settings.registrar_min_expires, settings.registrar_max_expires,
                      settings.registrar_default_expires, settings.registrar_max_bindings),
        abuse=AbuseLimits(flood_requests=settings.flood_requests, auth_failures=settings.auth_failures,
                          auth_block=settings.auth_block, user_failures=settings.user_failures),
        ping_interval=PING_INTERVAL * settings.time_scale,
    )
    key = load_or_create_key(settings.data_dir, settings.secret_key)
    return SipSettings(
        registrar=registrar,
        master_key=hashlib.sha256(b"sipline registrar " + key).digest(),
        listen=list(settings.sip_listen),
        tls_listen=list(settings.sip_tls_listen),
        server_tls=_sip_tls(settings) if settings.sip_tls_listen else None,
        public=settings.sip_public,
        dns_servers=list(settings.dns_servers) if settings.dns_servers else None,
        engine=engine,
    )


def _sip_tls(settings: Settings) -> ssl.SSLContext:
    """The SIP TLS listener's certificate: its own, else the HTTPS one, else the local CA's."""
    cert, key = settings.sip_tls_cert or settings.tls_cert, settings.sip_tls_key or settings.tls_key
    if cert is None or key is None:
        _, cert, key = ensure_self_signed(settings.data_dir, settings.registrar_name)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def serve(settings: Settings) -> None:
    db = open_database(settings)
    sip = SipService(db, sip_settings(settings))
    services = Services.build(db, incoming_server=settings.registrar_name, events=sip.engine)
    created = await services.accounts.bootstrap(domain=settings.url_host, max_cloud_lines=settings.max_cloud_lines)
    cert, key = _tls_files(settings)
    if created is not None:  # printed before binding: the code is shown once, even if the port is taken
        print(f"webhook: {settings.base_url}{created.path}", flush=True)
    server = uvicorn.Server(
        uvicorn.Config(
            SiplineApp(services, sip=sip, access_log=settings.access_log),
            host=settings.host,
            port=settings.port,
            ssl_certfile=cert,
            ssl_keyfile=key,
            lifespan="off",
            access_log=False,  # paths carry webhook codes; never log them
            log_level=settings.log_level,
            server_header=False,
            # a client that never closes its connection must not hold up a stop (systemd, tests)
            timeout_graceful_shutdown=5,
        )
    )
    if settings.sip_public is None and any(host in ("0.0.0.0", "::") for host, _ in settings.sip_listen):
        log.warning("SIP listens on a wildcard address without --sip-public: Via and Contact need a "
                    "reachable address until one is learnt from the registrar (received/rport)")
    try:
        await sip.start()
    except OSError as error:
        db.close()
        raise ConfigError(f"sip-listen: cannot listen ({error.strerror or error})") from None
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    if server.started:
        (settings.data_dir / BASE_URL_FILE).write_text(settings.base_url + "\n")
        log.info("sipline listening on %s, SIP on %s", settings.base_url,
                 ", ".join(f"{host}:{port}" for host, port in settings.sip_listen))
    try:
        await task
    finally:
        await sip.stop()
        db.close()


def _tls_files(settings: Settings) -> tuple[str | None, str | None]:
    if settings.tls_self_signed:
        ca, cert, key = ensure_self_signed(settings.data_dir, settings.host)
        print(f"ca: {ca.resolve()}", flush=True)
        return str(cert), str(key)
    if settings.tls_cert is not None:
        return str(settings.tls_cert), str(settings.tls_key)
    return None, None


def base_url_of(data_dir: Path, fallback: str) -> str:
    path = data_dir / BASE_URL_FILE
    return path.read_text().strip() if path.exists() else fallback
