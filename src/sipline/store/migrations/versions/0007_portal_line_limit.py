"""A portal's limit of lines, office and cloud together (README.md, REST settings).

Office lines had no limit, and every line is work for each voximplant.sip.get of the portal;
existing portals get the default, and keep the lines they have beyond it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("portal") as table:
        table.add_column(sa.Column("max_lines", sa.Integer, nullable=False, server_default="1000"))


def downgrade() -> None:
    with op.batch_alter_table("portal") as table:
        table.drop_column("max_lines")
