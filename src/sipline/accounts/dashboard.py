"""Who is looking at the web dashboard (docs/behaviour.md#dashboard): one-time sign-in links, the
sessions they start, and what a signed-in user may see.

A link is printed by `serve` and `sipline dashboard-link`; it works once, for ten minutes, at its
portal's address, and starts a session for its user. Links and sessions are kept as hashes of their
tokens; a session ends when revoked or after `idle` seconds unused. The CSRF token of a session is
derived from the session's token, so nothing more is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sipline.accounts.portals import AccountNotFound, named_portal
from sipline.store.crypto import code_hash
from sipline.store.database import Database
from sipline.store.records import Portal
from sipline.store.repository import Repository

LINK_LIFETIME = 600.0  # docs/behaviour.md#dashboard: a link works within 10 minutes
SESSION_IDLE = 8 * 3600.0  # a session unused this long ends
TOUCH_EVERY = 60.0  # a session's last use is written at most this often


@dataclass(frozen=True)
class Visitor:
    """A signed-in dashboard user and what they may see (docs/behaviour.md#dashboard)."""

    session_id: int
    portal: Portal
    user_number: int
    user_name: str
    is_admin: bool
    can_modify_numbers: bool
    is_operator: bool  # an admin of the first portal: sees every portal
    csrf_token: str

    @property
    def sees_telephony(self) -> bool:
        return self.is_admin or self.can_modify_numbers


@dataclass(frozen=True)
class NewLink:
    portal: Portal
    user_number: int
    token: str

    @property
    def path(self) -> str:
        return f"/ui/login?token={self.token}"


class Dashboard:
    def __init__(self, db: Database, *, idle: float = SESSION_IDLE, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.idle = idle
        self.clock = clock

    async def new_link(self, *, portal: str | None, user_number: int) -> NewLink:
        """A one-time sign-in link for an active user. Raises: AccountError."""

        def work(repo: Repository) -> NewLink:
            found = named_portal(repo, portal)
            user = repo.user(found.id, user_number)
            row_id = repo.user_row_id(found.id, user_number)
            if user is None or row_id is None or not user.active:
                raise AccountNotFound(f"portal {found.domain} has no active user {user_number}")
            token = secrets.token_urlsafe(32)
            repo.insert_dashboard_link(
                portal_id=found.id,
                user_row_id=row_id,
                token_hash=code_hash(token),
                expires_at=self.clock() + LINK_LIFETIME,
            )
            return NewLink(found, user_number, token)

        return await self.db.write(work, touches=())  # dashboard rows: nothing cached reads them

    async def sign_in(self, token: str, portal: Portal) -> str | None:
        """The new session's token for a live link of this portal, used up now; None for any other."""
        now = self.clock()

        def work(repo: Repository) -> str | None:
            repo.forget_dashboard_tokens(now, self.idle)
            user_row = repo.take_dashboard_link(code_hash(token), portal.id, now)
            if user_row is None:
                return None
            session = secrets.token_urlsafe(32)
            repo.insert_dashboard_session(
                portal_id=portal.id, user_row_id=user_row, token_hash=code_hash(session), now=now
            )
            return session

        return await self.db.write(work, touches=()) if token else None

    async def visitor(self, session: str | None, portal: Portal) -> Visitor | None:
        """Who holds this session token at this portal's address; None when nobody (unknown, idle,
        ended, another portal's, or its user deactivated)."""
        if not session:
            return None
        visit = await self.db.read(lambda repo: repo.dashboard_visit(code_hash(session)))
        now = self.clock()
        if visit is None or visit.portal_id != portal.id or not visit.user_active or visit.seen_at <= now - self.idle:
            return None
        if now - visit.seen_at >= TOUCH_EVERY:
            await self.db.write(lambda repo: repo.touch_dashboard_session(visit.session_id, now), touches=())
        first = await self.db.read(lambda repo: repo.default_portal())
        return Visitor(
            session_id=visit.session_id,
            portal=portal,
            user_number=visit.user_number,
            user_name=visit.user_name,
            is_admin=visit.is_admin,
            can_modify_numbers=visit.can_modify_numbers,
            is_operator=visit.is_admin and first is not None and first.id == portal.id,
            csrf_token=csrf_token(session),
        )

    async def sign_out(self, visitor: Visitor) -> None:
        await self.db.write(lambda repo: repo.end_dashboard_sessions(session_id=visitor.session_id), touches=())

    async def revoke_all(self, *, portal: str | None, every_portal: bool = False) -> int:
        """Ends every session and unused link of a portal (or of all); how many sessions ended."""

        def work(repo: Repository) -> int:
            portal_id = None if every_portal else named_portal(repo, portal).id
            return repo.end_dashboard_sessions(portal_id=portal_id)

        return await self.db.write(work, touches=())


def csrf_token(session: str) -> str:
    return hashlib.sha256(b"sipline csrf\0" + session.encode()).hexdigest()


def csrf_matches(visitor: Visitor, given: str | None) -> bool:
    """Compared as bytes: compare_digest refuses a str with a character outside ASCII (a TypeError, a 500)."""
    if not given:
        return False
    return hmac.compare_digest(visitor.csrf_token.encode(), given.encode("utf-8", "replace"))
