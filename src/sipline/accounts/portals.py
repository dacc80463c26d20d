"""Portals, their users and webhooks: creating them, and finding who a request belongs to.

One sipline hosts many portals. A request's portal is the one whose domain is the
HTTP Host; a Host no portal has goes to the default portal (the first one made), so
the embedded default serves any host. A webhook or token only works at its own
portal's address.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sipline.store.crypto import code_hash, new_code
from sipline.store.database import Database
from sipline.store.records import Portal, User, WebhookGrant, WebhookInfo
from sipline.store.repository import Repository
from sipline.store.topics import PORTAL, PORTAL_HOST, WEBHOOK

# docs/behaviour.md#rest-scopes: Bitrix24's scope names [D]; sipline serves methods of `telephony` only,
# the others are kept on a webhook or app (and shown by `scope`, `app.info`) but open nothing here
# fmt: off
KNOWN_SCOPES = frozenset({
    "ai_admin", "biconnector", "bizproc", "calendar", "call", "cashbox", "catalog", "configuration.import",
    "contact_center", "crm", "crm.documentgenerator", "delivery", "department", "disk", "documentgenerator",
    "entity", "faceid", "forum", "iblock", "im", "imbot", "imconnector", "imopenlines", "intranet", "landing",
    "landing_cloud", "lists", "log", "mailservice", "messageservice", "mobile", "pay_system", "placement", "pull",
    "rating", "rpa", "sale", "salescenter", "smile", "sonet_group", "task", "tasks", "tasks_extended",
    "tasksmobile", "telephony", "timeman", "user", "user.userfield", "user_basic", "user_brief", "userconsent",
    "userfieldconfig",
})
# fmt: on
MAX_LINE_LIMIT = 2**31 - 1  # the column is a 32-bit INTEGER on PostgreSQL
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?::\d{1,5})?\Z")


class AccountError(ValueError):
    """An account request that cannot be carried out; the subclasses say why.

    AccountError
    ├── BadAccountValue   a value given is malformed or unknown (a domain, a scope, a limit)
    ├── AccountNotFound   no such portal, user, webhook or app (or no portal yet)
    └── AccountExists     a portal with that domain exists already
    """


class BadAccountValue(AccountError):
    pass


class AccountNotFound(AccountError):
    pass


class AccountExists(AccountError):
    pass


@dataclass(frozen=True)
class NewWebhook:
    portal: Portal
    user_number: int
    code: str
    webhook_id: int = 0

    @property
    def path(self) -> str:
        """The webhook's base path: /rest/<user>/<code>/"""
        return f"/rest/{self.user_number}/{self.code}/"


def parse_scopes(text: str) -> str:
    """A comma-separated scope list, normalised.

    Raises: BadAccountValue for an empty list or a scope Bitrix24 does not have.
    """
    scopes = [scope.strip().lower() for scope in text.split(",") if scope.strip()]
    if not scopes:
        raise BadAccountValue(f"scope: {text!r} names no scope: expected names like telephony,user")
    unknown = [scope for scope in scopes if scope not in KNOWN_SCOPES]
    if unknown:
        raise BadAccountValue(
            f"scope: unknown {', '.join(map(repr, unknown))}; known scopes: {', '.join(sorted(KNOWN_SCOPES))}"
        )
    return ",".join(dict.fromkeys(scopes))


def check_line_limit(max_lines: int) -> None:
    """Raises: BadAccountValue unless 1 ≤ max_lines ≤ MAX_LINE_LIMIT."""
    if not 1 <= max_lines <= MAX_LINE_LIMIT:
        raise BadAccountValue(f"max-lines: {max_lines} is not between 1 and {MAX_LINE_LIMIT}")


def new_member_id() -> str:
    """A portal's member_id: 32 lower-case hex characters, as Bitrix24 gives its portals."""
    return secrets.token_hex(16)


def parse_domain(text: str) -> str:
    """A portal domain: a host name or IPv4 address, optionally with a port; lower-cased.

    Raises: BadAccountValue.
    """
    domain = text.strip().lower()
    if not _DOMAIN.match(domain) or len(domain) > 255:
        raise BadAccountValue(f"invalid portal domain {text!r}: expected a host name like portal.example.com")
    return domain


