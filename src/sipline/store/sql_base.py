"""What every part of the SQL repository shares: the transaction it is bound to, the key that seals
secrets, counters, and statements run on the driver's own cursor for the hot paths."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.sql.compiler import SQLCompiler

from sipline.store import schema as t
from sipline.store.crypto import Cell, SecretBox
from sipline.store.records import Line, LineType, Registration, StatusResult

_INT32 = 2**31
_VERSION = t.lines_version.c
_LINES_CHANGED = {"version": _VERSION.version + sa.literal_column("1")}
_BUMP_PORTAL = sa.update(t.lines_version).where(_VERSION.portal_id == sa.bindparam("b_portal")).values(_LINES_CHANGED)
_BUMP_LINES_PORTALS = (
    sa.update(t.lines_version)
    .where(
        _VERSION.portal_id.in_(
            sa.select(t.line.c.portal_id).where(t.line.c.id.in_(sa.bindparam("ids", expanding=True)))
        )
    )
    .values(_LINES_CHANGED)
)
_MAX_IN = 10_000  # ids in one IN list (SQLite takes 32,766 parameters, psycopg 65,535)
# SQL text, and what turns a row of named parameters into the driver's positional ones (None: it takes names)
_COMPILED: dict[tuple[sa.ClauseElement, str], tuple[str, Callable[[dict], tuple] | None]] = {}
_NEXT = (
    sa.update(t.counter)
    .where(t.counter.c.name == sa.bindparam("b_name"))
    .values(value=t.counter.c.value + sa.literal_column("1"))  # a literal: `_driver` binds only named rows
    .returning(t.counter.c.value)
)


class SqlPart:
    """One transaction's connection and the store's key; each part of the repository extends it."""

    def __init__(self, conn: Connection, box: SecretBox) -> None:
        self.conn = conn
        self.box = box
        self.touched: set[str] = set()  # Repository.touched

    def _driver(self, statement: sa.ClauseElement, rows: list[dict[str, object]]) -> list[dict[str, Any]]:
        """One statement for one or many rows, compiled once per dialect and run on the driver's own
        cursor: the engine writes thousands of status rows a second, and the registrar thousands of
        bindings, where SQLAlchemy's per-row parameter and result processing would cost more than
        the database's own work. Rows come back as the driver gives them (booleans as 0/1 on SQLite).

        Raises: sqlalchemy.exc.DBAPIError, as SQLAlchemy's own execute would."""
        dialect = self.conn.dialect
        key = (statement, dialect.name)
        if key not in _COMPILED:
            compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
            _COMPILED[key] = (str(compiled), _positional(compiled.positiontup) if compiled.positiontup else None)
        sql, positional = _COMPILED[key]
        params = [positional(row) for row in rows] if positional else rows
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if len(params) == 1:
                cursor.execute(sql, params[0])
            else:
                cursor.executemany(sql, params)
            if cursor.description is None:
                return []
            columns = [column[0] for column in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        except dialect.loaded_dbapi.Error as error:
            raise sa.exc.DBAPIError.instance(sql, params, error, dialect.loaded_dbapi.Error) from None
        finally:
            cursor.close()

    def _portal_lines_changed(self, portal_id: int) -> None:
        """Something voximplant.sip.get shows of the portal's lines changed in this transaction: its
        lines_version moves, in the same commit (what store/postgres.py checks before serving the lines it
        keeps). Every writer of what render_line shows calls this or _lines_changed."""
        self._driver(_BUMP_PORTAL, [{"b_portal": portal_id}])

    def _lines_changed(self, line_ids: list[int]) -> None:
        """As _portal_lines_changed, for the portals of these lines: one statement for a whole batch."""
        for start in range(0, len(line_ids), _MAX_IN):
            self.conn.execute(_BUMP_LINES_PORTALS, {"ids": line_ids[start : start + _MAX_IN]})

    def _next(self, counter: str) -> int:
        """The counter's next value; every new line takes one (or two), so through `_driver`."""
        return self._driver(_NEXT, [{"b_name": counter}])[0]["value"]

    def _seal(self, value: str | None, column: str, line_id: int) -> bytes | None:
        return None if value is None else self.box.seal(value, sealed_cell(column, line_id))

    def _open(self, value: bytes | None, column: str, line_id: int) -> str | None:
        return None if value is None else self._opened(value, column, line_id)

    def _opened(self, value: bytes, column: str, line_id: int) -> str:
        return self.box.open(value, sealed_cell(column, line_id))

    def _line(self, row: Mapping[Any, Any]) -> Line:
        return Line(
            id=row["id"],
            config_id=row["config_id"],
            portal_id=row["portal_id"],
            app_id=row["app_id"],
            type=LineType(row["type"]),
            title=row["title"],
            server=row["server"],
            login=row["login"],
            password=self._open(row["password"], "password", row["id"]),
            auth_user=row["auth_user"],
            outbound_proxy=row["outbound_proxy"],
            detect_line_number=row["detect_line_number"],
            line_detect_header_order=row["line_detect_header_order"],
            reg_id=row["reg_id"],
            incoming_login=row["incoming_login"],
            incoming_password=self._open(row["incoming_password"], "incoming_password", row["id"]),
            registration_status_code=row["registration_status_code"],
            registration_error_message=row["registration_error_message"],
            digest_algorithms=row["digest_algorithms"],
            portal_domain=row.get("portal_domain"),
        )

    @staticmethod
    def _registration(row: RowMapping) -> Registration:
        return Registration(
            reg_id=row["reg_id"],
            line_id=row["line_id"],
            status_result=StatusResult(row["status_result"]),
            status_code=row["status_code"],
            error_message=row["error_message"],
            last_updated=row["last_updated"],
            call_id=row["call_id"],
            contact_token=row["contact_token"],
            cseq_reserved=row["cseq_reserved"],
            registered_contact=row["registered_contact"],
            sent_contact=row["sent_contact"],
            expires_requested=row["expires_requested"],
        )


def sealed_cell(column: str, line_id: int) -> Cell:
    return Cell(t.line.name, column, line_id)


def storable(key: int) -> bool:
    """Whether an id from a request can name a row at all: INTEGER columns hold 32 bits on
    PostgreSQL, and a larger value would be an error there rather than "no such row"."""
    return -_INT32 <= key < _INT32


def _positional(names: list[str]) -> Callable[[dict], tuple]:
    """A row of named parameters → the driver's positional tuple, in the order of `names`."""
    if len(names) == 1:
        name = names[0]
        return lambda row: (row[name],)
    return itemgetter(*names)


def algorithm_list(text: str | None) -> tuple[str, ...] | None:
    """docs/behaviour.md#office-digest: a stored algorithm list ("SHA-256,MD5", checked when written) as the registrar offers it."""
    return tuple(text.split(",")) if text else None
