"""The dashboard's routes (docs/behaviour.md#dashboard): sign-in by link, sign-out, the static files,
and each page, every one of them answered as HTML, a refusal included."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.staticfiles import StaticFiles

from sipline.rest.oauth_server import Urls
from sipline.store.database import StoreUnavailable
from sipline.telephony.errors import LineNotFound
from sipline.telephony.services import Services
from sipline.web import accounts_pages, events_pages, line_pages, lines_pages, portals_page, providers_page
from sipline.web.consent import Consent
from sipline.web.site import COOKIE, HERE, Need, Refused, Site

Handler = Callable[[Site, Request], Awaitable[Response]]
PAGES = (lines_pages, line_pages, providers_page, events_pages, accounts_pages, portals_page)  # each has ROUTES


def dashboard_routes(services: Services, urls: Urls, *, secure_cookie: bool) -> list[BaseRoute]:
    """`urls`: where this process is reached, for the OAuth consent page's answers."""
    site = Site(services, secure_cookie=secure_cookie)

    def route(path: str, handler: Handler, methods: tuple[str, ...] = ("GET",)) -> Route:
        async def endpoint(request: Request) -> Response:
            return await answered(site, request, handler)

        return Route(path, endpoint, methods=list(methods))

    pages: list[BaseRoute] = [
        Route("/ui", lambda _: RedirectResponse("/ui/", status_code=308)),
        Mount("/ui/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        route("/ui/login", sign_in),
        route("/ui/logout", sign_out, ("POST",)),
        *(route(path, handler, methods) for module in PAGES for path, handler, methods in module.ROUTES),
        *(route(path, handler, methods) for path, handler, methods in Consent(urls).routes),
    ]

    async def leftover(site: Site, request: Request) -> Response:
        """HTML, not REST's JSON 404; a page asked with a method it does not take: 405."""
        if any(page.matches(request.scope)[0] is not Match.NONE for page in pages):
            return site.message(request, None, "Not allowed", "This page does not take that method.", 405)
        return site.message(request, None, "Not found", "The dashboard has no such page.", 404)

    return [*pages, route("/ui/{anything:path}", leftover, ("GET", "HEAD", "POST"))]


async def answered(site: Site, request: Request, handler: Handler) -> Response:
    """The page, or the page that says why not; never a bare 500."""
    try:
        return await handler(site, request)
    except Refused as refused:
        return refused.response
    except LineNotFound:
        return site.message(request, None, "Not found", "There is no such line.", 404)
    except StoreUnavailable:
        return site.message(request, None, "Unavailable", "The store is not answering; try again in a moment.", 503)


async def sign_in(site: Site, request: Request) -> Response:
    """A link's token for a session cookie; a used, expired or unknown link gets a page that says so."""
    portal = await site.services.accounts.portal_for_host(request.headers.get("host"))
    session = await site.services.dashboard.sign_in(request.query_params.get("token", ""), portal)
    if session is None:
        return site.message(
            request,
            None,
            "This link does not work",
            "A sign-in link works once, within 10 minutes. Get a new one with `sipline dashboard-link`.",
            403,
        )
    response = RedirectResponse("/ui/", status_code=303)
    response.set_cookie(COOKIE, session, httponly=True, secure=site.secure_cookie, samesite="strict", path="/ui")
    return response


async def sign_out(site: Site, request: Request) -> Response:
    visitor, _ = await site.change(request, Need.SIGNED_IN)
    await site.services.dashboard.sign_out(visitor)
    response = site.message(request, None, "Signed out", "You are signed out.", 200)
    response.delete_cookie(COOKIE, path="/ui", secure=site.secure_cookie, httponly=True, samesite="strict")
    return response
