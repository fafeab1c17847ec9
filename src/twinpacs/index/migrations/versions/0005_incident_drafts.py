"""Incident drafts from the archive's own events: their condition key (one open draft per
condition), pre-classification, severity, review, and escalation deliveries.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incident_drafts") as batch:
        batch.add_column(sa.Column("condition", sa.String(160), nullable=False, server_default=""))
        batch.add_column(sa.Column("open_condition", sa.String(160), nullable=True))
        batch.add_column(sa.Column("classification", sa.Text, nullable=False, server_default="{}"))
        batch.add_column(sa.Column("severity", sa.String(16), nullable=False, server_default="warning"))
        batch.add_column(sa.Column("state", sa.String(16), nullable=False, server_default="open"))
        batch.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("reviewed_by", sa.String(128), nullable=False, server_default=""))
        batch.add_column(sa.Column("review_note", sa.Text, nullable=False, server_default=""))
    op.create_index("ix_incident_drafts_open_condition", "incident_drafts", ["open_condition"], unique=True)
    op.create_table(
        "incident_escalations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("draft_id", sa.Integer, sa.ForeignKey("incident_drafts.id"), nullable=False, index=True),
        sa.Column("receiver", sa.String(512), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("incident_escalations")
    op.drop_index("ix_incident_drafts_open_condition", "incident_drafts")
    with op.batch_alter_table("incident_drafts") as batch:
        for column in ("review_note", "reviewed_by", "reviewed_at", "state", "severity", "classification",
                       "open_condition", "condition"):
            batch.drop_column(column)
