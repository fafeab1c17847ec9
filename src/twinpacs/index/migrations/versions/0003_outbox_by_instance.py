"""Outbox rows by SOP Instance UID: commitment, sync status and self-test removal look rows
up per instance, which scanned the whole outbox without this index.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_instance", "outbox", ["SOPInstanceUID"])


def downgrade() -> None:
    op.drop_index("ix_outbox_instance", "outbox")
