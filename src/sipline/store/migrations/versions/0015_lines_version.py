"""A portal's lines version (a row of its own): bumped in the transaction of every change that voximplant.sip.get shows of
its lines, so that a process on a shared store can keep the portal's lines (opened secrets and all)
and check with one small read that they are still the latest (store/postgres.py).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lines_version",
        sa.Column(
            "portal_id",
            sa.Integer,
            sa.ForeignKey("portal.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.execute("INSERT INTO lines_version (portal_id) SELECT id FROM portal")


def downgrade() -> None:
    op.drop_table("lines_version")
