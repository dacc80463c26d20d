"""Who is calling (rest-protocol.md §2): a webhook in the URL, else an OAuth token."""

from __future__ import annotations

from sipline.accounts import Accounts
from sipline.rest.errors import InvalidCredentials, NoAuthFound, RestError
from sipline.rest.routes import Route
from sipline.telephony.caller import Caller


class InvalidToken(RestError):
    code, status, description = "invalid_token", 401, "The access token provided is invalid."


async def authenticate(
    route: Route, reserved: dict[str, object], authorization: str | None, accounts: Accounts, now: float
) -> Caller:
    """Raises: InvalidCredentials, NoAuthFound or InvalidToken, as §2.1–2.2 order them."""
    if route.webhook is not None:
        return await _webhook_caller(*route.webhook, accounts, now)
    token = _bearer(authorization) or reserved.get("auth") or reserved.get("access_token")
    if not token:
        raise NoAuthFound()
    # No OAuth application can hold a token yet, so every token is unknown.
    raise InvalidToken()


async def _webhook_caller(user_id: str, code: str, accounts: Accounts, now: float) -> Caller:
    grant = await accounts.webhook_grant(code)
    if (
        grant is None
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
    )


def _bearer(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None
