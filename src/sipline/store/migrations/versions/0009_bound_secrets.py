"""Sealed secrets bound to their place: table, column and row id as AES-GCM associated data.

Every line's password, INCOMING_PASSWORD and registrar HA1 values are opened as sealed before
(no associated data) and sealed again bound to their cell (store/crypto.py), so a ciphertext
copied into another row or column no longer opens. Needs the store's key (store/migrate.py).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

from sipline.store.crypto import Cell
from sipline.store.migrate import migration_box

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_SEALED = ("password", "incoming_password", "incoming_ha1")
_LINE = sa.table("line", sa.column("id", sa.Integer), *(sa.column(name, sa.LargeBinary) for name in _SEALED))


def upgrade() -> None:
    box = migration_box()
    _reseal(lambda sealed, cell: box.seal(box.open_unbound(sealed), cell))


def downgrade() -> None:
    box = migration_box()
    _reseal(lambda sealed, cell: box.seal_unbound(box.open(sealed, cell)))


def _reseal(convert: Callable[[bytes, Cell], bytes]) -> None:
    conn = op.get_bind()
    for row in conn.execute(sa.select(_LINE)).mappings().all():
        values = {
            name: convert(bytes(row[name]), Cell("line", name, row["id"])) for name in _SEALED if row[name] is not None
        }
        if values:
            conn.execute(sa.update(_LINE).where(_LINE.c.id == row["id"]).values(values))
