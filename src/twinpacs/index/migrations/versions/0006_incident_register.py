"""The incident register: incidents with their report fields and analysis, every version kept.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("event_date", sa.String(10), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("consequence", sa.String(32), nullable=False, server_default=""),
        sa.Column("source_draft", sa.Integer, sa.ForeignKey("incident_drafts.id"), nullable=True,
                  unique=True),
        sa.Column("fields", sa.Text, nullable=False),
    )
    op.create_table(
        "incident_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(128), nullable=False),
        sa.Column("changes", sa.Text, nullable=False),
        sa.UniqueConstraint("incident_id", "version", name="uq_incident_versions_incident_version"),
    )


def downgrade() -> None:
    op.drop_table("incident_versions")
    op.drop_table("incidents")
