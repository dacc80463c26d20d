"""Settings of a sipline process, one table for all of them.

Each field of `Settings` is one row, made by `option(...)`: its flag, its SIPLINE_* environment
variable, the parser of its text, its default (as it would be typed) and its help. The `serve`
parser (cli.py), the environment fallbacks and the field defaults are all built from these rows:
a flag given wins, else the variable, else the default.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sipline.registration.breaker import RELEASE_SPREAD
from sipline.registration.keepalive import UDP_KEEPALIVE
from sipline.registration.schedule import REJECTED_FIRST, TRANSIENT_BASE
from sipline.registration.settings import NEW_LINE_SPREAD, STARTUP_SPREAD
from sipline.server.setting_values import (
    ConfigError,
    parse_algorithms,
    parse_count,
    parse_database_url,
    parse_dns_server,
    parse_flag,
    parse_limit,
    parse_listen,
    parse_log_format,
    parse_lower,
    parse_network,
    parse_optional_hostport,
    parse_optional_path,
    parse_optional_text,
    parse_path,
    parse_port,
    parse_positive,
    parse_rate,
    parse_rate_limit,
    parse_sip_address,
    parse_text,
    parse_tls,
)
from sipline.sip.address import InvalidAddress, parse_server_address
from sipline.sip.transaction import Timers
from sipline.sip.transports import admission
from sipline.sip.transports.manager import FLOW_KEEPALIVE

Parse = Callable[[str, str], Any]  # (text, the setting's name for messages) -> value; raises ConfigError


@dataclass(frozen=True)
class Option:
    """One row of the settings table: how a setting is given, on the command line and in the environment."""

    flag: str | None  # None: from the environment only (a secret: the command line shows in `ps`)
    env: str
    parse: Parse  # of the whole text, or of each item when `many`
    default: str | None  # as it would be typed (items comma-separated); None: unset
    help: str
    group: str = ""  # its section of `sipline serve --help`
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    many: bool = False  # a repeatable flag; the variable comma-separated
    switch: bool = False  # a flag without a value: given, it stands for "1"
    unset: str | None = None  # what --help calls an unset default (e.g. resolv.conf)

    @property
    def name(self) -> str:
        """The setting's name in messages: its flag's, or its variable's where only that carries a value."""
        return self.env if self.flag is None or self.switch else self.flag.removeprefix("--")

    def text(self, given: str | list[str] | None, environ: Mapping[str, str]) -> Any:
        """The flag's text if given, else the variable's, else the default; a list of items when `many`."""
        if given is not None:
            return given
        text = environ.get(self.env, self.default)
        if self.many:
            return [item for item in (text or "").split(",") if item.strip()]
        return text

    def value(self, text: Any) -> Any:
        """What `text` (as `text()` gives it) parses to."""
        if self.many:
            return tuple(self.parse(item, self.name) for item in text or ())
        return None if text is None else self.parse(text, self.name)

    def described(self) -> str:
        """The help text: what it does, then its default and its variable."""
        default = self.default or self.unset
        notes = [f"default: {default}"] if default else []
        if self.many:
            notes.append("repeatable")
        shape = ", comma-separated" if self.many else "=1" if self.switch else ""
        return f"{self.help} ({'; '.join([*notes, f'env {self.env}{shape}'])})"


def option(flag: str | None, env: str, parse: Parse, default: str | None, help: str, **more: Any) -> Any:
    """A `Settings` field from its row; the field's default is what the row's default text parses to."""
    row = Option(flag, env, parse, default, help, **more)
    return field(default=row.value(row.text(None, {})), metadata={"option": row})


SIP, SCALE_OUT, REST, REGISTRAR = "SIP", "scale-out", "REST limits and OAuth", "office registrar"
EVENTS = "events"


