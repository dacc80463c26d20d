"""Digest algorithms chosen per portal and per office line (docs/behaviour.md#office-digest).

The service's default is MD5 alone; a portal or an office line may offer SHA-256
(first) instead or as well. NULL follows the portal, then the service.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("portal") as table:
        table.add_column(sa.Column("digest_algorithms", sa.String(64)))
    with op.batch_alter_table("line") as table:
        table.add_column(sa.Column("digest_algorithms", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("line") as table:
        table.drop_column("digest_algorithms")
    with op.batch_alter_table("portal") as table:
        table.drop_column("digest_algorithms")
