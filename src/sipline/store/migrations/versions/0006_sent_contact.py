"""The Contact of a cloud line's last REGISTER sent, stored before it leaves (docs/behaviour.md#reg-lifecycle).

A worker killed or stopped between sending a REGISTER with a new Contact and storing its outcome
leaves a binding the store did not know of; with this column the next owner retires it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registration") as table:
        table.add_column(sa.Column("sent_contact", sa.String(255)))


def downgrade() -> None:
    with op.batch_alter_table("registration") as table:
        table.drop_column("sent_contact")
