"""Incident drafts from the archive's own events: their condition key (one open draft per
condition), pre-classification and escalation deliveries.

Revision ID: 0005
Revises: 0004
"""

from alembic import op  # noqa: F401

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
