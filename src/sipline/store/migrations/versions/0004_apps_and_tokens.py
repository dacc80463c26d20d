"""Many portals with their own limits, OAuth applications, codes and tokens (docs/behaviour.md#rest-auth, docs/behaviour.md#rest-rate-limit).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("portal") as table:
        table.add_column(sa.Column("rate_burst", sa.Float))
        table.add_column(sa.Column("rate_drain", sa.Float))
        table.add_column(sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()))
    op.create_table(
        "app",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("portal_id", sa.Integer, sa.ForeignKey("portal.id", ondelete="CASCADE"), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("scopes", sa.String(1024), nullable=False),
        sa.Column("handler_url", sa.String(2048), nullable=False, server_default=""),
        sa.Column("status", sa.String(1), nullable=False, server_default="L"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("allowed_users", sa.String(1024)),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "oauth_code",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("app_id", sa.Integer, sa.ForeignKey("app.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "oauth_token",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("app_id", sa.Integer, sa.ForeignKey("app.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("user.id", ondelete="CASCADE"), nullable=False),
        sa.Column("access_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("refresh_hash", sa.String(64), unique=True),
        sa.Column("access_expires_at", sa.Float, nullable=False),
        sa.Column("refresh_expires_at", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("oauth_token")
    op.drop_table("oauth_code")
    op.drop_table("app")
    with op.batch_alter_table("portal") as table:
        table.drop_column("active")
        table.drop_column("rate_drain")
        table.drop_column("rate_burst")
