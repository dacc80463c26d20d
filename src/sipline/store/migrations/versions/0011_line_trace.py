"""Line traces handed from `sip` workers to an API process (docs/behaviour.md#line-trace): rows that live
about a second, under the asking process's token.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "line_trace",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("line_id", sa.Integer, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("outgoing", sa.Boolean, nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("local", sa.String(80), nullable=False),
        sa.Column("remote", sa.String(80), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_line_trace_token", "line_trace", ["token"])


def downgrade() -> None:
    op.drop_table("line_trace")