@dataclass(frozen=True)
class Settings:
    # a table, one row per setting, kept as one by the formatter
    # fmt: off
    data_dir: Path = option(
        "--data-dir", "SIPLINE_DATA_DIR", parse_path, "sipline-data", "the store, keys and certificates")
    database_url: str | None = option(
        "--database-url", "SIPLINE_DATABASE_URL", parse_optional_text, None, "sqlite:///FILE or postgresql://…",
        metavar="URL", unset="SQLite in the data dir")
    host: str = option("--host", "SIPLINE_HOST", parse_text, "127.0.0.1", "listen address")
    port: int = option("--port", "SIPLINE_PORT", parse_port, "8080", "listen port")
    tls_self_signed: bool = option(
        "--tls", "SIPLINE_TLS", parse_tls, "", "serve HTTPS with a local CA", choices=("self-signed",))
    tls_cert: Path | None = option(
        "--tls-cert", "SIPLINE_TLS_CERT", parse_optional_path, None, "certificate chain (PEM)")
    tls_key: Path | None = option("--tls-key", "SIPLINE_TLS_KEY", parse_optional_path, None, "private key (PEM)")
    incoming_server: str | None = option(
        "--incoming-server", "SIPLINE_INCOMING_SERVER", parse_optional_text, None, "INCOMING_SERVER of office lines",
        unset="the HTTP host")
    # docs/behaviour.md#sip-add step 3, for new portals
    max_cloud_lines: int = option(
        "--max-cloud-lines", "SIPLINE_MAX_CLOUD_LINES", parse_positive, "10", "cloud line limit of new portals")
    access_log: bool = option(
        "--access-log", "SIPLINE_ACCESS_LOG", parse_flag, "off", "log each request, codes masked", switch=True)
    log_level: str = option("--log-level", "SIPLINE_LOG_LEVEL", parse_lower, "info", "debug|info|warning|error")
    # docs/behaviour.md#logs
    log_format: str | None = option(
        "--log-format", "SIPLINE_LOG_FORMAT", parse_log_format, None, "log records as text or as JSON lines",
        choices=("text", "json"), unset="text on a terminal, else json")
    # Seconds a client has for a request's line and headers (from the connection's start or the last
    # response) and again for its body (request_deadline.py). nginx allows 60 (client_header_timeout),
    # a browser-facing server's default; API clients write a request at once, so 10 is ample on a
    # slow link and frees a connection held by a slow sender six times sooner.
    http_header_timeout: float = option(
        "--http-header-timeout", "SIPLINE_HTTP_HEADER_TIMEOUT", parse_rate, "10",
        "seconds for a request's line and headers, and again for its body; later: 408 and close", metavar="S")

    sip_listen: tuple[tuple[str, int], ...] = option(
        "--sip-listen", "SIPLINE_SIP_LISTEN", parse_listen, "127.0.0.1:5060", "SIP UDP+TCP listen address", group=SIP,
        metavar="ADDR:PORT", many=True)
    sip_public: tuple[str, int] | None = option(
        "--sip-public", "SIPLINE_SIP_PUBLIC", parse_sip_address, None,
        "address to put in Via and Contact instead of the listen address", group=SIP, metavar="HOST[:PORT]")
    allow_private_targets: bool = option(
        "--allow-private-targets", "SIPLINE_ALLOW_PRIVATE_TARGETS", parse_flag, "off",
        "let SERVER/OUTBOUND_PROXY lead to addresses that are not globally reachable (loopback, private, CGNAT, "
        "link-local, ...)", group=SIP, switch=True)
    dns_servers: tuple[tuple[str, int], ...] = option(
        "--dns-server", "SIPLINE_DNS_SERVERS", parse_dns_server, None, "DNS server for SRV/NAPTR/A lookups", group=SIP,
        metavar="ADDR[:PORT]", many=True, unset="resolv.conf")
    register_rate: float = option(
        "--register-rate", "SIPLINE_REGISTER_RATE", parse_rate, "1000",
        "REGISTER transactions per second, all providers", group=SIP)
    provider_rate: float = option(
        "--provider-rate", "SIPLINE_PROVIDER_RATE", parse_rate, "50",
        "new registrations and retries per second per provider host", group=SIP)
    provider_in_flight: int = option(
        "--provider-in-flight", "SIPLINE_PROVIDER_IN_FLIGHT", parse_positive, "50",
        "REGISTER transactions in flight per provider host", group=SIP)
    startup_spread: float = option(
        "--startup-spread", "SIPLINE_STARTUP_SPREAD", parse_rate, f"{STARTUP_SPREAD:g}",
        "spread the first REGISTERs after a start over at least this many seconds", group=SIP)
    # the delays of registering: docs/behaviour.md#reg-lifecycle, docs/behaviour.md#reg-transactions,
    # docs/behaviour.md#reg-retry, docs/behaviour.md#reg-keepalive
    new_line_spread: float = option(
        "--new-line-spread", "SIPLINE_NEW_LINE_SPREAD", parse_rate, f"{NEW_LINE_SPREAD:g}",
        "a new cloud line's first REGISTER goes within this many seconds", group=SIP, metavar="S")
    sip_t1: float = option(
        "--sip-t1", "SIPLINE_SIP_T1", parse_rate, f"{Timers.t1:g}",
        "RFC 3261 T1 in seconds, the round-trip estimate: REGISTERs over UDP are resent from T1 on, Timer F is "
        "64×T1; T2 and T4 keep their proportions to it (8×, 10×)", group=SIP, metavar="S")
    retry_interval: float = option(
        "--retry-interval", "SIPLINE_RETRY_INTERVAL", parse_rate, f"{TRANSIENT_BASE:g}",
        "seconds of the first wait after a failure that may pass (timeout, 503, ...): half to all of it, at "
        "random, doubled for each further failure up to 30 min", group=SIP, metavar="S")
    rejected_retry_interval: float = option(
        "--rejected-retry-interval", "SIPLINE_REJECTED_RETRY_INTERVAL", parse_rate, f"{REJECTED_FIRST:g}",
        "seconds of the first wait after a rejection (401, 403, 404, ...); then 3, 6 and 12 times it, that "
        "last one repeating; each ±10 %", group=SIP, metavar="S")
    breaker_release_spread: float = option(
        "--breaker-release-spread", "SIPLINE_BREAKER_RELEASE_SPREAD", parse_rate, f"{RELEASE_SPREAD:g}",
        "seconds over which the lines a provider's breaker held go again once the provider answers",
        group=SIP, metavar="S")
    keepalive_interval: float = option(
        "--keepalive-interval", "SIPLINE_KEEPALIVE_INTERVAL", parse_rate, f"{UDP_KEEPALIVE:g}",
        "seconds between CRLF keep-alives (±20 %) to the registrar of a line behind NAT over UDP", group=SIP,
        metavar="S")
    flow_keepalive: float = option(
        "--flow-keepalive", "SIPLINE_FLOW_KEEPALIVE", parse_rate, f"{FLOW_KEEPALIVE:g}",
        "at most this many seconds (at least 95/120 of it) between CRLF pings on TCP/TLS connections to "
        "registrars; no answer within 10 s fails the connection", group=SIP, metavar="S")
    sip_tls_listen: tuple[tuple[str, int], ...] = option(
        "--sip-tls-listen", "SIPLINE_SIP_TLS_LISTEN", parse_listen, None, "SIP TLS listen address for PBXes", group=SIP,
        metavar="ADDR:PORT", many=True)
    sip_tls_cert: Path | None = option(
        "--sip-tls-cert", "SIPLINE_SIP_TLS_CERT", parse_optional_path, None, "its certificate chain", group=SIP,
        unset="the HTTPS one, else a local CA's for INCOMING_SERVER")
    sip_tls_key: Path | None = option(
        "--sip-tls-key", "SIPLINE_SIP_TLS_KEY", parse_optional_path, None, "its private key", group=SIP)
    # TCP/TLS flows peers open, per IP (IPv6: /64); 0 = no cap
    sip_tcp_per_ip: int = option(
        "--sip-tcp-per-ip", "SIPLINE_SIP_TCP_PER_IP", parse_count, f"{admission.PER_SOURCE:g}",
        "TCP/TLS connections per source IP (IPv6: /64); 0 = no cap", group=SIP, metavar="N")
    # in all; lowered to what the open-file limit allows (app.flow_limits)
    sip_tcp_max_flows: int = option(
        "--sip-tcp-max-flows", "SIPLINE_SIP_TCP_MAX_FLOWS", parse_positive, f"{admission.MAX_FLOWS:g}",
        "TCP/TLS connections from peers in all; at most the open-file limit less a reserve", group=SIP, metavar="N")
    sip_tcp_idle_timeout: float = option(
        "--sip-tcp-idle-timeout", "SIPLINE_SIP_TCP_IDLE_TIMEOUT", parse_rate, f"{admission.IDLE_TIMEOUT:g}",
        "seconds a new connection has to send a SIP message", group=SIP, metavar="S")
    sip_tcp_lifetime: float = option(
        "--sip-tcp-lifetime", "SIPLINE_SIP_TCP_LIFETIME", parse_rate, f"{admission.LIFETIME:g}",
        "seconds a connection lives without a message; a registered one: past its binding's expiry", group=SIP,
        metavar="S")

    role: str = option(
        "--role", "SIPLINE_ROLE", parse_text, "all", "api: REST only; sip: registration and registrar only; all: both",
        group=SCALE_OUT, choices=("all", "api", "sip"))
    workers: int = option(
        "--workers", "SIPLINE_WORKERS", parse_positive, "1",
        "api processes sharing the port (SO_REUSEPORT), this one included", group=SCALE_OUT, metavar="N")
    redis_url: str | None = option(
        "--redis-url", "SIPLINE_REDIS_URL", parse_optional_text, None,
        "share the REST limits of all api processes through Redis", group=SCALE_OUT, metavar="URL")
    lease_time: float = option(
        "--lease-time", "SIPLINE_LEASE_TIME", parse_rate, "10", "seconds a sip worker's lease on a cloud line lasts",
        group=SCALE_OUT, metavar="S")
    reconcile_interval: float = option(
        "--reconcile-interval", "SIPLINE_RECONCILE_INTERVAL", parse_rate, "30",
        "seconds between a sip worker's comparisons with the store", group=SCALE_OUT, metavar="S")

    # docs/behaviour.md#rest-rate-limit: burst X, Y a second after; None = off
    rate_limit: tuple[float, float] | None = option(
        "--rate-limit", "SIPLINE_RATE_LIMIT", parse_rate_limit, "50/2",
        "requests per portal and client IP: burst X, Y a second after", group=REST, metavar="X/Y|off")
    # docs/behaviour.md#rest-operating-limit: seconds per 10 min per (app|webhook, method); None = off
    operating_limit: float | None = option(
        "--operating-limit", "SIPLINE_OPERATING_LIMIT", parse_limit, "480",
        "seconds of one method per app or webhook in 10 minutes", group=REST, metavar="S|off")
    max_lines: int = option(
        "--max-lines", "SIPLINE_MAX_LINES", parse_positive, "1000", "line limit (office and cloud) of new portals",
        group=REST, metavar="N")
    filter_max_values: int = option(
        "--filter-max-values", "SIPLINE_FILTER_MAX_VALUES", parse_positive, "500",
        "values in one FILTER list of voximplant.sip.get", group=REST, metavar="N")
    filter_max_terms: int = option(
        "--filter-max-terms", "SIPLINE_FILTER_MAX_TERMS", parse_positive, "1000", "values in all lists of one FILTER",
        group=REST, metavar="N")
    filter_max_batch_terms: int = option(
        "--filter-max-batch-terms", "SIPLINE_FILTER_MAX_BATCH_TERMS", parse_positive, "5000",
        "FILTER values in all calls of one batch", group=REST, metavar="N")
    # docs/behaviour.md#rest-client-address
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = option(
        "--trusted-proxy", "SIPLINE_TRUSTED_PROXIES", parse_network, None, "proxy whose X-Forwarded-For is believed",
        group=REST, metavar="CIDR", many=True, unset="none")
    oauth_listen: tuple[str, int] | None = option(
        "--oauth-listen", "SIPLINE_OAUTH_LISTEN", parse_optional_hostport, None,
        "also serve the OAuth server on a base URL of its own", group=REST, metavar="HOST:PORT")
    # docs/behaviour.md#oauth-server
    access_token_lifetime: float = option(
        "--access-token-lifetime", "SIPLINE_ACCESS_TOKEN_LIFETIME", parse_rate, "3600",
        "seconds an OAuth access token lives", group=REST, metavar="S")

    # docs/behaviour.md#office-expiry
    registrar_min_expires: int = option(
        "--registrar-min-expires", "SIPLINE_REGISTRAR_MIN_EXPIRES", parse_positive, "60",
        "shorter requests get 423 (docs/behaviour.md#office-expiry)", group=REGISTRAR)
    registrar_max_expires: int = option(
        "--registrar-max-expires", "SIPLINE_REGISTRAR_MAX_EXPIRES", parse_positive, "3600",
        "longer requests are granted this", group=REGISTRAR)
    registrar_default_expires: int = option(
        "--registrar-default-expires", "SIPLINE_REGISTRAR_DEFAULT_EXPIRES", parse_positive, "3600",
        "granted when none is asked", group=REGISTRAR)
    # docs/behaviour.md#office-bindings
    registrar_max_bindings: int = option(
        "--registrar-max-bindings", "SIPLINE_REGISTRAR_MAX_BINDINGS", parse_positive, "3",
        "Contacts per office line (docs/behaviour.md#office-bindings)", group=REGISTRAR)
    # docs/behaviour.md#office-digest: challenge order. MD5 alone, as Kamailio's and Asterisk's registrars: many PBXes answer only MD5,
    # and libre-based UAs (baresip) fail when any SHA-256 challenge is present; SHA-256 is chosen per
    # portal or line (README, "Office lines")
    registrar_algorithms: tuple[str, ...] = option(
        "--registrar-algorithms", "SIPLINE_REGISTRAR_ALGORITHMS", parse_algorithms, "MD5",
        "digest challenges, in order, of lines and portals without their own (docs/behaviour.md#office-digest)",
        group=REGISTRAR)
    # docs/behaviour.md#office-nat (registrar/nat.py PING_INTERVAL)
    nat_ping_interval: float = option(
        "--nat-ping-interval", "SIPLINE_NAT_PING_INTERVAL", parse_rate, "30",
        "seconds between OPTIONS to PBXes registered from behind NAT over UDP; three unanswered in a row mark "
        "the binding unreachable", group=REGISTRAR, metavar="S")
    # docs/behaviour.md#office-abuse: the abuse guard (registrar/abuse.py)
    flood_requests: int = option(
        "--flood-requests", "SIPLINE_FLOOD_REQUESTS", parse_count, "20",
        "requests per source IP per 2 s before a 5 min block; 0 = off", group=REGISTRAR)
    auth_failures: int = option(
        "--auth-failures", "SIPLINE_AUTH_FAILURES", parse_count, "5",
        "failed logins per source IP per 10 min before a block; 0 = off", group=REGISTRAR)
    auth_block: float = option(
        "--auth-block", "SIPLINE_AUTH_BLOCK", parse_rate, "1800",
        "seconds of the first block, doubled for each next one in a day", group=REGISTRAR)
    user_failures: int = option(
        "--user-failures", "SIPLINE_USER_FAILURES", parse_positive, "20",
        "failed logins per user per 10 min before challenges slow", group=REGISTRAR)
    abuse_table_size: int = option(
        "--abuse-table-size", "SIPLINE_ABUSE_TABLE_SIZE", parse_positive, "100000",
        "source IPs, usernames and (user, IP) pairs the abuse guard remembers, each", group=REGISTRAR)

    # docs/behaviour.md#event-delivery, docs/behaviour.md#event-bounds
    event_timeout: float = option(
        "--event-timeout", "SIPLINE_EVENT_TIMEOUT", parse_rate, "5",
        "seconds a handler has to answer a delivery; later: a failed attempt", group=EVENTS, metavar="S")
    event_retry_after: float = option(
        "--event-retry-after", "SIPLINE_EVENT_RETRY_AFTER", parse_rate, "5",
        "seconds before the first retry of a failed delivery; doubled for each next one, ±20 %", group=EVENTS,
        metavar="S")
    event_retry_max_interval: float = option(
        "--event-retry-max-interval", "SIPLINE_EVENT_RETRY_MAX_INTERVAL", parse_rate, "3600",
        "seconds between retries at most", group=EVENTS, metavar="S")
    event_retry_for: float = option(
        "--event-retry-for", "SIPLINE_EVENT_RETRY_FOR", parse_rate, "86400",
        "seconds after its change a delivery is still tried; then it is given up", group=EVENTS, metavar="S")
    event_in_flight: int = option(
        "--event-in-flight", "SIPLINE_EVENT_IN_FLIGHT", parse_positive, "64",
        "deliveries in flight at once in this process", group=EVENTS, metavar="N")
    event_in_flight_per_handler: int = option(
        "--event-in-flight-per-handler", "SIPLINE_EVENT_IN_FLIGHT_PER_HANDLER", parse_positive, "4",
        "deliveries in flight at once to one handler", group=EVENTS, metavar="N")
    event_queue_max: int = option(
        "--event-queue-max", "SIPLINE_EVENT_QUEUE_MAX", parse_positive, "10000",
        "events queued per portal, online and offline; past it the oldest go, offline ones first", group=EVENTS,
        metavar="N")

    # docs/behaviour.md#dashboard
    dashboard_idle: float = option(
        "--dashboard-idle", "SIPLINE_DASHBOARD_IDLE", parse_rate, "28800",
        "seconds a dashboard session may go unused before it ends", metavar="S")

    secret_key: str | None = option(
        None, "SIPLINE_SECRET_KEY", parse_optional_text, None, "base64 of the key that seals stored secrets",
        unset="<data dir>/secret.key")
    # fmt: on

    @property
    def store_url(self) -> str:
        from sipline.store.urls import sqlite_url

        return self.database_url or sqlite_url(self.data_dir)

    @property
    def shared_store(self) -> bool:
        from sipline.store.urls import shared_by_processes

        return shared_by_processes(self.store_url)

    @property
    def tls(self) -> bool:
        return self.tls_self_signed or self.tls_cert is not None

    @property
    def url_host(self) -> str:
        """The host for URLs we print: the listen address, or this machine's name for a wildcard."""
        host = self.host
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return host
        if address.is_unspecified:
            return socket.getfqdn()
        return f"[{host}]" if address.version == 6 else host

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.url_host}:{self.port}"

    @property
    def registrar_name(self) -> str:
        """INCOMING_SERVER for portals that do not set their own."""
        return self.incoming_server or self.url_host


