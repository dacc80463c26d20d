"""The portal's webhooks and applications (docs/behaviour.md#dashboard-pages), as `sipline webhook
list|create|revoke` and `sipline app list` show and change them, through the same account services:
a webhook's code is shown once, on the page that created it, and never again."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from sipline.accounts.dashboard import Visitor
from sipline.accounts.portals import AccountError
from sipline.sip.grammar import is_digits
from sipline.web.site import Need, Site, field

DEFAULT_SCOPES = "telephony"


async def webhooks(site: Site, request: Request) -> Response:
    visitor = await site.allowed(request, Need.ADMIN)
    return await _webhooks_page(site, request, visitor)


async def create_webhook(site: Site, request: Request) -> Response:
    """A new webhook for a user of the portal; its URL, on this request's address, is on the answer only."""
    visitor, form = await site.change(request, Need.ADMIN)
    user, scopes = field(form, "user") or "", field(form, "scopes") or ""
    if not is_digits(user, 18):
        error = f"user: {user!r} is not a user ID."
        return await _webhooks_page(site, request, visitor, 400, user=user, scopes=scopes, error=error)
    try:
        hook = await site.services.accounts.create_webhook(
            portal=visitor.portal.domain, user_number=int(user), scopes=scopes
        )
    except AccountError as refused:
        return await _webhooks_page(site, request, visitor, 400, user=user, scopes=scopes, error=str(refused))
    url = str(request.base_url).rstrip("/") + hook.path
    return await _webhooks_page(site, request, visitor, created=url, created_id=hook.webhook_id)


async def revoke_webhook(site: Site, request: Request) -> Response:
    visitor, form = await site.change(request, Need.ADMIN)
    webhook_id = field(form, "id") or ""
    if not is_digits(webhook_id, 18):
        return await _webhooks_page(site, request, visitor, 400, error=f"{webhook_id!r} is not a webhook ID.")
    try:
        await site.services.accounts.revoke_webhook(portal=visitor.portal.domain, webhook_id=int(webhook_id))
    except AccountError as refused:
        return await _webhooks_page(site, request, visitor, 400, error=str(refused))
    return await _webhooks_page(site, request, visitor, notice=f"Webhook {webhook_id} is revoked.")


async def _webhooks_page(
    site: Site,
    request: Request,
    visitor: Visitor,
    status: int = 200,
    *,
    user: str = "",
    scopes: str = DEFAULT_SCOPES,
    **context: object,
) -> Response:
    """The webhooks, the form to create one (filled with what was sent, after an error) and `context`."""
    hooks = await site.services.accounts.webhooks(portal=visitor.portal.domain)
    return site.page(request, "webhooks.html", visitor, status=status, hooks=hooks, user=user, scopes=scopes, **context)


async def apps(site: Site, request: Request) -> Response:
    visitor = await site.allowed(request, Need.ADMIN)
    installed = await site.services.oauth.apps(portal=visitor.portal.domain)
    return site.page(request, "apps.html", visitor, apps=installed)


ROUTES = [
    ("/ui/webhooks", webhooks, ("GET",)),
    ("/ui/webhooks", create_webhook, ("POST",)),
    ("/ui/webhooks/revoke", revoke_webhook, ("POST",)),
    ("/ui/apps", apps, ("GET",)),
]
