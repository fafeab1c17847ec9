"""Upgrade safety: configuration starts (fingerprint history), self-test runs, and the
progress of a database migration (in its target database).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "config_starts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("environment", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "selftest_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("passed", sa.Integer, nullable=False),
        sa.Column("steps", sa.Text, nullable=False),
    )
    op.create_table(
        "migration_progress",
        sa.Column("table_name", sa.String(64), primary_key=True),
        sa.Column("last_key", sa.Text, nullable=False, server_default=""),
        sa.Column("copied", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
    )


def downgrade() -> None:
    for table in ("migration_progress", "selftest_runs", "config_starts"):
        op.drop_table(table)
