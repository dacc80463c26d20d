"""The migrations build exactly the tables schema.py describes (store/schema.py's promise), on each engine."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from sipline.store import schema


def test_a_migrated_store_has_the_schema_the_code_uses(db):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        differences = compare_metadata(context, schema.metadata)
    ignored = {"alembic_version"}
    differences = [d for d in differences if not (d[0] == "remove_table" and d[1].name in ignored)]
    assert differences == []
