"""The OAuth server (docs/behaviour.md#oauth-server): `/oauth/token/`, `/oauth/authorize/`, and OAuth-side `app.info`.

`/oauth/authorize/` sends the browser to the dashboard's consent page (web/consent.py), where a
signed-in user allows or denies; what an allowed code is answered with (`code_answer`) is shaped here.

It answers on the main listener and, with `--oauth-listen`, on a base URL of its
own, where `/rest/app.info` is the OAuth server's (token introspection) rather than
the portal's method. Token responses carry every field of docs/behaviour.md#oauth-server: clients require
different subsets of them. Every refusal is the REST error envelope (`wire_error`, `error_response`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from sipline.accounts.oauth import Tokens
from sipline.rest.endpoint import read_params, wire_error
from sipline.rest.envelope import json_response, local_iso, success_body, time_block
from sipline.rest.errors import InvalidToken, error_response
from sipline.store.records import App, Portal
from sipline.telephony import php_values
from sipline.telephony.services import Services

OAUTH_PATHS = ("/oauth/token", "/oauth/authorize")
CONSENT_PATH = "/ui/oauth/authorize"  # under /ui, the path of the dashboard's session cookie


@dataclass(frozen=True)
class Urls:
    """Where clients reach us: the portals' REST base and the OAuth server's."""

    scheme: str  # http or https
    port: int  # the main listener's
    oauth_base: str  # e.g. https://127.0.0.1:8443 (no trailing slash)

    def portal_base(self, portal: Portal) -> str:
        if ":" in portal.domain or self.port == (443 if self.scheme == "https" else 80):
            return f"{self.scheme}://{portal.domain}"
        return f"{self.scheme}://{portal.domain}:{self.port}"

    def token_fields(self, tokens: Tokens) -> dict[str, object]:
        """The docs/behaviour.md#oauth-server success body (and the `auth[...]` of the install hand-off)."""
        return {
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires": tokens.expires,
            "expires_in": tokens.expires_in,
            "scope": ",".join(sorted(tokens.app.scopes)),
            "domain": urlsplit(self.oauth_base).netloc,
            "server_endpoint": f"{self.oauth_base}/rest/",
            "client_endpoint": f"{self.portal_base(tokens.portal)}/rest/",
            "member_id": tokens.portal.member_id,
            "status": tokens.app.status,
            "user_id": tokens.user_number,
        }

    def code_fields(self, code: str, app: App, portal: Portal, state: str) -> dict[str, str]:
        """What an issued code is answered with (docs/behaviour.md#oauth-server): the handler's query,
        or the JSON body when the app has no handler."""
        return {
            "code": code,
            "state": state,
            "domain": portal.domain,
            "member_id": portal.member_id,
            "scope": ",".join(sorted(app.scopes)),
            "server_domain": urlsplit(self.oauth_base).netloc,
        }


def to_handler(app: App, fields: dict[str, str]) -> Response:
    """A redirect to the app's handler with `fields` added to its query."""
    joiner = "&" if urlsplit(app.handler_url).query else "?"
    return RedirectResponse(app.handler_url + joiner + urlencode(fields), status_code=302)


def code_answer(app: App, fields: dict[str, str]) -> Response:
    """docs/behaviour.md#oauth-server: the code to the app's handler, else as JSON."""
    return to_handler(app, fields) if app.handler_url else json_response(fields)


def oauth_path(path: str) -> str | None:
    """`/oauth/token/`, with or without the trailing slash or a doubled leading one, as its canonical form."""
    canonical = "/" + "/".join(segment for segment in path.split("/") if segment)
    return canonical if canonical in OAUTH_PATHS else None


class OAuthServer:
    def __init__(self, services: Services, urls: Urls, *, dashboard_here: bool = True) -> None:
        """`dashboard_here`: this listener serves the dashboard too (not `--oauth-listen`'s own)."""
        self.services = services
        self.urls = urls
        self.dashboard_here = dashboard_here

    async def __call__(self, request: Request, path: str) -> Response:
        return await answered(request, self.token if path == "/oauth/token" else self.authorize)

    async def app_info(self, request: Request) -> Response:
        return await answered(request, self.introspect)

    async def token(self, request: Request) -> Response:
        """GET query or form POST; unknown parameters are ignored."""
        params, reserved = await read_params(request)
        values = {**params.values, **reserved}
        flat = {name: php_values.strval(value) for name, value in values.items() if php_values.is_scalar(value)}
        tokens = await self.services.oauth.grant(flat)
        return json_response(self.urls.token_fields(tokens))

    async def authorize(self, request: Request) -> Response:
        """docs/behaviour.md#oauth-consent: 303 to the consent page with the same query. On the OAuth
        server's own listener, to the page at the address of the portal the Host names."""
        target = CONSENT_PATH
        if not self.dashboard_here:
            portal = await self.services.accounts.portal_for_host(request.headers.get("host"))
            target = self.urls.portal_base(portal) + CONSENT_PATH
        query = request.url.query
        return RedirectResponse(target + ("?" + query if query else ""), status_code=303)

    async def introspect(self, request: Request) -> Response:
        """OAuth-side `app.info` (b24pysdk's placement check): what a live access token is."""
        start = time.time()
        _, reserved = await read_params(request)
        token = reserved.get("auth") or reserved.get("access_token")
        grant = await self.services.oauth.token_grant(token) if isinstance(token, str) and token else None
        if grant is None:
            raise InvalidToken()
        app = grant.app
        portal = await self.services.accounts.portal(app.portal_id)
        base = self.urls.portal_base(portal)
        result = {
            "client_id": app.client_id,
            "scope": ",".join(sorted(app.scopes)),
            "expires": local_iso(grant.expires_at),
            "user_id": grant.user_number,
            "install": {
                "installed": app.active,
                "version": app.version,
                "status": app.status,
                "scope": ",".join(sorted(app.scopes)),
                "domain": portal.domain,
                "uri": base,
                "client_endpoint": f"{base}/rest/",
                "member_id": portal.member_id,
                "member_type": "PORTAL",
            },
        }
        finish = time.time()
        return json_response(success_body(result, time_block(start, finish, finish - start)))


async def answered(request: Request, handler: Callable[[Request], Awaitable[Response]]) -> Response:
    """`handler`'s response, or the error envelope of what it raised (a body that cannot be read, an
    OAuth refusal, the store down)."""
    try:
        return await handler(request)
    except Exception as error:  # every outcome is an answer of the wire's (docs/behaviour.md#rest-errors)
        return error_response(wire_error(error, request.scope["path"]))
