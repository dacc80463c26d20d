"""OAuth 2.0 applications (docs/behaviour.md#rest-oauth-token, docs/behaviour.md#oauth-server, docs/behaviour.md#rest-caller): client credentials, codes, tokens.

A code is issued only to a user who consents (docs/behaviour.md#oauth-consent): an active user of the
app's own portal whom the app allows; `consent` and `authorize` check the same rule (`_consenting`).

An app belongs to one portal; it gets a client_id (shown) and a client secret
(shown once, stored hashed). Authorization codes live CODE_LIFETIME seconds and
serve once; access tokens live `access_lifetime` (1 h), refresh tokens 180 days and
rotate: a refresh spends the refresh token and hands out a new pair, while the
old access token works until its own expiry (docs/behaviour.md#oauth-rotation). Codes and tokens are stored
as SHA-256 hashes.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sipline.accounts.portals import AccountNotFound, named_portal, parse_scopes
from sipline.store.crypto import code_hash
from sipline.store.database import Database
from sipline.store.records import App, Portal, TokenGrant
from sipline.store.repository import Repository
from sipline.store.topics import APP, TOKEN

CODE_LIFETIME = 30.0
ACCESS_LIFETIME = 3600.0
REFRESH_LIFETIME = 180 * 86400.0


class OAuthRefusal(Exception):
    """A grant or code the OAuth server refuses; str(error) is the description shown to the client.
    rest/errors.py maps each kind to its wire code (docs/behaviour.md#oauth-token-errors).

    OAuthRefusal
    ├── MalformedRequest  a parameter missing or of no known kind (grant_type)
    ├── UnknownClient     no such client_id, a wrong secret, or the app not installed (there)
    ├── UserRefused       a user who may not authorize the app: unknown, deactivated, or not among its users
    ├── UnusableGrant     a code or refresh token unknown, used, expired or another app's
    ├── ScopeTooWide      a scope asked for that the app does not have
    └── PortalUnpaid      the app's portal is marked unpaid
    """


class MalformedRequest(OAuthRefusal):
    pass


class UnknownClient(OAuthRefusal):
    def __init__(self) -> None:
        super().__init__("Invalid client credentials")


class UserRefused(OAuthRefusal):
    pass


class UnusableGrant(OAuthRefusal):
    def __init__(self, what: str) -> None:
        super().__init__(f"Invalid {what}")


class ScopeTooWide(OAuthRefusal):
    def __init__(self) -> None:
        super().__init__("The requested scope exceeds what the application has")


class PortalUnpaid(OAuthRefusal):
    def __init__(self) -> None:
        super().__init__("Payment required")


@dataclass(frozen=True)
class NewApp:
    app: App
    client_secret: str  # shown once


@dataclass(frozen=True)
class Tokens:
    app: App
    portal: Portal
    user_number: int
    access_token: str
    refresh_token: str
    expires: int
    expires_in: int


class OAuth:
    def __init__(
        self, db: Database, clock: Callable[[], float] = time.time, *, access_lifetime: float = ACCESS_LIFETIME
    ) -> None:
        self.db = db
        self.clock = clock
        self.access_lifetime = access_lifetime

    async def create_app(
        self, *, portal: str | None, name: str, scopes: str, handler_url: str, allowed_users: list[int] | None = None
    ) -> NewApp:
        """Raises: AccountNotFound for an unknown portal, BadAccountValue for unknown scopes."""
        scopes = parse_scopes(scopes)
        client_id = "local." + secrets.token_hex(8) + "." + secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)

        def work(repo: Repository) -> App:
            owner = named_portal(repo, portal)
            return repo.insert_app(
                portal_id=owner.id,
                client_id=client_id,
                secret_hash=code_hash(secret),
                name=name,
                scopes=scopes,
                handler_url=handler_url,
                allowed_users=",".join(map(str, allowed_users)) if allowed_users else None,
                now=self.clock(),
                secret=secret,
            )

        return NewApp(await self.db.write(work), secret)

    async def set_installed(self, client_id: str, installed: bool) -> None:
        """Install again, or uninstall: an uninstalled app's tokens answer APPLICATION_NOT_FOUND, and
        its event handlers get ONAPPUNINSTALL and go (docs/behaviour.md#event-delivery).

        Raises: AccountNotFound for an unknown client_id.
        """

        def work(repo: Repository) -> None:
            found = repo.app_by_client_id(client_id)
            if found is None or not repo.set_app_active(client_id, installed):
                raise AccountNotFound(f"no app {client_id}")
            if not installed and found[0].active:
                repo.uninstall_app_events(found[0].id, self.clock())

        await self.db.write(work)

    async def discard_app(self, client_id: str) -> None:
        """The app gone, with its codes and tokens (`app create` whose handler did not take the install).

        Raises: AccountNotFound for an unknown client_id.
        """

        def work(repo: Repository) -> None:
            if not repo.delete_app(client_id):
                raise AccountNotFound(f"no app {client_id}")

        await self.db.write(work)

    async def apps(self, *, portal: str | None) -> list[App]:
        return await self.db.read(lambda repo: repo.apps(named_portal(repo, portal).id))

    async def install_tokens(self, client_id: str) -> Tokens:
        """Tokens for the portal's first admin, for the ONAPPINSTALL hand-off."""

        def work(repo: Repository) -> Tokens:
            found = repo.app_by_client_id(client_id)
            if found is None:
                raise AccountNotFound(f"no app {client_id}")
            app = found[0]
            user_row = repo.user_row_id(app.portal_id, 1)
            if user_row is None:
                raise AccountNotFound("the portal has no user 1")
            return self._issue(repo, app, user_row)

        return await self.db.write(work)

    async def event_tokens(self, app_id: int, user_number: int) -> Tokens:
        """Tokens of the app for the user an event handler runs as (docs/behaviour.md#event-payload).

        Raises: AccountNotFound when the user is gone."""

        def work(repo: Repository) -> Tokens:
            app = repo.app_by_row(app_id)
            user_row = repo.user_row_id(app.portal_id, user_number)
            if user_row is None:
                raise AccountNotFound(f"no user {user_number}")
            return self._issue(repo, app, user_row)

        return await self.db.write(work, touches=())

    async def consent(self, client_id: str, portal: Portal, user_number: int) -> App:
        """The app a user of `portal` is asked to authorize (the consent page shows it).

        Raises: UnknownClient, UserRefused (docs/behaviour.md#oauth-consent).
        """
        return await self.db.read(lambda repo: _consenting(repo, client_id, portal, user_number)[0])

    async def authorize(self, client_id: str, portal: Portal, user_number: int) -> tuple[str, App]:
        """A one-time code for the app and the user who consented, at `portal`.

        Raises: UnknownClient, UserRefused (docs/behaviour.md#oauth-consent).
        """
        code = secrets.token_hex(16)

        def work(repo: Repository) -> App:
            app, user_row = _consenting(repo, client_id, portal, user_number)
            repo.insert_code(
                app_id=app.id,
                user_row_id=user_row,
                code_hash=code_hash(code),
                expires_at=self.clock() + CODE_LIFETIME,
            )
            return app

        return code, await self.db.write(work)

    async def grant(self, params: dict[str, str]) -> Tokens:
        """The token endpoint: `authorization_code` and `refresh_token` grants (docs/behaviour.md#oauth-server).

        Raises: OAuthRefusal.
        """
        grant_type = params.get("grant_type", "")
        if grant_type not in ("authorization_code", "refresh_token"):
            raise MalformedRequest("Unsupported grant_type" if grant_type else "grant_type is missing")
        client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
        credential = params.get("code" if grant_type == "authorization_code" else "refresh_token", "")
        if not client_id or not secret or not credential:
            raise MalformedRequest("Missing client_id, client_secret, code or refresh_token")
        wanted = params.get("scope")

        def work(repo: Repository) -> Tokens:
            found = repo.app_by_client_id(client_id)
            if found is None or not hmac.compare_digest(found[1], code_hash(secret)) or not found[0].active:
                raise UnknownClient()
            app = found[0]
            if not repo.portal(app.portal_id).paid:
                raise PortalUnpaid()
            if wanted and not set(filter(None, wanted.split(","))) <= app.scopes:
                raise ScopeTooWide()
            taken = (repo.take_code if grant_type == "authorization_code" else repo.take_refresh)(code_hash(credential))
            now = self.clock()
            if taken is None or taken[0] != app.id or taken[2] <= now:
                raise UnusableGrant("code" if grant_type == "authorization_code" else "refresh token")
            return self._issue(repo, app, taken[1])

        return await self.db.write(work, touches=())

    async def app(self, client_id: str) -> App:
        """An app that holds a live token. Raises: AccountNotFound when there is none."""
        found = await self.db.cached((APP, client_id), lambda repo: repo.app_by_client_id(client_id))
        if found is None:
            raise AccountNotFound(f"no app {client_id}")
        return found[0]

    async def token_grant(self, access_token: str) -> TokenGrant | None:
        digest = code_hash(access_token)
        return await self.db.cached((TOKEN, digest), lambda repo: repo.token_grant(digest))

    def _issue(self, repo: Repository, app: App, user_row: int) -> Tokens:
        now = self.clock()
        access, refresh = secrets.token_hex(35), secrets.token_hex(35)
        expires = int(now + self.access_lifetime)
        repo.insert_token(
            app_id=app.id,
            user_row_id=user_row,
            access_hash=code_hash(access),
            refresh_hash=code_hash(refresh),
            access_expires_at=expires,
            refresh_expires_at=now + REFRESH_LIFETIME,
            now=now,
        )
        return Tokens(
            app=app,
            portal=repo.portal(app.portal_id),
            user_number=repo.user_number(user_row),
            access_token=access,
            refresh_token=refresh,
            expires=expires,
            expires_in=int(self.access_lifetime),
        )


def _consenting(repo: Repository, client_id: str, portal: Portal, user_number: int) -> tuple[App, int]:
    """docs/behaviour.md#oauth-consent: an app installed on `portal`, and the row of a user who may
    authorize it: an active user of that portal, among the app's users when it names them (the rule
    a token's calls are held to, docs/behaviour.md#rest-oauth-token, checked before a code exists).

    Raises: UnknownClient, UserRefused.
    """
    found = repo.app_by_client_id(client_id) if client_id else None
    if found is None or not found[0].active or found[0].portal_id != portal.id:
        raise UnknownClient()
    app = found[0]
    user = repo.user(portal.id, user_number)
    user_row = repo.user_row_id(portal.id, user_number)
    if user is None or user_row is None:
        raise UserRefused(f"No user {user_number} on this portal")
    if not user.active:
        raise UserRefused(f"User {user_number} is deactivated")
    if app.allowed_users is not None and user_number not in app.allowed_users:
        raise UserRefused("The user does not have access to the application.")
    return app, user_row
