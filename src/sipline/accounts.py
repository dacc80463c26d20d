"""Portals, their users and webhooks: creating them, and finding who a webhook code belongs to."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from sipline.store.crypto import code_hash, new_code
from sipline.store.database import Database
from sipline.store.records import Portal, WebhookGrant
from sipline.store.repository import Repository

_SCOPE = re.compile(r"[a-z][a-z0-9_]*\Z")


class AccountError(ValueError):
    """An account request that cannot be carried out (unknown user, bad scope name)."""


@dataclass(frozen=True)
class NewWebhook:
    user_number: int
    code: str

    @property
    def path(self) -> str:
        """The webhook's base path: /rest/<user>/<code>/"""
        return f"/rest/{self.user_number}/{self.code}/"


def parse_scopes(text: str) -> str:
    """A comma-separated scope list, normalised.

    Raises: AccountError for an empty list or a malformed scope name.
    """
    scopes = [scope.strip().lower() for scope in text.split(",") if scope.strip()]
    if not scopes or not all(_SCOPE.match(scope) for scope in scopes):
        raise AccountError(f"invalid scope list {text!r}: expected names like telephony,call")
    return ",".join(dict.fromkeys(scopes))


class Accounts:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def bootstrap(self, *, domain: str, max_cloud_lines: int) -> NewWebhook | None:
        """On first start: the default portal, an admin, and a telephony webhook (returned once)."""

        def work(repo: Repository) -> NewWebhook | None:
            if repo.default_portal() is not None:
                return None
            portal = repo.insert_portal(domain=domain, title="", max_cloud_lines=max_cloud_lines, now=self.clock())
            repo.insert_user(portal_id=portal.id, name="Admin", is_admin=True, can_modify_numbers=True)
            return self._add_webhook(repo, portal, 1, "telephony")

        return await self.db.write(work)

    async def create_webhook(self, *, user_number: int, scopes: str) -> NewWebhook:
        """A new webhook on the default portal.

        Raises: AccountError when the portal has no such user or the scopes are malformed.
        """
        scopes = parse_scopes(scopes)
        return await self.db.write(lambda repo: self._add_webhook(repo, _portal(repo), user_number, scopes))

        return await self.db.write(work)

    async def create_user(self, *, name: str, admin: bool, numbers_modify: bool) -> int:
        """A user of the default portal; returns its user ID.

        Raises: AccountError when there is no portal yet.
        """

        def work(repo: Repository) -> int:
            portal_id = _portal(repo).id
            return repo.insert_user(portal_id=portal_id, name=name, is_admin=admin, can_modify_numbers=numbers_modify)[1]

        return await self.db.write(work)

    async def webhook_grant(self, code: str) -> WebhookGrant | None:
        digest = code_hash(code)
        return await self.db.cached(("webhook", digest), lambda repo: repo.webhook_grant(digest))

    def _add_webhook(self, repo: Repository, portal: Portal, user_number: int, scopes: str) -> NewWebhook:
        user_row = repo.user_row_id(portal.id, user_number)
        if user_row is None:
            raise AccountError(f"portal {portal.domain} has no user {user_number}")
        code = new_code()
        repo.insert_webhook(
            portal_id=portal.id, user_row_id=user_row, code_hash=code_hash(code), scopes=scopes, now=self.clock()
        )
        return NewWebhook(user_number, code)


def _portal(repo: Repository) -> Portal:
    portal = repo.default_portal()
    if portal is None:
        raise AccountError("no portal yet: start `sipline serve` once first")
    return portal
