"""Each line's status history: the last 100 changes of STATUS_RESULT / STATUS_CODE with their cause, and
office lines' binding changes (docs/behaviour.md#line-history).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "line_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("line_id", sa.Integer, sa.ForeignKey("line.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("status_result", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("error_message", sa.String(255), nullable=False, server_default=""),
        sa.Column("cause", sa.String(32), nullable=False),
        sa.Column("contact", sa.String(600)),
        sa.Column("source", sa.String(80)),
        sa.Column("transport", sa.String(8)),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_line_history_line", "line_history", ["line_id", "id"])


def downgrade() -> None:
    op.drop_table("line_history")
