"""Settings of a sipline process: command-line flags, each with a SIPLINE_* environment fallback."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from sipline.sip.address import InvalidAddress, parse_server_address
from sipline.sip.grammar import is_digits
from sipline.sip.transports import admission


class ConfigError(ValueError):
    """A setting has a value sipline cannot use; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("sipline-data")
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_self_signed: bool = False
    incoming_server: str | None = None
    max_cloud_lines: int = 10  # voximplant-sip.md §2 step 3, for new portals
    max_lines: int = 1000  # office and cloud lines of a new portal (README, REST limits)
    filter_max_values: int = 500  # values in one FILTER list of voximplant.sip.get
    filter_max_terms: int = 1000  # values in all of one FILTER
    filter_max_batch_terms: int = 5000  # FILTER values in all sip.get of one batch
    secret_key: str | None = None  # base64; else <data dir>/secret.key
    access_log: bool = False
    # Seconds a client has for a request's line and headers (from the connection's start or the last
    # response) and again for its body (request_deadline.py). nginx allows 60 (client_header_timeout),
    # a browser-facing server's default; API clients write a request at once, so 10 is ample on a
    # slow link and frees a connection held by a slow sender six times sooner.
    http_header_timeout: float = 10.0
    log_level: str = "info"
    sip_listen: tuple[tuple[str, int], ...] = (("127.0.0.1", 5060),)
    sip_public: tuple[str, int] | None = None
    allow_private_targets: bool = False
    dns_servers: tuple[tuple[str, int], ...] | None = None
    register_rate: float = 1000.0
    provider_rate: float = 50.0
    provider_in_flight: int = 50
    startup_spread: float = 5.0
    sip_tls_listen: tuple[tuple[str, int], ...] = ()
    sip_tls_cert: Path | None = None
    sip_tls_key: Path | None = None
    registrar_min_expires: int = 60  # sip-behaviour.md B4
    registrar_max_expires: int = 3600
    registrar_default_expires: int = 3600
    registrar_max_bindings: int = 3  # B5
    # B3: challenge order. MD5 alone, as Kamailio's and Asterisk's registrars: many PBXes answer only MD5,
    # and libre-based UAs (baresip) fail when any SHA-256 challenge is present; SHA-256 is chosen per
    # portal or line (README, "Office lines")
    registrar_algorithms: tuple[str, ...] = ("MD5",)
    flood_requests: int = 20  # B8: per source IP per 2 s; 0 = off
    auth_failures: int = 5  # B8: per source IP per 10 min before a block; 0 = off
    auth_block: float = 1800.0
    user_failures: int = 20  # B8: per username per 10 min before challenges slow down
    abuse_table_size: int = 100_000  # B8: entries per table of the abuse guard (registrar/abuse.py)
    time_scale: float = 1.0  # SIPLINE_TIME_SCALE: shortens every SIP delay; for tests only
    rate_limit: tuple[float, float] | None = (50.0, 2.0)  # rest-protocol.md §7: X, Y; None = off
    operating_limit: float | None = 480.0  # §8: seconds per 10 min per (app|webhook, method); None = off
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()  # Q-R5
    oauth_listen: tuple[str, int] | None = None  # a listener of the OAuth server's own
    access_token_lifetime: float = 3600.0  # §2.3
    database_url: str | None = None  # None: SQLite in the data dir
    role: str = "all"  # all | api | sip
    redis_url: str | None = None  # REST limits shared by every api process
    lease_time: float = 10.0  # seconds a sip worker's lease on a cloud line lasts
    reconcile_interval: float = 30.0  # seconds between a sip worker's full comparisons with the store
    workers: int = 1  # api processes sharing the HTTP port (SO_REUSEPORT), this one included
    sip_tcp_per_ip: int = admission.PER_SOURCE  # TCP/TLS flows peers open, per IP (IPv6: /64); 0 = no cap
    sip_tcp_max_flows: int = admission.MAX_FLOWS  # in all; lowered to what the open-file limit allows
    sip_tcp_idle_timeout: float = admission.IDLE_TIMEOUT  # seconds a new flow has to send a SIP message
    sip_tcp_lifetime: float = admission.LIFETIME  # without a message (registered: past its binding's expiry)

    @property
    def store_url(self) -> str:
        from sipline.store.database import sqlite_url

        return self.database_url or sqlite_url(self.data_dir)

    @property
    def shared_store(self) -> bool:
        return not self.store_url.lower().startswith("sqlite")

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


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"SIPLINE_{name}", default)


