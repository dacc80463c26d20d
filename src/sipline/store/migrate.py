"""Bring a database to the newest schema with the Alembic migrations shipped in the package."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from sipline.store.crypto import SecretBox

MIGRATIONS = Path(__file__).with_name("migrations")


def upgrade(conn: Connection, box: SecretBox) -> None:
    """Runs every pending migration inside one transaction on `conn`; `box` opens and seals the
    stored secrets for those that re-seal them (`migration_box`)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    config.attributes["box"] = box
    command.upgrade(config, "head")


def migration_box() -> SecretBox:
    """The store's key, in a migration that runs (Alembic's context)."""
    from alembic import op

    config = op.get_context().config
    assert config is not None  # upgrade() runs every migration with its own Config
    return config.attributes["box"]