class Accounts:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    async def bootstrap(
        self, *, domain: str, max_cloud_lines: int, max_lines: int | None = None, kept: bool = True
    ) -> NewWebhook | None:
        """On first start: the default portal, an admin, and a telephony webhook, whose code is kept
        sealed; on every start that webhook while it is live, to be printed (docs/behaviour.md#dashboard),
        unless not `kept` (a `sip` worker prints none)."""

        def work(repo: Repository) -> NewWebhook | None:
            repo.serialise("portals")  # several processes may start at once on one PostgreSQL
            portal = repo.default_portal()
            if portal is None:
                created = self._new_portal(repo, domain, "", max_cloud_lines, max_lines)
                repo.keep_webhook_code(created.webhook_id, created.code)
                return created
            webhook = repo.kept_webhook(portal.id) if kept else None
            return NewWebhook(portal, *webhook) if webhook is not None else None

        return await self.db.write(work)

    async def create_portal(
        self,
        *,
        domain: str,
        title: str,
        max_cloud_lines: int,
        incoming_server: str | None = None,
        max_lines: int | None = None,
    ) -> NewWebhook:
        """A portal with an admin (user 1) and a telephony webhook for it.

        Raises: AccountError for a malformed or taken domain, or a line limit out of range.
        """
        domain = parse_domain(domain)
        if max_lines is not None:
            check_line_limit(max_lines)

        def work(repo: Repository) -> NewWebhook:
            repo.serialise("portals")
            if repo.portal_by_domain(domain) is not None:
                raise AccountExists(f"a portal {domain} exists already")
            created = self._new_portal(repo, domain, title, max_cloud_lines, max_lines)
            if incoming_server:
                repo.update_portal(created.portal.id, {"incoming_server": incoming_server})
            return created

        return await self.db.write(work)

    async def set_rate_limit(self, portal: str | None, rate: tuple[float, float] | None) -> None:
        """The portal's own request-rate limit (X, Y); None turns it off for the portal.

        Raises: AccountError for an unknown portal.
        """
        burst, drain = rate if rate is not None else (0.0, 0.0)
        await self.db.write(
            lambda repo: repo.update_portal(named_portal(repo, portal).id, {"rate_burst": burst, "rate_drain": drain})
        )

    async def set_digest_algorithms(self, portal: str | None, algorithms: tuple[str, ...] | None) -> None:
        """docs/behaviour.md#office-digest: the algorithms the portal's office lines are challenged with, in order; None: the service's.

        Raises: AccountError for an unknown portal.
        """
        value = ",".join(algorithms) if algorithms else None
        await self.db.write(
            lambda repo: repo.update_portal(named_portal(repo, portal).id, {"digest_algorithms": value})
        )

    async def set_line_limit(self, portal: str | None, max_lines: int) -> None:
        """The portal's limit of lines, office and cloud; lines it has beyond a lower one stay.

        Raises: AccountError for an unknown portal or a limit out of range.
        """
        check_line_limit(max_lines)
        await self.db.write(lambda repo: repo.update_portal(named_portal(repo, portal).id, {"max_lines": max_lines}))

    async def portal_for_host(self, host: str | None) -> Portal:
        """The portal a request to `host` (the Host header) is for. Raises: AccountError before bootstrap."""
        host = (host or "").strip().lower()
        return await self.db.cached((PORTAL_HOST, host), lambda repo: _portal_for_host(repo, host))

    async def named_portal(self, domain: str | None) -> Portal:
        """The portal with this domain, or the default one for None. Raises: AccountError."""
        return await self.db.read(lambda repo: named_portal(repo, domain))

    async def portals(self) -> list[Portal]:
        return await self.db.read(lambda repo: repo.portals())

    async def portals_with_lines(self) -> list[tuple[Portal, int, int]]:
        """Every portal with its cloud lines and all its lines, of every app (the operator's view of
        the limits, docs/behaviour.md#dashboard-pages); one count pair per portal, read together."""

        def work(repo: Repository) -> list[tuple[Portal, int, int]]:
            return [(p, repo.count_cloud_lines(p.id), repo.count_lines(p.id)) for p in repo.portals()]

        return await self.db.read(work)

    async def portal(self, portal_id: int) -> Portal:
        return await self.db.cached((PORTAL, portal_id), lambda repo: repo.portal(portal_id))

    async def create_webhook(self, *, portal: str | None, user_number: int, scopes: str) -> NewWebhook:
        """A new webhook acting as a user of the portal (the default one when None).

        Raises: AccountError when there is no such portal or user, or the scopes are malformed.
        """
        scopes = parse_scopes(scopes)
        return await self.db.write(
            lambda repo: self._add_webhook(repo, named_portal(repo, portal), user_number, scopes)
        )

    async def webhooks(self, *, portal: str | None) -> list[WebhookInfo]:
        return await self.db.read(lambda repo: repo.webhooks(named_portal(repo, portal).id))

    async def revoke_webhook(self, *, portal: str | None, webhook_id: int) -> None:
        """Raises: AccountError when the portal has no such webhook."""

        def work(repo: Repository) -> None:
            if not repo.revoke_webhook(named_portal(repo, portal).id, webhook_id):
                raise AccountNotFound(f"no webhook {webhook_id} on this portal")

        await self.db.write(work)

    async def create_user(self, *, portal: str | None, name: str, admin: bool, numbers_modify: bool) -> int:
        """A user of the portal (the default one when None); returns its user ID.

        Raises: AccountError when there is no such portal.
        """

        def work(repo: Repository) -> int:
            return repo.insert_user(
                portal_id=named_portal(repo, portal).id, name=name, is_admin=admin, can_modify_numbers=numbers_modify
            )[1]

        return await self.db.write(work)

    async def set_user_active(self, *, portal: str | None, user_number: int, active: bool) -> None:
        """Raises: AccountError when the portal has no such user."""

        def work(repo: Repository) -> None:
            if not repo.set_user_active(named_portal(repo, portal).id, user_number, active):
                raise AccountNotFound(f"no user {user_number} on this portal")

        await self.db.write(work)

    async def user(self, portal_id: int, number: int) -> User | None:
        return await self.db.read(lambda repo: repo.user(portal_id, number))

    async def webhook_grant(self, code: str) -> WebhookGrant | None:
        digest = code_hash(code)
        return await self.db.cached((WEBHOOK, digest), lambda repo: repo.webhook_grant(digest))

    def _new_portal(
        self, repo: Repository, domain: str, title: str, max_cloud_lines: int, max_lines: int | None
    ) -> NewWebhook:
        portal = repo.insert_portal(
            domain=domain,
            title=title,
            member_id=new_member_id(),
            max_cloud_lines=max_cloud_lines,
            now=self.clock(),
            max_lines=max_lines,
        )
        repo.insert_user(portal_id=portal.id, name="Admin", is_admin=True, can_modify_numbers=True)
        return self._add_webhook(repo, portal, 1, "telephony")

    def _add_webhook(self, repo: Repository, portal: Portal, user_number: int, scopes: str) -> NewWebhook:
        user_row = repo.user_row_id(portal.id, user_number)
        if user_row is None:
            raise AccountNotFound(f"portal {portal.domain} has no user {user_number}")
        code = new_code()
        webhook_id = repo.insert_webhook(
            portal_id=portal.id, user_row_id=user_row, code_hash=code_hash(code), scopes=scopes, now=self.clock()
        )
        return NewWebhook(portal, user_number, code, webhook_id)


def _portal_for_host(repo: Repository, host: str) -> Portal:
    for candidate in (host, host.rpartition(":")[0] if host.rpartition(":")[2].isdigit() else ""):
        if candidate:
            portal = repo.portal_by_domain(candidate)
            if portal is not None:
                return portal
    return _default(repo)


def named_portal(repo: Repository, domain: str | None) -> Portal:
    """The portal with this domain, or the default one for None. Raises: AccountError."""
    if domain is None:
        return _default(repo)
    portal = repo.portal_by_domain(parse_domain(domain))
    if portal is None:
        raise AccountNotFound(f"no portal {domain}")
    return portal


def _default(repo: Repository) -> Portal:
    portal = repo.default_portal()
    if portal is None:
        raise AccountNotFound("no portal yet: start `sipline serve` once first")
    return portal
