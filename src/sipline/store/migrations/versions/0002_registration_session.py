"""What a cloud line's registration keeps across restarts (docs/behaviour.md#reg-lifecycle).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registration") as table:
        table.add_column(sa.Column("call_id", sa.String(64), nullable=False, server_default=""))
        table.add_column(sa.Column("contact_token", sa.String(32), nullable=False, server_default=""))
        table.add_column(sa.Column("cseq_reserved", sa.BigInteger, nullable=False, server_default="0"))
        table.add_column(sa.Column("registered_contact", sa.String(255)))
        table.add_column(sa.Column("expires_requested", sa.Integer, nullable=False, server_default="600"))
    registration = sa.table("registration", sa.column("reg_id"), sa.column("call_id"), sa.column("contact_token"))
    conn = op.get_bind()
    for (reg_id,) in conn.execute(sa.select(registration.c.reg_id)).all():
        conn.execute(
            registration.update()
            .where(registration.c.reg_id == reg_id)
            .values(call_id=secrets.token_hex(16), contact_token="l" + secrets.token_hex(8))
        )


def downgrade() -> None:
    with op.batch_alter_table("registration") as table:
        for column in ("expires_requested", "registered_contact", "cseq_reserved", "contact_token", "call_id"):
            table.drop_column(column)
