"""Office lines as the registrar sees them: their digest users and their bindings (BindingRepository)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from sipline.store import schema as t
from sipline.store.records import Binding, LineType, OfficeUser
from sipline.store.sql_base import SqlPart, algorithm_list

# The registrar's hot path (a group commit per batch of REGISTERs): statements built once, with
# IN lists of a few fixed sizes (padded by repeating an id), so each compiles once per dialect.
_IN_SIZES = (1, 8, 64)
_BINDINGS_OF = {
    size: sa.select(t.binding)
    .where(t.binding.c.line_id.in_([sa.bindparam(f"l{i}") for i in range(size)]))
    .order_by(t.binding.c.id)
    for size in _IN_SIZES
}
_LOCK_LINES = {
    size: sa.select(t.line.c.id).where(t.line.c.id.in_([sa.bindparam(f"l{i}") for i in range(size)])).with_for_update()
    for size in _IN_SIZES
}
_BINDING_COLUMNS = [column.name for column in t.binding.columns if column.name != "id"]
_INSERT_BINDING = sa.insert(t.binding).values({name: sa.bindparam(name) for name in _BINDING_COLUMNS})
_THIS_BINDING = (t.binding.c.line_id == sa.bindparam("b_line_id"), t.binding.c.contact == sa.bindparam("b_contact"))
_DELETE_BINDING = sa.delete(t.binding).where(*_THIS_BINDING)
_UPDATE_BINDING = (
    sa.update(t.binding)
    .where(*_THIS_BINDING)
    .values({name: sa.bindparam(name) for name in _BINDING_COLUMNS if name not in ("line_id", "contact")})
)
_OFFICE_USER = (
    sa.select(
        t.line.c.id,
        t.line.c.config_id,
        t.line.c.portal_id,
        t.line.c.incoming_login,
        t.line.c.incoming_password,
        t.line.c.incoming_realm,
        t.line.c.incoming_ha1,
        t.portal.c.incoming_server,
        sa.func.coalesce(t.line.c.digest_algorithms, t.portal.c.digest_algorithms).label("digest_algorithms"),
    )
    .join(t.portal, t.portal.c.id == t.line.c.portal_id)
    .where(t.line.c.incoming_login == sa.bindparam("b_login"), t.line.c.type == sa.bindparam("b_type"))
)

# every new office line's (sip.add) and every change of realm or password
_STORE_HA1 = (
    sa.update(t.line)
    .where(t.line.c.id == sa.bindparam("b_id"))
    .values(incoming_realm=sa.bindparam("b_realm"), incoming_ha1=sa.bindparam("b_ha1"))
)


class SqlBindings(SqlPart):
    def office_user(self, login: str) -> tuple[OfficeUser, str | None] | None:
        """The office line with this INCOMING_LOGIN, and its portal's own INCOMING_SERVER (if set): read
        once per PBX after each change, so through a statement compiled once (see `_driver`)."""
        found = self._driver(_OFFICE_USER, [{"b_login": login, "b_type": LineType.OFFICE.value}])
        if not found:
            return None
        row = found[0]
        sealed = row["incoming_ha1"]
        user = OfficeUser(
            line_id=row["id"],
            portal_id=row["portal_id"],
            login=row["incoming_login"],
            password=self._open(row["incoming_password"], "incoming_password", row["id"]) or "",
            realm=row["incoming_realm"],
            ha1=json.loads(self._open(sealed, "incoming_ha1", row["id"]) or "{}"),
            algorithms=algorithm_list(row["digest_algorithms"]),
            config_id=row["config_id"],
        )
        return user, row["incoming_server"]

    def store_ha1(self, line_id: int, realm: str, ha1: dict[str, str]) -> None:
        sealed = self._seal(json.dumps(ha1), "incoming_ha1", line_id)
        self._driver(_STORE_HA1, [{"b_id": line_id, "b_realm": realm, "b_ha1": sealed}])

    def bindings_of(self, line_ids: list[int], *, lock: bool = True) -> dict[int, list[Binding]]:
        """Bindings per line; with `lock` the lines stay locked until commit (one writer per AoR, docs/behaviour.md#office-bindings;
        SQLite's BEGIN IMMEDIATE has locked the whole database already)."""
        found: dict[int, list[Binding]] = {line_id: [] for line_id in line_ids}
        for chunk in _chunks(line_ids):
            if lock and self.conn.dialect.name != "sqlite":
                self._driver(_LOCK_LINES[len(chunk)], [_in_params(chunk)])
            for row in self._driver(_BINDINGS_OF[len(chunk)], [_in_params(chunk)]):
                found[row["line_id"]].append(_binding(row))
        return found

    def save_bindings(self, changes: dict[int, tuple[list[Binding], list[Binding]]]) -> None:
        """`changes`: line → (bindings before, bindings after), where a binding left as it was is the same
        object in both. A refresh rewrites one row in place: an UPDATE costs SQLite about half of a DELETE
        and an INSERT, which also touch the line index and the autoincrement counter."""
        gone: list[dict[str, object]] = []
        added: list[dict[str, object]] = []
        changed: list[dict[str, object]] = []
        for line_id, (before, after) in changes.items():
            old = {binding.contact: binding for binding in before}
            new = {binding.contact for binding in after}
            gone += [{"b_line_id": line_id, "b_contact": contact} for contact in old if contact not in new]
            for binding in after:
                previous = old.get(binding.contact)
                if previous is None:
                    added.append(_binding_row(line_id, binding))
                elif previous is not binding:  # the rules make a new Binding only for a change
                    changed.append(
                        _binding_row(line_id, binding) | {"b_line_id": line_id, "b_contact": binding.contact}
                    )
        for statement, rows in ((_DELETE_BINDING, gone), (_UPDATE_BINDING, changed), (_INSERT_BINDING, added)):
            if rows:
                self._driver(statement, rows)

    def delete_bindings(self, line_id: int) -> None:
        self.conn.execute(sa.delete(t.binding).where(t.binding.c.line_id == line_id))

    def delete_expired_bindings(self, now: float, line_ids: list[int] | None = None) -> list[tuple[int, Binding]]:
        """(line id, binding) of each binding deleted: each goes to exactly one of several deleters."""
        statement = sa.delete(t.binding).where(t.binding.c.expires_at <= now)
        if line_ids is not None:
            statement = statement.where(t.binding.c.line_id.in_(line_ids))
        deleted = self.conn.execute(statement.returning(t.binding))
        return [(row["line_id"], _binding(row)) for row in deleted.mappings()]

    def binding_counts(self, line_ids: list[int], now: float) -> dict[int, tuple[int, int]]:
        """(CONFIG_ID, live bindings) of each of these lines that still exists."""
        live = sa.and_(t.binding.c.line_id == t.line.c.id, t.binding.c.expires_at > now)
        query = (
            sa.select(t.line.c.id, t.line.c.config_id, sa.func.count(t.binding.c.id))
            .select_from(t.line.outerjoin(t.binding, live))
            .where(t.line.c.id.in_(line_ids))
            .group_by(t.line.c.id, t.line.c.config_id)
        )
        return {line_id: (config_id, count) for line_id, config_id, count in self.conn.execute(query)}

    def connection_closed(self, ip: str, port: int) -> int:
        """Bindings that came over a TCP/TLS connection from ip:port are unreachable now (docs/behaviour.md#office-nat)."""
        return self.conn.execute(
            sa.update(t.binding)
            .where(t.binding.c.source_ip == ip, t.binding.c.source_port == port, t.binding.c.transport != "udp")
            .values(reachable=False)
        ).rowcount

    def live_bindings_by_transport(self, now: float) -> dict[str, int]:
        binding = t.binding.c
        query = (
            sa.select(binding.transport, sa.func.count()).where(binding.expires_at > now).group_by(binding.transport)
        )
        return {transport: count for transport, count in self.conn.execute(query)}

    def nat_bindings(self, now: float) -> list[tuple[int, Binding]]:
        query = (
            sa.select(t.binding)
            .where(t.binding.c.nat.is_(True), t.binding.c.transport == "udp", t.binding.c.expires_at > now)
            .order_by(t.binding.c.id)
        )
        return [(row["line_id"], _binding(row)) for row in self.conn.execute(query).mappings()]

    def set_reachable(self, keys: list[tuple[int, str]], reachable: bool) -> None:
        binding = t.binding.c
        for line_id, contact in keys:
            self.conn.execute(
                sa.update(t.binding)
                .where(binding.line_id == line_id, binding.contact == contact)
                .values(reachable=reachable)
            )


def _chunks(line_ids: list[int]) -> list[list[int]]:
    """The ids in chunks of a size from _IN_SIZES, the last padded by repeating its first id."""
    largest = _IN_SIZES[-1]
    chunks = [line_ids[start : start + largest] for start in range(0, len(line_ids), largest)]
    if chunks:
        size = next(size for size in _IN_SIZES if size >= len(chunks[-1]))
        chunks[-1] = chunks[-1] + [chunks[-1][0]] * (size - len(chunks[-1]))
    return chunks


def _in_params(chunk: list[int]) -> dict[str, object]:
    return {f"l{i}": line_id for i, line_id in enumerate(chunk)}


def _binding(row: Mapping[Any, Any]) -> Binding:
    return Binding(
        contact=row["contact"],
        expires_at=row["expires_at"],
        granted=row["granted"],
        call_id=row["call_id"],
        cseq=row["cseq"],
        transport=row["transport"],
        source=(row["source_ip"], row["source_port"]),
        local=(row["local_ip"], row["local_port"]),
        q=row["q"],
        path=tuple(filter(None, row["path"].split("\n"))),
        instance=row["instance"],
        reg_id=row["reg_id"],
        user_agent=row["user_agent"],
        algorithm=row["algorithm"],
        nat=bool(row["nat"]),
        reachable=bool(row["reachable"]),
        first_registered_at=row["first_registered_at"],
        last_refreshed_at=row["last_refreshed_at"],
    )


def _binding_row(line_id: int, binding: Binding) -> dict[str, object]:
    return {
        "line_id": line_id,
        "contact": binding.contact,
        "expires_at": binding.expires_at,
        "granted": binding.granted,
        "call_id": binding.call_id,
        "cseq": binding.cseq,
        "transport": binding.transport,
        "source_ip": binding.source[0],
        "source_port": binding.source[1],
        "local_ip": binding.local[0],
        "local_port": binding.local[1],
        "q": binding.q,
        "path": "\n".join(binding.path),
        "instance": binding.instance,
        "reg_id": binding.reg_id,
        "user_agent": binding.user_agent,
        "algorithm": binding.algorithm,
        "nat": binding.nat,
        "reachable": binding.reachable,
        "first_registered_at": binding.first_registered_at,
        "last_refreshed_at": binding.last_refreshed_at,
    }
