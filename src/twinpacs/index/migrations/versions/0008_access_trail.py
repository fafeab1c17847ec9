"""The append-only access audit trail (issue 9): one row per access to patient data. Triggers
refuse UPDATE and DELETE on both backends, so not even a hand-written statement rewrites it.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# A copy, not an import, of index/schema.py's statements: a migration must not change afterwards.
_SQLITE = (
    "CREATE TRIGGER access_trail_no_update BEFORE UPDATE ON access_trail "
    "BEGIN SELECT RAISE(ABORT, 'access_trail is append-only'); END",
    "CREATE TRIGGER access_trail_no_delete BEFORE DELETE ON access_trail "
    "BEGIN SELECT RAISE(ABORT, 'access_trail is append-only'); END",
)
_POSTGRESQL = (
    "CREATE FUNCTION access_trail_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'access_trail is append-only'; END $$",
    "CREATE TRIGGER access_trail_append_only BEFORE UPDATE OR DELETE ON access_trail "
    "FOR EACH ROW EXECUTE FUNCTION access_trail_append_only()",
)


def upgrade() -> None:
    op.create_table(
        "access_trail",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("door", sa.String(8), nullable=False),
        sa.Column("principal_name", sa.String(128), nullable=False),
        sa.Column("principal_role", sa.String(32), nullable=False),
        sa.Column("principal_kind", sa.String(16), nullable=False),
        sa.Column("address", sa.String(64), nullable=False, server_default=""),
        sa.Column("patient_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("study_uid", sa.String(64), nullable=False, server_default=""),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_access_trail_at", "access_trail", ["at"])
    op.create_index("ix_access_trail_patient", "access_trail", ["patient_id"])
    op.create_index("ix_access_trail_study", "access_trail", ["study_uid"])
    op.create_index("ix_access_trail_principal", "access_trail", ["principal_name"])
    dialect = op.get_bind().dialect.name
    for statement in _POSTGRESQL if dialect == "postgresql" else _SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER access_trail_append_only ON access_trail")
        op.execute("DROP FUNCTION access_trail_append_only()")
    else:
        op.execute("DROP TRIGGER access_trail_no_update")
        op.execute("DROP TRIGGER access_trail_no_delete")
    op.drop_table("access_trail")
