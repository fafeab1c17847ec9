"""The RIS link (G9): RIS patients, orders, HL7 messages as received, patient merges, corrected
study attributes, the RIS state's versions and each peer's confirmed revision (replication of
the RIS state), prefetch jobs; and the outbox's priority, so STAT images are sent first.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("priority", sa.Integer, nullable=False, server_default="0"))
    op.create_index("ix_outbox_claim", "outbox", ["peer", "state", "priority", "id"])
    op.create_table(
        "ris_patients",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("PatientID", sa.String(64), nullable=False),
        sa.Column("IssuerOfPatientID", sa.String(64), nullable=False, server_default=""),
        sa.Column("PatientName", sa.String(256), nullable=False, server_default=""),
        sa.Column("PatientBirthDate", sa.String(16), nullable=False, server_default=""),
        sa.Column("PatientSex", sa.String(16), nullable=False, server_default=""),
        sa.Column("merged_into", sa.String(64), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("PatientID", "IssuerOfPatientID", name="uq_ris_patient_identity"),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("placer_number", sa.String(64), nullable=False, unique=True),
        sa.Column("filler_number", sa.String(64), nullable=False, server_default=""),
        sa.Column("accession_number", sa.String(16), nullable=False, unique=True),
        sa.Column("PatientID", sa.String(64), nullable=False),
        sa.Column("IssuerOfPatientID", sa.String(64), nullable=False, server_default=""),
        sa.Column("PatientName", sa.String(256), nullable=False, server_default=""),
        sa.Column("PatientBirthDate", sa.String(16), nullable=False, server_default=""),
        sa.Column("PatientSex", sa.String(16), nullable=False, server_default=""),
        sa.Column("procedure_code", sa.String(64), nullable=False, server_default=""),
        sa.Column("procedure_scheme", sa.String(64), nullable=False, server_default=""),
        sa.Column("procedure_text", sa.String(256), nullable=False, server_default=""),
        sa.Column("mapped_code", sa.String(64), nullable=False, server_default=""),
        sa.Column("mapped_scheme", sa.String(64), nullable=False, server_default=""),
        sa.Column("mapped_meaning", sa.String(256), nullable=False, server_default=""),
        sa.Column("modality", sa.String(16), nullable=False, server_default=""),
        sa.Column("body_part", sa.String(64), nullable=False, server_default=""),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("station_ae", sa.String(16), nullable=False, server_default=""),
        sa.Column("priority", sa.String(16), nullable=False, server_default="ROUTINE"),
        sa.Column("referring_physician", sa.String(256), nullable=False, server_default=""),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("clinical_info", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.String(16), nullable=False, server_default="scheduled"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_orders_patient", "orders", ["PatientID"])
    op.create_index("ix_orders_scheduled", "orders", ["scheduled_at"])
    op.create_table(
        "hl7_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("remote", sa.String(128), nullable=False, server_default=""),
        sa.Column("control_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("message_type", sa.String(32), nullable=False, server_default=""),
        sa.Column("raw", sa.Text, nullable=False),
        sa.Column("ack_code", sa.String(2), nullable=False),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "patient_merges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("surviving_id", sa.String(64), nullable=False),
        sa.Column("surviving_issuer", sa.String(64), nullable=False, server_default=""),
        sa.Column("prior_id", sa.String(64), nullable=False),
        sa.Column("prior_issuer", sa.String(64), nullable=False, server_default=""),
        sa.Column("message_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("details", sa.Text, nullable=False, server_default="{}"),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reversed_by", sa.String(128), nullable=False, server_default=""),
    )
    op.create_table(
        "study_overrides",
        sa.Column("StudyInstanceUID", sa.String(64), primary_key=True),
        sa.Column("attributes", sa.Text, nullable=False),
        sa.Column("original", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ris_versions",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("row_key", sa.String(160), primary_key=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("origin", sa.String(64), nullable=False, server_default=""),
        sa.Column("origin_revision", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ris_versions_revision", "ris_versions", ["revision"])
    op.create_table(
        "ris_peers",
        sa.Column("peer", sa.String(64), primary_key=True),
        sa.Column("confirmed_revision", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "prefetch_jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False, unique=True),
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("claims", sa.Integer, nullable=False, server_default="0"),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_study", sa.String(64), nullable=False, server_default=""),
        sa.Column("opened_hit", sa.Boolean, nullable=True),
        sa.Column("opened_missing", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_prefetch_jobs_state", "prefetch_jobs", ["state", "priority"])
    op.create_table(
        "prefetch_studies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("prefetch_jobs.id"), nullable=False, index=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("StudyInstanceUID", sa.String(64), nullable=False),
        sa.Column("StudyDate", sa.String(16), nullable=False, server_default=""),
        sa.Column("modalities", sa.String(64), nullable=False, server_default=""),
        sa.Column("description", sa.String(256), nullable=False, server_default=""),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("instances", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for table in ('prefetch_studies', 'prefetch_jobs', 'ris_peers', 'ris_versions', 'study_overrides', 'patient_merges', 'hl7_messages', 'orders', 'ris_patients'):
        op.drop_table(table)
    op.drop_index("ix_outbox_claim", "outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("priority")
