"""The events page (docs/behaviour.md#dashboard-pages): the handlers bound on the portal with their queues
and failures, as `sipline event list --portal` shows them (events/queues.py serves both), and "retry
now" for a failing handler, as `sipline event retry --handler` does."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sipline.accounts.dashboard import Visitor
from sipline.events.queues import handler_shown, owner_shown
from sipline.sip.grammar import is_digits
from sipline.web.site import Need, Site, field


async def events(site: Site, request: Request) -> Response:
    visitor = await site.allowed(request, Need.ADMIN)
    return await _page(site, request, visitor)


async def retry(site: Site, request: Request) -> Response:
    """Makes one handler's queued deliveries due now; a handler of another portal is none of this one's."""
    visitor, form = await site.change(request, Need.ADMIN)
    handler = field(form, "handler") or ""
    if not is_digits(handler, 9):
        return await _page(site, request, visitor, status=400, error=f"{handler!r} is not a handler ID.")
    due = await site.services.events.queues.retry(portal=visitor.portal.domain, handler_id=int(handler))
    return await _page(site, request, visitor, notice=f"Handler {handler}: {due} deliveries due now.")


async def _page(site: Site, request: Request, visitor: Visitor, status: int = 200, **context: str) -> Response:
    handlers = await site.services.events.queues.states(portal=visitor.portal.domain)
    apps = {app.client_id: app.name for app in await site.services.oauth.apps(portal=visitor.portal.domain)}
    return site.page(
        request,
        "events.html",
        visitor,
        status=status,
        handlers=handlers,
        apps=apps,
        owner_shown=owner_shown,
        handler_shown=handler_shown,
        queued=sum(handler.queued for handler in handlers),
        failing=sum(handler.failing_since is not None for handler in handlers),
        **context,
    )


ROUTES = [("/ui/events", events, ("GET",)), ("/ui/events/retry", retry, ("POST",))]
