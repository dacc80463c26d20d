"""Where a `serve` process is reached: the URLs it prints at start (`webhook:`, `dashboard:`,
`listening:`, `sip:`) and leaves in the data dir for the operator commands, and its TLS files."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit

from sipline.accounts.portals import AccountError
from sipline.rest.oauth_server import Urls
from sipline.server.settings import Settings
from sipline.server.sip_side import SipService
from sipline.server.tls import ensure_self_signed
from sipline.telephony.services import Services

log = logging.getLogger("sipline")
BASE_URL_FILE = "base_url"  # where `serve` leaves its URL for `sipline webhook create`
OAUTH_URL_FILE = "oauth_url"  # and the OAuth server's, for `sipline app create`


async def print_dashboard_link(services: Services, settings: Settings) -> None:
    """A sign-in link for the first portal's admin (user 1), while that user is active."""
    try:
        link = await services.dashboard.new_link(portal=None, user_number=1)
    except AccountError as error:
        log.warning("no dashboard link printed: %s; make one with `sipline dashboard-link --user ID`", error)
        return
    print(f"dashboard: {settings.base_url}{link.path}", flush=True)


def print_listening(settings: Settings, urls: Urls, sip: SipService | None) -> None:
    """What this process listens on, with the ports it got (`--port 0`, `--sip-listen 127.0.0.1:0`)."""
    lines = [f"listening: {settings.base_url}"]
    if settings.oauth_listen is not None and settings.role != "sip":
        lines.append(f"oauth: {urls.oauth_base}")
    if sip is not None:
        lines += [f"sip: {host}:{port}" for host, port in sip.transport.listen]
        lines += [f"sip-tls: {host}:{port}" for host, port in sip.transport.tls_listen]
    print("\n".join(lines), flush=True)


def urls_of(settings: Settings) -> Urls:
    scheme = "https" if settings.tls else "http"
    oauth_base = settings.base_url
    if settings.oauth_listen is not None:
        host, port = settings.oauth_listen
        oauth_base = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
    return Urls(scheme=scheme, port=settings.port, oauth_base=oauth_base)


def tls_files(settings: Settings) -> tuple[str | None, str | None]:
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


def urls_in(data_dir: Path, settings: Settings) -> Urls:
    """The URLs the last `serve` of this data dir listened on (for operator commands)."""
    base = urlsplit(base_url_of(data_dir, settings.base_url))
    oauth = data_dir / OAUTH_URL_FILE
    return Urls(
        scheme=base.scheme,
        port=base.port or (443 if base.scheme == "https" else 80),
        oauth_base=oauth.read_text().strip() if oauth.exists() else base.geturl(),
    )
