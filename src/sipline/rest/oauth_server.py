"""The OAuth server (docs/behaviour.md#oauth-server): `/oauth/token/`, `/oauth/authorize/`, and OAuth-side `app.info`.

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
from sipline.rest.errors import InvalidRequest, InvalidToken, error_response
from sipline.sip.grammar import is_digits
from sipline.store.records import Portal
from sipline.telephony import php_values
from sipline.telephony.services import Services

OAUTH_PATHS = ("/oauth/token", "/oauth/authorize")


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


def oauth_path(path: str) -> str | None:
    """`/oauth/token/`, with or without the trailing slash or a doubled leading one, as its canonical form."""
    canonical = "/" + "/".join(segment for segment in path.split("/") if segment)
    return canonical if canonical in OAUTH_PATHS else None


class OAuthServer:
    def __init__(self, services: Services, urls: Urls) -> None:
        self.services = services
        self.urls = urls

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
        """A one-time code (30 s) for the app at the portal the Host names, for its user 1 or `user_id`;
        redirected to the app's handler when it has one, with `code, state, domain, member_id, scope,
        server_domain` (docs/behaviour.md#oauth-server), else given as JSON."""
        query = request.query_params
        portal = await self.services.accounts.portal_for_host(request.headers.get("host"))
        user = query.get("user_id", "1")
        if not is_digits(user, 18):
            raise InvalidRequest("user_id must be a user ID")
        code, app = await self.services.oauth.authorize(query.get("client_id", ""), portal, int(user))
        answer = {
            "code": code,
            "state": query.get("state", ""),
            "domain": portal.domain,
            "member_id": portal.member_id,
            "scope": ",".join(sorted(app.scopes)),
            "server_domain": urlsplit(self.urls.oauth_base).netloc,
        }
        if app.handler_url:
            joiner = "&" if urlsplit(app.handler_url).query else "?"
            return RedirectResponse(app.handler_url + joiner + urlencode(answer), status_code=302)
        return json_response(answer)

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