OPTIONS: dict[str, Option] = {each.name: each.metadata["option"] for each in fields(Settings)}


def settings_from(given: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> Settings:
    """The settings whose flags `given` holds (field name -> the flag's text, None when not given), and
    those of the environment alone; the others keep their defaults.

    Raises: ConfigError naming the first bad setting."""
    values = {
        name: row.value(row.text(given.get(name), environ))
        for name, row in OPTIONS.items()
        if name in given or row.flag is None
    }
    return check(Settings(**values))


def check(settings: Settings) -> Settings:
    """Raises: ConfigError for the first setting that cannot work."""
    if not settings.host or any(char.isspace() for char in settings.host):
        raise ConfigError(f"host: {settings.host!r} is not a host name or address")
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise ConfigError("tls: --tls-cert and --tls-key go together")
    if settings.tls_cert is not None and settings.tls_self_signed:
        raise ConfigError("tls: use either --tls self-signed or --tls-cert/--tls-key")
    for path in (settings.tls_cert, settings.tls_key):
        if path is not None and not path.is_file():
            raise ConfigError(f"tls: {path} is not a readable file")
    if settings.incoming_server is not None:
        try:
            address = parse_server_address(settings.incoming_server)
        except InvalidAddress:
            raise ConfigError(f"incoming-server: {settings.incoming_server!r} is not a host name") from None
        if address.port is not None or address.transport is not None:
            raise ConfigError("incoming-server: give a host name only")
    if (settings.sip_tls_cert is None) != (settings.sip_tls_key is None):
        raise ConfigError("sip-tls: --sip-tls-cert and --sip-tls-key go together")
    if not 0 < settings.registrar_min_expires <= settings.registrar_max_expires:
        raise ConfigError("registrar-min-expires must be positive and at most registrar-max-expires")
    if settings.database_url is not None:
        parse_database_url(settings.database_url, "database-url")
    if settings.role not in ("all", "api", "sip"):
        raise ConfigError(f"role: {settings.role!r} is not all, api or sip")
    if settings.role != "all" and not settings.shared_store:
        raise ConfigError(f"role: {settings.role} processes share a PostgreSQL store: give --database-url")
    if settings.workers > 1 and (settings.role != "api" or not settings.shared_store):
        raise ConfigError("workers: several processes on one port are for --role api on PostgreSQL")
    if settings.workers > 1 and settings.port == 0:
        raise ConfigError("workers: several processes share one port: give it (--port 0 picks one per process)")
    if settings.redis_url is not None and not settings.redis_url.lower().startswith(
        ("redis://", "rediss://", "unix://")
    ):
        raise ConfigError(f"redis-url: {settings.redis_url!r} is not a redis:// URL")
    if settings.log_level not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"log-level: {settings.log_level!r} is not debug, info, warning or error")
    return settings
