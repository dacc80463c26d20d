"""Events (docs/behaviour.md#events): handlers bound with event.bind, the deliveries of online events,
the offline queue, and the secrets that sign deliveries (an app's client secret, sealed, and each
portal's signing secret for its webhooks' handlers).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("portal") as portal:
        portal.add_column(sa.Column("signing_secret", sa.LargeBinary))
    with op.batch_alter_table("app") as app:
        app.add_column(sa.Column("secret", sa.LargeBinary))
    op.create_table(
        "event_handler",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("portal_id", sa.Integer, sa.ForeignKey("portal.id", ondelete="CASCADE"), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False, server_default=""),
        sa.Column("app_id", sa.Integer, sa.ForeignKey("app.id", ondelete="CASCADE")),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("handler", sa.String(2048), nullable=False, server_default=""),
        sa.Column("auth_type", sa.Integer, nullable=False, server_default="0"),
        sa.Column("user_number", sa.Integer, nullable=False),
        sa.Column("options", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("failing_since", sa.Float),
        sa.Column("last_error", sa.String(255)),
        sa.Column("last_error_at", sa.Float),
        sa.Column("delivered_at", sa.Float),
        sa.UniqueConstraint("portal_id", "owner", "event", "handler", "auth_type"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "event_delivery",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("handler_id", sa.Integer, nullable=False),
        sa.Column("portal_id", sa.Integer, sa.ForeignKey("portal.id", ondelete="CASCADE"), nullable=False),
        sa.Column("app_id", sa.Integer),
        sa.Column("line_id", sa.Integer, nullable=False, server_default="0"),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("url", sa.String(2048)),
        sa.Column("body", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_at", sa.Float, nullable=False),
        sa.Column("last_error", sa.String(255)),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", sa.Float),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_event_delivery_due", "event_delivery", ["next_at"])
    op.create_index("ix_event_delivery_order", "event_delivery", ["handler_id", "line_id", "id"])
    op.create_table(
        "event_offline",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("portal_id", sa.Integer, sa.ForeignKey("portal.id", ondelete="CASCADE"), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False, server_default=""),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("additional", sa.Text, nullable=False, server_default="{}"),
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("process_id", sa.String(32), nullable=False, server_default=""),
        sa.Column("error", sa.Boolean, nullable=False, server_default=sa.false()),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_event_offline_owner", "event_offline", ["portal_id", "owner", "id"])


def downgrade() -> None:
    op.drop_table("event_offline")
    op.drop_table("event_delivery")
    op.drop_table("event_handler")
    with op.batch_alter_table("app") as app:
        app.drop_column("secret")
    with op.batch_alter_table("portal") as portal:
        portal.drop_column("signing_secret")
