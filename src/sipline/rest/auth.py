"""Who is calling (docs/behaviour.md#rest-auth): a webhook in the URL, else an OAuth access token.

The checks run in the order of docs/behaviour.md#rest-webhook, docs/behaviour.md#rest-oauth-token, first failure wins; a credential only
counts at its own portal's address (the portal the Host header chose).
"""

from __future__ import annotations

from sipline.rest.errors import (
    ApplicationNotFound,
    AuthorizationError,
    ExpiredToken,
    InsufficientScope,
    InvalidCredentials,
    InvalidToken,
    NoAuthFound,
    UserAccessError,
)
from sipline.rest.routes import Route
from sipline.store.records import Portal
from sipline.telephony.caller import Caller
from sipline.telephony.services import Services


async def authenticate(
    route: Route,
    reserved: dict[str, object],
    authorization: str | None,
    services: Services,
    portal: Portal,
    scope: str | None,
    now: float,
) -> Caller:
    """The caller, allowed to call a method of `scope` (None: a global method).

    Raises: InvalidCredentials, NoAuthFound, InvalidToken, ApplicationNotFound, ExpiredToken,
    InsufficientScope, AuthorizationError, UserAccessError.
    """
    if route.webhook is not None:
        caller = await _webhook_caller(*route.webhook, services, portal, now)
        if scope is not None and scope not in caller.scopes:
            raise InsufficientScope()
        return caller
    token = _bearer(authorization) or reserved.get("auth") or reserved.get("access_token")
    if not token or not isinstance(token, str):
        raise NoAuthFound()
    return await _token_caller(token, services, portal, scope, now)


async def _webhook_caller(user_id: str, code: str, services: Services, portal: Portal, now: float) -> Caller:
    grant = await services.accounts.webhook_grant(code)
    if (
        grant is None
        or grant.portal_id != portal.id
        or str(grant.user_number) != user_id
        or not grant.user_active
        or (grant.expires_at is not None and grant.expires_at <= now)
    ):
        raise InvalidCredentials()
    return Caller(
        portal_id=grant.portal_id,
        user_number=grant.user_number,
        app_id="",  # webhooks have no client id: all of a portal's webhooks share their lines
        scopes=grant.scopes,
        can_modify_numbers=grant.can_modify_numbers,
        is_admin=grant.user_is_admin,
        webhook_id=grant.webhook_id,
    )


async def _token_caller(token: str, services: Services, portal: Portal, scope: str | None, now: float) -> Caller:
    grant = await services.oauth.token_grant(token)
    if grant is None or grant.app.portal_id != portal.id:
        raise InvalidToken()
    if not grant.app.active:
        raise ApplicationNotFound()
    if grant.expires_at <= now:
        raise ExpiredToken()
    if scope is not None and scope not in grant.app.scopes:
        raise InsufficientScope.for_token()
    if not grant.user_active:
        raise AuthorizationError()
    if grant.app.allowed_users is not None and grant.user_number not in grant.app.allowed_users:
        raise UserAccessError()
    return Caller(
        portal_id=portal.id,
        user_number=grant.user_number,
        app_id=grant.app.client_id,
        scopes=grant.app.scopes,
        can_modify_numbers=grant.can_modify_numbers,
        is_admin=grant.user_is_admin,
    )


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None
