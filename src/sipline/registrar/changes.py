"""What an office line's history keeps of its bindings (docs/behaviour.md#line-history) and what the
registrar logs of them (docs/behaviour.md#office-log).

A binding added, one removed (Expires 0, `Contact: *`, evicted), one that registers again from
another source or transport, and one expired (swept) each make an entry; a plain refresh, the bulk
of a registrar's work, writes nothing more than it did. An office line's entry shows `success` / 200
while a binding of it is live after the change, else `wait` / 0.

An expired binding is recorded by whoever deletes its row: the sweeper, or a commit for its line
that finds it still there; each delete returns the rows it removed, so an expiry is recorded once
however many processes sweep, and a cache of bindings that still holds one already swept records
nothing.
"""

from __future__ import annotations

import logging

from sipline.store.records import Binding, Cause, StatusChange, StatusResult
from sipline.store.repository import Repository

log = logging.getLogger("sipline.registrar")

Logged = tuple[int, StatusChange]  # (CONFIG_ID, entry)


def commit(
    repo: Repository,
    before: dict[int, list[Binding]],
    after: dict[int, list[Binding]],
    config_ids: dict[int, int],
    now: float,
) -> list[Logged]:
    """Write the lines' new bindings (`after`, of the lines that changed) over what the store holds
    (`before`, expired ones included) with their history; returns what to log once committed."""
    entries: list[tuple[int, StatusChange]] = []
    written: dict[int, tuple[list[Binding], list[Binding]]] = {}
    stale = []
    for line_id, new in after.items():  # the registrar's hot path: one plain loop per REGISTER's line
        old = before[line_id]
        for binding in old:
            if binding.expires_at <= now:
                stale.append(line_id)
                old = [b for b in old if b.expires_at > now]
                break
        written[line_id] = (old, new)
    if stale:  # rows of expired bindings go first: a new binding with the same Contact is a new row
        for line_id, binding in repo.delete_expired_bindings(now, sorted(stale)):
            entries.append((line_id, _entry(now, *_office_status(len(after[line_id])), Cause.BINDING_EXPIRED, binding)))
    repo.save_bindings(written)
    for line_id, (old, new) in written.items():
        if not _same_places(old, new):
            entries += [(line_id, entry) for entry in binding_changes(old, new, now)]
    if entries:
        repo.add_history(entries)
    return [(config_ids[line_id], entry) for line_id, entry in entries]


def _same_places(before: list[Binding], after: list[Binding]) -> bool:
    """Whether every binding is where it was (a refresh: the rules replace a binding in its place)."""
    if len(before) != len(after):
        return False
    for old, new in zip(before, after, strict=True):
        if old.contact != new.contact or old.source != new.source or old.transport != new.transport:
            return False
    return True


def binding_changes(before: list[Binding], after: list[Binding], now: float) -> list[StatusChange]:
    """The entries for a line whose live bindings went from `before` to `after` in one REGISTER."""
    result, code = _office_status(len(after))
    old = {binding.contact: binding for binding in before}
    current = {binding.contact for binding in after}
    changes = [(Cause.BINDING_REMOVED, binding) for binding in before if binding.contact not in current]
    for binding in after:
        previous = old.get(binding.contact)
        if previous is None:
            changes.append((Cause.BINDING_ADDED, binding))
        elif previous is not binding and (previous.source, previous.transport) != (binding.source, binding.transport):
            changes.append((Cause.BINDING_REFRESHED, binding))
    return [_entry(now, result, code, cause, binding) for cause, binding in changes]


def sweep(repo: Repository, now: float) -> list[Logged]:
    """Delete the bindings expired by `now` and record each expiry (docs/behaviour.md#office-status)."""
    expired = repo.delete_expired_bindings(now)
    if not expired:
        return []
    lines = repo.binding_counts(sorted({line_id for line_id, _ in expired}), now)
    entries = [
        (line_id, _entry(now, *_office_status(lines[line_id][1]), Cause.BINDING_EXPIRED, binding))
        for line_id, binding in expired
        if line_id in lines
    ]
    repo.add_history(entries)
    return [(lines[line_id][0], entry) for line_id, entry in entries]


def log_changes(changes: list[Logged]) -> None:
    """INFO on `sipline.registrar`, one line per change, with its fields for a structured formatter."""
    if not log.isEnabledFor(logging.INFO):
        return
    for config_id, entry in changes:
        log.info(
            "line %d: %s %s from %s %s",
            config_id,
            entry.cause.value,
            entry.contact,
            entry.transport,
            entry.source,
            extra={
                "config_id": config_id,
                "cause": entry.cause.value,
                "contact": entry.contact,
                "source": entry.source,
            },
        )


def _office_status(live: int) -> tuple[StatusResult, int]:
    return (StatusResult.SUCCESS, 200) if live else (StatusResult.WAIT, 0)


def _entry(now: float, result: StatusResult, code: int, cause: Cause, binding: Binding) -> StatusChange:
    source = f"{binding.source[0]}:{binding.source[1]}"  # as sipline.sip.bindings shows SOURCE_ADDRESS
    return StatusChange(now, result, code, "", cause, binding.contact, source, binding.transport)
