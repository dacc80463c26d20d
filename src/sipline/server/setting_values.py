"""How the text of a setting (a flag, a SIPLINE_* variable) is read: each parser takes the text and
the setting's name for its message, and returns the value or raises ConfigError."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from sipline.sip.address import InvalidAddress, parse_server_address
from sipline.sip.grammar import is_digits
from sipline.sip.reachability import is_ip_literal


class ConfigError(ValueError):
    """A setting has a value sipline cannot use; the message names the setting."""


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
    from sipline.store.urls import check_url

    try:
        return check_url(text)
    except ValueError as error:
        raise ConfigError(f"{setting}: {error}") from None


def parse_log_format(text: str, setting: str) -> str | None:
    """`text` or `json`; empty is unset (chosen by where stderr goes, server/logs.py)."""
    value = text.strip().lower()
    if value not in ("", "text", "json"):
        raise ConfigError(f"{setting}: {text!r} is not text or json")
    return value or None


def parse_text(text: str, setting: str) -> str:
    return text


def parse_lower(text: str, setting: str) -> str:
    return text.lower()


def parse_path(text: str, setting: str) -> Path:
    return Path(text)


def parse_optional_text(text: str, setting: str) -> str | None:
    """The text; empty (e.g. `SIPLINE_REDIS_URL=`) is unset."""
    return text or None


def parse_optional_path(text: str, setting: str) -> Path | None:
    return Path(text) if text else None


def parse_tls(text: str, setting: str) -> bool:
    """`self-signed`; empty is no TLS of our own making."""
    if text not in ("", "self-signed"):
        raise ConfigError(f"{setting}: {text!r} is not self-signed")
    return text == "self-signed"


def parse_listen(text: str, setting: str) -> tuple[str, int]:
    """An IP address and port to bind."""
    host, port = parse_hostport(text, setting)
    if not is_ip_literal(host):
        raise ConfigError(f"{setting}: {host!r} is not an IP address")
    return host, port


def parse_sip_address(text: str, setting: str) -> tuple[str, int] | None:
    """host[:port], 5060 when none; empty is unset."""
    return parse_hostport(text, setting, 5060) if text else None


def parse_dns_server(text: str, setting: str) -> tuple[str, int]:
    return parse_hostport(text, setting, 53)


def parse_optional_hostport(text: str, setting: str) -> tuple[str, int] | None:
    return parse_hostport(text, setting) if text else None
