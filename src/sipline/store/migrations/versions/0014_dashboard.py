"""The web dashboard (docs/behaviour.md#dashboard): one-time sign-in links, sessions (both kept as
hashes of their tokens), and the first portal's webhook code sealed, so that every start prints it.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook") as webhook:
        webhook.add_column(sa.Column("sealed_code", sa.LargeBinary))
    op.create_table(
        "dashboard_link",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("portal_id", sa.Integer, sa.ForeignKey("portal.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("used_at", sa.Float),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "dashboard_session",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("portal_id", sa.Integer, sa.ForeignKey("portal.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("seen_at", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("dashboard_session")
    op.drop_table("dashboard_link")
    with op.batch_alter_table("webhook") as webhook:
        webhook.drop_column("sealed_code")
