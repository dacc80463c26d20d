"""`sipline line list|show`: every portal's lines as the store holds them, for operators, as
Asterisk's `pjsip show registrations` shows its registrations.

They only read, through the store's repository, so they work with the server stopped and
while it runs (SQLite's WAL lets them read beside it). A line is shown as the API shows it:
its fields as voximplant.sip.get renders them (passwords never), a cloud line's registration
as voximplant.sip.status, an office line's live bindings as sipline.sip.bindings.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace

from sipline.accounts.portals import named_portal
from sipline.cli.output import CommandFailed, Table, cell, to_json
from sipline.rest.envelope import local_iso
from sipline.rest.extensions import render_binding, render_change, render_traced, traced_text
from sipline.rest.voximplant import render_line, render_status
from sipline.server.line_traces import SharedTraces
from sipline.server.settings import Settings
from sipline.sip.grammar import is_digits
from sipline.store.records import LineState, LineType, StatusResult
from sipline.store.repository import Repository
from sipline.telephony.services import Services

LIST_COLUMNS = (
    "CONFIG_ID",
    "TYPE",
    "TITLE",
    "SERVER",
    "LOGIN",
    "STATUS",
    "CODE",
    "MESSAGE",
    "BINDINGS",
    "UPDATED",
    "PORTAL",
)
STATUSES = tuple(status.value for status in StatusResult)  # what --status takes: STATUS_RESULT's values
SECRET_FIELDS = ("PASSWORD", "INCOMING_PASSWORD")  # shown as set or not, never their value
HIDDEN = "(hidden)"


def config_id(text: str) -> int:
    """CONFIG_ID as the command line gives it. Raises: argparse.ArgumentTypeError (a usage error)."""
    if not is_digits(text, 18):
        raise argparse.ArgumentTypeError(f"{text!r} is not a CONFIG_ID")
    return int(text)


async def line_list(args: argparse.Namespace, settings: Settings, services: Services) -> str:
    status = StatusResult(args.status) if args.status else None
    now = time.time()

    def work(repo: Repository) -> list[LineState]:
        return repo.line_states(now, portal_id=_portal_id(repo, args.portal), status=status)

    return Table(LIST_COLUMNS, [_list_row(state) for state in await services.db.read(work)]).render(args.json)


def _list_row(state: LineState) -> dict[str, object]:
    """A cloud line's STATUS, CODE, MESSAGE and UPDATED are its sip.status; an office line has
    none of them (it does not register out) but BINDINGS, the PBX registrations live now, and
    UPDATED, the newest REGISTER among them."""
    line, registration = state.line, state.registration
    updated = registration.last_updated if registration else state.last_registered
    return {
        "CONFIG_ID": line.config_id,
        "TYPE": line.type.value,
        "TITLE": line.title,
        "SERVER": line.server,
        "LOGIN": line.login,
        "STATUS": registration.status_result.value if registration else None,
        "CODE": registration.status_code if registration else None,
        "MESSAGE": registration.error_message if registration else None,
        "BINDINGS": state.bindings if line.type is LineType.OFFICE else None,
        "UPDATED": None if updated is None else local_iso(updated),
        "PORTAL": state.portal_domain,
    }


@dataclass(frozen=True)
class LineView:
    """What `line show` prints, one part per section: the line, a cloud line's registration, an
    office line's bindings. Further sections (the line's history, its SIP trace) go beside them."""

    line: dict[str, object]
    registration: dict[str, object] | None
    bindings: list[dict[str, object]] | None
    history: list[dict[str, object]] | None = None  # with --history
    trace: list[dict[str, object]] | None = None  # with --trace

    def as_json(self) -> str:
        view: dict[str, object] = {"LINE": self.line, "REGISTRATION": self.registration, "BINDINGS": self.bindings}
        if self.history is not None:
            view["HISTORY"] = self.history
        if self.trace is not None:
            view["TRACE"] = self.trace
        return to_json(view)

    def as_text(self) -> str:
        parts = [_fields(self.line)]
        if self.registration is not None:
            parts.append("registration (voximplant.sip.status):\n" + _fields(self.registration))
        if self.bindings is not None:
            parts.append(f"bindings (sipline.sip.bindings): {len(self.bindings)}" + _table(self.bindings))
        if self.history is not None:
            parts.append(f"history (sipline.sip.history): {len(self.history)}" + _table(self.history))
        if self.trace is not None:
            parts.append(
                f"trace (sipline.sip.trace): {len(self.trace)}"
                + "".join("\n\n" + traced_text(message) for message in self.trace)
            )
        return "\n\n".join(parts)


async def line_show(args: argparse.Namespace, settings: Settings, services: Services) -> str:
    now = time.time()

    def work(repo: Repository) -> tuple[int, LineView]:
        found = repo.line_states(now, portal_id=_portal_id(repo, args.portal), config_id=args.config_id)
        if not found:
            raise CommandFailed(f"no line {args.config_id}" + (f" on portal {args.portal}" if args.portal else ""))
        state = found[0]
        line = services.lines.complete(state.line, repo.portal(state.line.portal_id))
        fields = {**render_line(line), "PORTAL": state.portal_domain, "APP_ID": line.app_id}
        fields.update({name: HIDDEN for name in SECRET_FIELDS if fields.get(name) is not None})
        if line.type is not LineType.OFFICE:
            view = LineView(fields, render_status(state.registration) if state.registration else None, None)
        else:
            live = [binding for binding in repo.bindings_of([line.id], lock=False)[line.id] if binding.expires_at > now]
            view = LineView(fields, None, [render_binding(binding, now) for binding in live])
        if args.history:  # docs/behaviour.md#line-history: newest first, all that is kept
            view = replace(view, history=[render_change(entry) for entry in repo.history(line.id)])
        return line.id, view

    line_id, view = await services.db.read(work)
    if args.trace:
        view = replace(view, trace=await _trace(services, line_id))
    return view.as_json() if args.json else view.as_text()


async def _trace(services: Services, line_id: int) -> list[dict[str, object]]:
    """docs/behaviour.md#line-trace: asked of the sip processes through the store, as an api process asks.
    Raises: CommandFailed on SQLite, where the trace is in the one server process's memory."""
    peers = services.db.peers
    if peers is None:
        raise CommandFailed("the SIP trace is kept in the server's memory: on SQLite, call sipline.sip.trace")
    return [render_traced(message) for message in await SharedTraces(services.db, peers).messages(line_id)]


def _portal_id(repo: Repository, domain: str | None) -> int | None:
    """The portal --portal names (None: every portal). Raises: AccountNotFound."""
    return None if domain is None else named_portal(repo, domain).id


def _fields(values: dict[str, object]) -> str:
    return "\n".join(f"{name}: {cell(value)}" for name, value in values.items())


def _table(rows: list[dict[str, object]]) -> str:
    return "\n" + Table(tuple(rows[0]), rows).render(as_json=False) if rows else ""
