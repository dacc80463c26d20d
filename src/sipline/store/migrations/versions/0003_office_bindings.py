"""Office PBX registrations with sipline's registrar (docs/behaviour.md#office-identity, docs/behaviour.md#office-stored).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("line") as table:
        table.add_column(sa.Column("incoming_realm", sa.String(255)))
        table.add_column(sa.Column("incoming_ha1", sa.LargeBinary))
        table.create_index("ix_line_incoming_login", ["incoming_login"], unique=True)
    op.create_table(
        "binding",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("line_id", sa.Integer, sa.ForeignKey("line.id", ondelete="CASCADE"), nullable=False),
        sa.Column("contact", sa.String(600), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("granted", sa.Integer, nullable=False),
        sa.Column("call_id", sa.String(255), nullable=False),
        sa.Column("cseq", sa.BigInteger, nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("source_ip", sa.String(64), nullable=False),
        sa.Column("source_port", sa.Integer, nullable=False),
        sa.Column("local_ip", sa.String(64), nullable=False),
        sa.Column("local_port", sa.Integer, nullable=False),
        sa.Column("q", sa.String(16)),
        sa.Column("path", sa.Text, nullable=False, server_default=""),
        sa.Column("instance", sa.String(255)),
        sa.Column("reg_id", sa.Integer),
        sa.Column("user_agent", sa.String(255)),
        sa.Column("algorithm", sa.String(32), nullable=False),
        sa.Column("nat", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("reachable", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("first_registered_at", sa.Float, nullable=False),
        sa.Column("last_refreshed_at", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_binding_line", "binding", ["line_id"])
    op.create_index("ix_binding_expires", "binding", ["expires_at"])


def downgrade() -> None:
    op.drop_table("binding")
    with op.batch_alter_table("line") as table:
        table.drop_index("ix_line_incoming_login")
        table.drop_column("incoming_ha1")
        table.drop_column("incoming_realm")
