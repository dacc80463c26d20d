"""The operator's portals page (docs/behaviour.md#dashboard-pages): every portal, as `sipline portal list`
names them, with the limits `sipline portal create|limit|digest` set and the lines each holds."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sipline.store.records import Portal
from sipline.web.site import Need, Site

SERVICE_DEFAULT = "service default"


async def portals(site: Site, request: Request) -> Response:
    visitor = await site.allowed(request, Need.OPERATOR)
    rows = await site.services.accounts.portals_with_lines()
    return site.page(request, "portals.html", visitor, rows=rows, rate_limit=rate_limit, digest=digest)


def rate_limit(portal: Portal) -> str:
    """docs/behaviour.md#rest-rate-limit, as `sipline portal limit --rate-limit` takes it: X/Y, `off`
    (stored as a zero burst), or the service's setting when the portal has none of its own."""
    if portal.rate_burst is None or portal.rate_drain is None:
        return SERVICE_DEFAULT
    return "off" if not portal.rate_burst else f"{portal.rate_burst:g}/{portal.rate_drain:g}"


def digest(portal: Portal) -> str:
    """docs/behaviour.md#office-digest: the portal's challenge algorithms, or the service's --registrar-algorithms."""
    return portal.digest_algorithms or SERVICE_DEFAULT


ROUTES = [("/ui/portals", portals, ("GET",))]
