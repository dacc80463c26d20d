"""`sipline migrate-store`: move an installation's data to another store (SQLite → PostgreSQL).

Every table of the schema is copied row for row, parents before children, in one
transaction on the target: the copy is whole or absent. Sealed secrets are copied
as they are, with the row ids they are bound to (crypto.py), so the processes on the
new store need the same secret key (the data dir's `secret.key`, or SIPLINE_SECRET_KEY).
The target must be migrated and hold no portal yet; afterwards PostgreSQL's id
sequences continue above the copied ids.
"""

from __future__ import annotations

import sqlalchemy as sa

from sipline.store import schema
from sipline.store.database import Database

BATCH = 1000  # rows per INSERT


class TransferError(Exception):
    """The target cannot take the copy; nothing was written."""


def copy_store(source: Database, target: Database) -> dict[str, int]:
    """Rows copied per table. Raises: TransferError when the target already holds data."""
    tables = schema.metadata.sorted_tables
    with source.engine.connect() as reader, target.engine.begin() as writer:
        if writer.execute(sa.select(sa.func.count()).select_from(schema.portal)).scalar_one():
            raise TransferError("the target store already holds portals; give an empty database")
        for table in reversed(tables):  # what the target's migrations seeded (counters) makes way
            writer.execute(sa.delete(table))
        copied = {}
        for table in tables:
            rows = [dict(row) for row in reader.execute(sa.select(table)).mappings()]
            for start in range(0, len(rows), BATCH):
                writer.execute(sa.insert(table), rows[start : start + BATCH])
            copied[table.name] = len(rows)
        if writer.dialect.name == "postgresql":
            quote = writer.dialect.identifier_preparer.quote
            for table in tables:
                for column in table.primary_key.columns:
                    name, key = quote(table.name), quote(column.name)
                    sequence = writer.execute(sa.select(sa.func.pg_get_serial_sequence(name, column.name))).scalar()
                    if sequence is not None:
                        writer.execute(
                            sa.text(
                                f"SELECT setval(:sequence, COALESCE((SELECT max({key}) FROM {name}), 0) + 1, false)"
                            ),
                            {"sequence": sequence},
                        )
    return copied
