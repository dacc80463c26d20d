"""The SIP side of a running sipline: sockets, DNS, the registration engine, the registrar, and
the wiring between them.

Responses go to the registrar's NAT pinger (its OPTIONS) or to the registration
engine (its transactions); requests are answered as registrar/answering.py decides,
REGISTER by the registrar.
"""

from __future__ import annotations

import logging
import resource
import ssl
from dataclasses import dataclass, field

from sipline.registrar import answering
from sipline.registrar.abuse import AbuseLimits
from sipline.registrar.answering import Handling
from sipline.registrar.bindings import Limits as BindingLimits
from sipline.registrar.service import Registrar, RegistrarSettings
from sipline.registration.engine import RegistrationEngine
from sipline.registration.leases import LeaseKeeper
from sipline.registration.pacing import PacingSettings
from sipline.registration.schedule import Retries
from sipline.registration.settings import EngineSettings
from sipline.server.settings import Settings
from sipline.server.tls import ensure_self_signed
from sipline.sip.message import Message, Request, Response
from sipline.sip.trace import Trace
from sipline.sip.transaction import Timers
from sipline.sip.transports.admission import FlowLimits, fd_budget
from sipline.sip.transports.dns import DnsResolver
from sipline.sip.transports.manager import FLOW_KEEPALIVE, SipTransport, Source
from sipline.store.crypto import SecretBox
from sipline.store.database import Database

log = logging.getLogger("sipline.sip")


@dataclass(frozen=True)
class SipSettings:
    registrar: RegistrarSettings
    master_key: bytes  # nonce secrets derive from it
    listen: list[tuple[str, int]] = field(default_factory=lambda: [("127.0.0.1", 5060)])
    tls_listen: list[tuple[str, int]] = field(default_factory=list)
    server_tls: ssl.SSLContext | None = None
    public: tuple[str, int] | None = None
    dns_servers: list[tuple[str, int]] | None = None  # None: the system's resolv.conf
    allow_private_targets: bool = False  # originate to addresses that are not globally reachable
    engine: EngineSettings = EngineSettings()
    flow_keepalive: float = FLOW_KEEPALIVE  # seconds, at most, between CRLF pings on flows we opened
    flow_limits: FlowLimits = FlowLimits()  # TCP/TLS flows peers open to us


class SipService:
    def __init__(self, db: Database, settings: SipSettings) -> None:
        self.settings = settings
        self.transport = SipTransport(
            settings.listen,
            public=settings.public,
            tls_listen=settings.tls_listen,
            server_tls=settings.server_tls,
            flow_keepalive=settings.flow_keepalive,
            allow_private_targets=settings.allow_private_targets,
            flow_limits=settings.flow_limits,
        )
        self.resolver = DnsResolver(settings.dns_servers)
        self.trace = Trace()  # docs/behaviour.md#line-trace: the messages of every line this process works for
        self.engine = RegistrationEngine(db, self.transport, self.resolver, settings.engine, trace=self.trace)
        self.registrar = Registrar(db, self.transport, settings.registrar, settings.master_key, trace=self.trace)
        self.leases: LeaseKeeper | None = None  # scale-out: set when lines come from leases
        self.transport.on_message = self.dispatch
        self.transport.on_peer_gone = self.registrar.peer_gone

    async def start(self, resume: bool = True) -> None:
        """`resume`: every cloud line from the store; else lines come from leases.
        Raises: OSError when a listen address cannot be bound."""
        await self.transport.start()
        await self.engine.start(resume)
        await self.registrar.start()

    async def stop(self) -> None:
        await self.registrar.stop()
        await self.engine.stop()
        await self.transport.stop()

    def dispatch(self, message: Message, source: Source) -> None:
        if isinstance(message, Response):
            if not self.registrar.pinger.on_response(message):
                self.engine.on_response(message, source)
        else:
            self.answer(message, source)

    def answer(self, request: Request, source: Source) -> None:
        answer = answering.answer(request, (source.address, source.port))
        if answer is Handling.REGISTRAR:
            self.registrar.handle(request, source)
        elif answer is Handling.DROPPED:
            self.transport.stats["dropped_malformed"] += 1
        elif isinstance(answer, bytes):
            self.transport.reply(source, answer)


def sip_settings(settings: Settings, box: SecretBox, open_files: int) -> SipSettings:
    pacing = PacingSettings(
        rate=settings.register_rate,
        burst=settings.register_rate,
        host_rate=settings.provider_rate,
        host_burst=settings.provider_rate,
        host_in_flight=settings.provider_in_flight,
    )
    engine = EngineSettings(
        pacing=pacing,
        public_address=settings.sip_public is not None,
        startup_spread=settings.startup_spread,
        new_line_spread=settings.new_line_spread,
        timers=Timers.for_t1(settings.sip_t1),
        retries=Retries(transient=settings.retry_interval, rejected=settings.rejected_retry_interval),
        keepalive_interval=settings.keepalive_interval,
        breaker_release_spread=settings.breaker_release_spread,
    )
    addresses = {host for host, _ in settings.sip_listen + settings.sip_tls_listen}
    if settings.sip_public:
        addresses.add(settings.sip_public[0])
    registrar = RegistrarSettings(
        realm=settings.registrar_name.lower(),
        addresses=frozenset(address.lower() for address in addresses),
        algorithms=settings.registrar_algorithms,
        limits=BindingLimits(
            settings.registrar_min_expires,
            settings.registrar_max_expires,
            settings.registrar_default_expires,
            settings.registrar_max_bindings,
        ),
        abuse=AbuseLimits(
            flood_requests=settings.flood_requests,
            auth_failures=settings.auth_failures,
            auth_block=settings.auth_block,
            user_failures=settings.user_failures,
            table_size=settings.abuse_table_size,
        ),
        ping_interval=settings.nat_ping_interval,
    )
    return SipSettings(
        registrar=registrar,
        master_key=box.derive(b"sipline registrar "),
        listen=list(settings.sip_listen),
        tls_listen=list(settings.sip_tls_listen),
        server_tls=_sip_tls(settings) if settings.sip_tls_listen else None,
        public=settings.sip_public,
        dns_servers=list(settings.dns_servers) if settings.dns_servers else None,
        allow_private_targets=settings.allow_private_targets,
        engine=engine,
        flow_keepalive=settings.flow_keepalive,
        flow_limits=flow_limits(settings, open_files),
    )


def _sip_tls(settings: Settings) -> ssl.SSLContext:
    """The SIP TLS listener's certificate: its own, else the HTTPS one, else the local CA's."""
    cert, key = settings.sip_tls_cert or settings.tls_cert, settings.sip_tls_key or settings.tls_key
    if cert is None or key is None:
        _, cert, key = ensure_self_signed(settings.data_dir, settings.registrar_name)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def flow_limits(settings: Settings, open_files: int) -> FlowLimits:
    """The TCP/TLS admission limits, the total kept below the open-file limit (admission.py)."""
    unlimited = open_files == resource.RLIM_INFINITY
    total = settings.sip_tcp_max_flows if unlimited else min(settings.sip_tcp_max_flows, fd_budget(open_files))
    if total < settings.sip_tcp_max_flows:
        log.warning(
            "SIP TCP/TLS connections from peers capped at %d, below --sip-tcp-max-flows %d: the open-file limit is %d",
            total,
            settings.sip_tcp_max_flows,
            open_files,
        )
    return FlowLimits(
        per_source=settings.sip_tcp_per_ip,
        total=total,
        idle_timeout=settings.sip_tcp_idle_timeout,
        lifetime=settings.sip_tcp_lifetime,
    )
