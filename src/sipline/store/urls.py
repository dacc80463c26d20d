"""Database URLs: which ones sipline takes, and the forms its engines want. Pure functions."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

DB_FILE = "sipline.db"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / DB_FILE}"


def check_url(text: str) -> str:
    """`sqlite:///FILE` or `postgresql://…`, as open_store takes it.

    Raises: ValueError saying what is wrong (without the URL, which may hold a password)."""
    try:
        url = sa.engine.make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        raise ValueError("not a database URL (sqlite:///FILE or postgresql://…)") from None
    if url.get_backend_name() not in ("sqlite", "postgresql") or url.drivername not in (
        "sqlite",
        "postgresql",
        "postgres",
        "postgresql+psycopg",
    ):
        raise ValueError(f"{url.drivername!r} is not sqlite or postgresql")
    if url.get_backend_name() == "sqlite" and not url.database:
        raise ValueError("a SQLite URL names a file: sqlite:///path/to/sipline.db")
    return text


def shared_by_processes(url: str) -> bool:
    """Whether sipline processes on many hosts can share the store `url` names (`--role`, `--workers`):
    the `peers` its Database will have."""
    return not url.lower().startswith("sqlite")


def libpq_url(url: str) -> str:
    """The URL as libpq takes it (no SQLAlchemy driver suffix), password kept."""
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