def parse_port(text: str, setting: str = "port") -> int:
    """A listen port; 0 asks the system for a free one (serve prints the port it got)."""
    if not is_digits(text, 5) or not 0 <= int(text) < 65536:
        raise ConfigError(f"{setting}: {text!r} is not a port number (0-65535)")
    return int(text)


def parse_hostport(text: str, setting: str, default_port: int | None = None) -> tuple[str, int]:
    """`host:port`, `[v6]:port`, or a host alone when there is a default port. Without a default (a listen
    address) port 0 asks the system for a free one."""
    head, colon, tail = text.strip().rpartition(":")
    if default_port is None and colon and tail == "0":
        return parse_hostport(head + ":1", setting)[0], 0
    try:
        address = parse_server_address(text.strip())
    except InvalidAddress:
        raise ConfigError(f"{setting}: {text!r} is not host[:port]") from None
    if address.secure or address.transport is not None or text.strip().lower().startswith("sip"):
        raise ConfigError(f"{setting}: {text!r} is not host[:port]")
    port = address.port or default_port
    if port is None:
        raise ConfigError(f"{setting}: {text!r} needs a port")
    return address.host, port


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_rate(text: str, setting: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{setting}: {text!r} is not a positive number")
    return value


def parse_count(text: str, setting: str) -> int:
    """A whole number, 0 allowed (0 turns a limit off)."""
    if not is_digits(text, 18):
        raise ConfigError(f"{setting}: {text!r} is not a whole number")
    return int(text)


def parse_algorithms(text: str, setting: str) -> tuple[str, ...]:
    from sipline.sip.digest import DigestError, algorithm_list

    try:
        return algorithm_list(text)
    except DigestError as error:
        raise ConfigError(f"{setting}: {error}") from None


def parse_rate_limit(text: str, setting: str) -> tuple[float, float] | None:
    """`X/Y` (burst, drain per second) or `off`."""
    if text.strip().lower() == "off":
        return None
    burst, slash, drain = text.partition("/")
    if not slash:
        raise ConfigError(f"{setting}: {text!r} is not X/Y (e.g. 50/2) or off")
    return parse_rate(burst, setting), parse_rate(drain, setting)


def parse_limit(text: str, setting: str) -> float | None:
    """Seconds, or `off`."""
    return None if text.strip().lower() == "off" else parse_rate(text, setting)


def parse_network(text: str, setting: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ConfigError(f"{setting}: {text!r} is not an IP address or network") from None


def parse_positive(text: str, setting: str) -> int:
    if not is_digits(text, 18) or int(text) < 1:
        raise ConfigError(f"{setting}: {text!r} is not a positive whole number")
    return int(text)


def parse_flag(text: str, setting: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{setting}: {text!r} is not a yes/no value")


def parse_database_url(text: str, setting: str) -> str:
    """`sqlite:///FILE` or `postgresql://…` (no secrets in the message)."""
    import sqlalchemy as sa

    try:
        url = sa.engine.make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        raise ConfigError(f"{setting}: not a database URL (sqlite:///FILE or postgresql://…)") from None
    if url.get_backend_name() not in ("sqlite", "postgresql") or url.drivername not in (
            "sqlite", "postgresql", "postgres", "postgresql+psycopg"):
        raise ConfigError(f"{setting}: {url.drivername!r} is not sqlite or postgresql")
    if url.get_backend_name() == "sqlite" and not url.database:
        raise ConfigError(f"{setting}: a SQLite URL names a file: sqlite:///path/to/sipline.db")
    return text


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
    if settings.redis_url is not None and not settings.redis_url.lower().startswith(("redis://", "rediss://",
                                                                                      "unix://")):
        raise ConfigError(f"redis-url: {settings.redis_url!r} is not a redis:// URL")
    if settings.log_level not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"log-level: {settings.log_level!r} is not debug, info, warning or error")
    return settings
