"""The rules of voximplant.sip.* (docs/behaviour.md#telephony-methods): who may do what to which line.

Each public method checks the caller's right first, then runs its checks and
changes in one store transaction, in the order the spec's step tables give.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Generic, Protocol, TypeVar

from sipline.sip import digest
from sipline.sip.identity import new_call_id, new_contact_token
from sipline.sip.trace import TracedMessage
from sipline.store.database import Database
from sipline.store.records import (
    Binding,
    Cause,
    Line,
    LineState,
    LineType,
    NewLine,
    NewSession,
    Portal,
    Registration,
    StatusChange,
    StatusResult,
)
from sipline.store.repository import Repository
from sipline.store.topics import LINE_WRITE, LINES, PORTAL
from sipline.telephony.caller import Caller
from sipline.telephony.errors import (
    AccessDenied,
    LineNotFound,
    MaxCloudPbx,
    MaxLines,
    RegistrationNotFound,
    TitleExists,
)
from sipline.telephony.fields import LineFields, check_changes, check_new_line
from sipline.telephony.filter import Condition, FilterLimits, parse_filter, parse_sort
from sipline.telephony.line_names import office_login, title_key
from sipline.telephony.providers import Provider, providers_of

PAGE_SIZE = 50  # every paging client assumes pages of 50 (docs/behaviour.md#sip-get)
# Tests of a line against a filter value (≈ 40 ns each) a filter makes before it lets the event loop
# serve others: about 2 ms. A thread would not help: filtering is Python, and a thread holding the
# GIL delays each of the loop's wake-ups by a switch interval (5 ms), which is worse.
FILTER_SLICE_WORK = 50_000


class LineEvents(Protocol):
    """Told after each committed change, so that the SIP side follows (DESIGN: telephony → engines)."""

    def line_added(self, line: Line) -> None: ...

    def line_changed(self, line: Line, reregister: bool) -> None: ...

    def line_deleted(self, line: Line) -> None: ...

    def register_now(self, line: Line) -> None:
        """The operator asked for a REGISTER at once (docs/behaviour.md#dashboard)."""


class NoEvents:
    """For processes without a SIP side (the CLI)."""

    def line_added(self, line: Line) -> None:
        pass

    def line_changed(self, line: Line, reregister: bool) -> None:
        pass

    def line_deleted(self, line: Line) -> None:
        pass

    def register_now(self, line: Line) -> None:
        pass


class LineTraces(Protocol):
    """Where the SIP messages of a line are kept (docs/behaviour.md#line-trace): this process's SIP side, or
    the `sip` workers'."""

    async def messages(self, line_id: int) -> list[TracedMessage]:
        """Oldest first, secrets already replaced. Raises: StoreUnavailable (asked through the store)."""
        ...


class NoTraces:
    """For processes that neither do SIP work nor reach those that do (the CLI)."""

    async def messages(self, line_id: int) -> list[TracedMessage]:
        return []


Item = TypeVar("Item")


@dataclass(frozen=True)
class Page(Generic[Item]):
    """One page of what matches (lines, history entries); `matched` is all of it, in order."""

    matched: list[Item]
    offset: int

    @property
    def lines(self) -> list[Item]:
        return self.matched[self.offset : self.offset + PAGE_SIZE]

    @property
    def total(self) -> int:
        return len(self.matched)

    @property
    def next(self) -> int | None:
        end = self.offset + PAGE_SIZE
        return end if end < self.total else None


async def _matching(lines: list[Line], conditions: list[Condition]) -> list[Line]:
    """The lines that meet every condition, found a slice at a time between turns of the event loop."""
    step = max(1, FILTER_SLICE_WORK // sum(condition.terms for condition in conditions))
    matched: list[Line] = []
    for start in range(0, len(lines), step):
        if start:
            await asyncio.sleep(0)
        matched += [line for line in lines[start : start + step] if all(c.matches(line) for c in conditions)]
    return matched


def require_numbers_right(caller: Caller) -> None:
    """Every voximplant method needs "Manage numbers — modify", checked before any parameter."""
    if not caller.can_modify_numbers:
        raise AccessDenied()


class SipLines:
    def __init__(
        self,
        db: Database,
        *,
        incoming_server: str,
        events: LineEvents | None = None,
        traces: LineTraces | None = None,
        clock: Callable[[], float] = time.time,
        filter_limits: FilterLimits = FilterLimits(),
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.incoming_server = incoming_server
        self.events = events or NoEvents()
        self.traces = traces or NoTraces()
        self.clock = clock
        self.rng = rng or random.SystemRandom()  # a new line's Call-ID and Contact token
        self.filter_limits = filter_limits

    async def add(
        self,
        caller: Caller,
        *,
        type_: str | None,
        title: str | None,
        server: str | None,
        login: str | None,
        password: str | None,
        digest_algorithms: str | None = None,
    ) -> Line:
        require_numbers_right(caller)
        fields = check_new_line(type_, title, server, login, password, digest_algorithms)
        line = await self.db.write(lambda repo: self._insert(repo, caller, fields), touches=LINE_WRITE)
        self.events.line_added(line)
        return line

    def _insert(self, repo: Repository, caller: Caller, fields: LineFields) -> Line:
        portal = repo.lock_portal(caller.portal_id)
        if fields.type is LineType.CLOUD and repo.count_cloud_lines(portal.id) >= portal.max_cloud_lines:
            raise MaxCloudPbx(portal.max_cloud_lines)
        if repo.count_lines(portal.id) >= portal.max_lines:
            raise MaxLines(portal.max_lines)
        if fields.title and repo.title_taken(portal.id, title_key(fields.title), None):
            raise TitleExists()
        new = self._new_line(repo.next_config_id(), portal, caller, fields)
        line = repo.insert_line(new, self.clock())
        if (
            line.incoming_login is not None and new.incoming_password is not None
        ):  # docs/behaviour.md#office-identity: the registrar's secrets, for the realm the line starts in
            realm = self._incoming_server(portal).lower()
            repo.store_ha1(line.id, realm, digest.ha1_kept(line.incoming_login, realm, new.incoming_password))
        if portal.default_line is None:
            repo.set_default_line(portal.id, line.line_id)
        return self.complete(line, portal)

    def _new_line(self, config_id: int, portal: Portal, caller: Caller, fields: LineFields) -> NewLine:
        office = fields.type is LineType.OFFICE
        title = fields.title or ""
        return NewLine(
            config_id=config_id,
            portal_id=portal.id,
            app_id=caller.app_id,
            type=fields.type,  # type: ignore[arg-type]
            title=title,
            title_key=title_key(title),
            server=fields.server,  # type: ignore[arg-type]
            login=fields.login,  # type: ignore[arg-type]
            password=fields.password,
            incoming_login=office_login(config_id) if office else None,
            # 32 lower-case hex characters from a CSPRNG (docs/behaviour.md#line-generated-values)
            incoming_password=secrets.token_hex(16) if office else None,
            # office lines show "0" from the first get on (docs/behaviour.md#sip-add)
            registration_status_code=0 if office else None,
            digest_algorithms=fields.digest_algorithms,
            session=None if office else NewSession(new_call_id(self.rng), new_contact_token(self.rng)),
        )

    async def update(
        self,
        caller: Caller,
        config_id: int,
        *,
        type_: str | None,
        title: str | None,
        server: str | None,
        login: str | None,
        password: str | None,
        digest_algorithms: str | None = None,
    ) -> None:
        require_numbers_right(caller)

        def work(repo: Repository) -> tuple[Line, bool] | None:
            line = self._owned_line(repo, caller, config_id)
            if title is None and server is None and login is None and password is None and digest_algorithms is None:
                return None
            fields = check_changes(type_, title, server, login, password, digest_algorithms, line_type=line.type)
            if fields.title and repo.title_taken(caller.portal_id, title_key(fields.title), line.id):
                raise TitleExists()
            changes: dict[str, object] = {
                name: value
                for name, value in (
                    ("title", fields.title),
                    ("server", fields.server),
                    ("login", fields.login),
                    ("password", fields.password),
                )
                if value is not None
            }
            if fields.title is not None:
                changes["title_key"] = title_key(fields.title)
            if (
                fields.digest_algorithms is not None
            ):  # docs/behaviour.md#office-digest: the next challenge offers them; bindings stay
                changes["digest_algorithms"] = fields.digest_algorithms or None
            reregister = bool(changes.keys() - {"title", "title_key", "digest_algorithms"})
            if reregister:
                # The registration starts over, even when the values are the same [S].
                changes["registration_status_code"] = 0
                now = self.clock()
                if line.reg_id is not None:
                    repo.reset_registration(line.reg_id, now)
                if line.type is LineType.OFFICE:
                    repo.delete_bindings(
                        line.id
                    )  # docs/behaviour.md#office-credentials-change: the PBX registers again
                # docs/behaviour.md#line-history: recorded here, whether or not a `sip` process runs
                repo.add_history([(line.id, StatusChange(now, StatusResult.WAIT, 0, "", Cause.LINE_UPDATED))])
            repo.update_line(line.id, changes)
            return repo.line_by_config(caller.portal_id, config_id), reregister  # type: ignore[return-value]

        changed = await self.db.write(work, touches=LINE_WRITE)
        if changed is not None:
            self.events.line_changed(*changed)

    async def get(self, caller: Caller, *, filter_: object, sort: object, order: object, offset: int) -> Page[Line]:
        require_numbers_right(caller)
        conditions = parse_filter(filter_, self.filter_limits, caller.filter_budget)
        sort_key = parse_sort(sort, order)
        lines = await self.owned_lines(caller)
        if conditions:
            lines = await _matching(lines, conditions)
        if sort_key is not None:
            lines = sorted(lines, key=sort_key.key, reverse=sort_key.descending)
        return Page(lines, offset)

    async def delete(self, caller: Caller, config_id: int) -> None:
        require_numbers_right(caller)

        def work(repo: Repository) -> Line:
            line = self._owned_line(repo, caller, config_id)
            repo.delete_line(line.id)
            if repo.portal(caller.portal_id).default_line == line.line_id:
                repo.set_default_line(caller.portal_id, None)
            return line

        self.events.line_deleted(await self.db.write(work, touches=LINE_WRITE))

    async def states(self, caller: Caller, config_id: int | None = None) -> list[LineState]:
        """The caller's lines (or one) with their registration and live bindings, as an operator sees
        them (docs/behaviour.md#dashboard), CONFIG_ID order. Raises: AccessDenied."""
        require_numbers_right(caller)
        now = self.clock()

        def work(repo: Repository) -> list[LineState]:
            portal = repo.portal(caller.portal_id)
            return [
                replace(state, line=self.complete(state.line, portal))
                for state in repo.line_states(now, portal_id=caller.portal_id, config_id=config_id)
                if caller.every_app or state.line.app_id == caller.app_id
            ]

        return await self.db.read(work)

    async def register_now(self, caller: Caller, config_id: int) -> None:
        """A cloud line's REGISTER at once, its counters reset (docs/behaviour.md#dashboard); an office
        line has nothing to send. Raises: AccessDenied, LineNotFound."""
        require_numbers_right(caller)
        line = await self.db.read(lambda repo: self._owned_line(repo, caller, config_id))
        if line.type is LineType.CLOUD:
            self.events.register_now(line)

    async def bindings(self, caller: Caller, config_id: int) -> list[Binding]:
        """The live registrations of the caller's office line (sipline.sip.bindings)."""
        require_numbers_right(caller)

        def work(repo: Repository) -> list[Binding]:
            line = self._owned_line(repo, caller, config_id)
            now = self.clock()
            return [b for b in repo.bindings_of([line.id], lock=False)[line.id] if b.expires_at > now]

        return await self.db.read(work)

    async def history(self, caller: Caller, config_id: int, offset: int) -> Page[StatusChange]:
        """A page of the status history of the caller's line, newest first (sipline.sip.history)."""
        require_numbers_right(caller)

        def work(repo: Repository) -> list[StatusChange]:
            return repo.history(self._owned_line(repo, caller, config_id).id)

        return Page(await self.db.read(work), offset)

    async def trace(self, caller: Caller, config_id: int) -> list[TracedMessage]:
        """The last SIP messages of the caller's line, oldest first (sipline.sip.trace, docs/behaviour.md#line-trace)."""
        require_numbers_right(caller)
        line = await self.db.read(lambda repo: self._owned_line(repo, caller, config_id))
        return await self.traces.messages(line.id)

    async def providers(self, caller: Caller, offset: int) -> Page[Provider]:
        """A page of the providers of the caller's cloud lines, by name (sipline.sip.providers)."""
        require_numbers_right(caller)

        def work(repo: Repository) -> list[Provider]:
            rows = repo.caller_registrations(caller.portal_id, caller.owner)
            errors = repo.last_errors([line.id for line, _ in rows])
            return providers_of(rows, errors, repo.provider_states())

        return Page(await self.db.read(work), offset)

    async def status(self, caller: Caller, reg_id: int) -> Registration:
        require_numbers_right(caller)
        registration = await self.db.read(lambda repo: repo.registration(caller.portal_id, caller.owner, reg_id))
        if registration is None:
            raise RegistrationNotFound()
        return registration

    async def connector(self, caller: Caller) -> Portal:
        """The portal, whose settings are the connector's status (docs/behaviour.md#connector-status)."""
        require_numbers_right(caller)
        return await self.portal(caller.portal_id)

    async def portal(self, portal_id: int) -> Portal:
        return await self.db.cached((PORTAL, portal_id), lambda repo: repo.portal(portal_id))

    async def owned_lines(self, caller: Caller) -> list[Line]:
        """The caller's lines (its APP_ID only, unless every_app), CONFIG_ID order. Shared: do not mutate."""
        return await self.db.cached(
            (LINES, caller.portal_id, caller.owner),
            lambda repo: self._complete_all(repo, repo.lines(caller.portal_id, caller.owner), caller.portal_id),
        )

    async def portal_lines(self, portal_id: int) -> list[Line]:
        """Every line of the portal, of every app. Shared: do not mutate."""
        return await self.db.cached(
            (LINES, portal_id, None),
            lambda repo: self._complete_all(repo, repo.lines(portal_id, None), portal_id),
        )

    def _owned_line(self, repo: Repository, caller: Caller, config_id: int) -> Line:
        line = repo.line_by_config(caller.portal_id, config_id) if config_id > 0 else None
        if line is None or (line.app_id != caller.app_id and not caller.every_app):
            raise LineNotFound()
        return line

    def _complete_all(self, repo: Repository, lines: list[Line], portal_id: int) -> list[Line]:
        portal = repo.portal(portal_id)
        return [self.complete(line, portal) for line in lines]

    def complete(self, line: Line, portal: Portal) -> Line:
        """The line as sip.get shows it: an office line with its portal's INCOMING_SERVER."""
        if line.type is not LineType.OFFICE:
            return line
        return replace(line, incoming_server=self._incoming_server(portal))

    def _incoming_server(self, portal: Portal) -> str:
        """The INCOMING_SERVER (realm) of the portal's office lines: its own, or the service's."""
        return portal.incoming_server or self.incoming_server
