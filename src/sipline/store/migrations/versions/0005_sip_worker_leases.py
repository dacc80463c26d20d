"""Scale-out: which `sip` worker registers each cloud line (leases), and the live workers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registration") as table:
        table.add_column(sa.Column("lease_owner", sa.String(64)))
        table.create_index("ix_registration_lease_owner", ["lease_owner"])
    op.create_table(
        "sip_worker",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sip_worker")
    with op.batch_alter_table("registration") as table:
        table.drop_index("ix_registration_lease_owner")
        table.drop_column("lease_owner")
