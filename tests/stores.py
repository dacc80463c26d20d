"""The store engines tests run against: SQLite files, and fresh PostgreSQL databases.

`SIPLINE_TEST_POSTGRES` is an admin URL of the PostgreSQL server (default: the
local one, trust auth); each fresh database is created there and dropped when the
test session ends. `SIPLINE_TEST_STORE=postgresql` runs every sipline process the
integration tests start on a fresh PostgreSQL database of its own (the second pass
of .ci/run); the default is SQLite in the data dir.
"""

from __future__ import annotations

import atexit
import itertools
import os
import secrets
from pathlib import Path

import psycopg
import sqlalchemy as sa

ADMIN_URL = os.environ.get("SIPLINE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
ON_POSTGRES = os.environ.get("SIPLINE_TEST_STORE", "sqlite") == "postgresql"
_RUN = secrets.token_hex(3)
_NUMBERS = itertools.count()
_CREATED: list[str] = []
_BY_DATA_DIR: dict[Path, str] = {}


def fresh_postgres() -> str:
    """The URL of a new, empty database (dropped at exit)."""
    name = f"sipline_test_{_RUN}_{next(_NUMBERS)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    _CREATED.append(name)
    return sa.engine.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


@atexit.register
def _drop_all() -> None:
    if not _CREATED:
        return
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        for name in _CREATED:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url_for(data_dir: Path) -> str | None:
    """The --database-url a process of this data dir runs with in this pass (None: its SQLite file)."""
    if not ON_POSTGRES:
        return None
    key = Path(data_dir).resolve()
    if key not in _BY_DATA_DIR:
        _BY_DATA_DIR[key] = fresh_postgres()
    return _BY_DATA_DIR[key]


def store_env(data_dir: Path) -> dict[str, str]:
    url = database_url_for(data_dir)
    return {"SIPLINE_DATABASE_URL": url} if url else {}


def execute(data_dir: Path, statement: str) -> list[tuple]:
    """Run SQL on the store of a data dir's processes, as an operator with psql would."""
    return run_sql(database_url_for(data_dir) or f"sqlite:///{Path(data_dir) / 'sipline.db'}", statement)


def run_sql(url: str, statement: str) -> list[tuple]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def stored_bytes(data_dir: Path) -> bytes:
    """Everything the store holds at rest, for checks that no secret is in it in plain text."""
    url = database_url_for(data_dir)
    if url is None:
        return b"".join(path.read_bytes() for path in Path(data_dir).glob("sipline.db*"))
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as conn:
            tables = sa.inspect(conn).get_table_names()
            assert tables, "the PostgreSQL store has no tables"
            return b"".join(repr(list(conn.execute(sa.text(f'SELECT * FROM "{table}"')))).encode()
                            for table in tables)
    finally:
        engine.dispose()
