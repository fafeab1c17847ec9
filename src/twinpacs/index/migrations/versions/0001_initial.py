"""Initial index: patients, studies, series, instances, versions, change log, outbox, counters,
site state, notices, operator log, incident drafts.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the keyword lists at this revision: later revisions must not change them.
PATIENT = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "IssuerOfPatientID")
STUDY = ("StudyDate", "StudyTime", "AccessionNumber", "StudyID", "StudyDescription", "ReferringPhysicianName")
SERIES = ("Modality", "SeriesNumber", "SeriesDescription", "SeriesDate", "SeriesTime", "BodyPartExamined")
INSTANCE = ("SOPClassUID", "InstanceNumber", "NumberOfFrames", "Rows", "Columns")


def _text(*names: str) -> list[sa.Column]:
    return [sa.Column(n, sa.String(256), nullable=False, server_default="") for n in names]


def _uid(name: str) -> sa.Column:
    return sa.Column(name, sa.String(64), nullable=False, unique=True)


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer, nullable=False, server_default="0")


def upgrade() -> None:
    op.create_table(
        "patients",
        sa.Column("id", sa.Integer, primary_key=True),
        *_text(*PATIENT),
        _count("num_studies"), _count("num_series"), _count("num_instances"),
        sa.UniqueConstraint("PatientID", "IssuerOfPatientID", name="uq_patient_identity"),
    )
    op.create_table(
        "studies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("patient_pk", sa.Integer, sa.ForeignKey("patients.id"), nullable=False, index=True),
        _uid("StudyInstanceUID"),
        *_text(*STUDY),
        _count("num_series"), _count("num_instances"),
    )
    op.create_index("ix_studies_date", "studies", ["StudyDate"])
    op.create_index("ix_studies_accession", "studies", ["AccessionNumber"])
    op.create_table(
        "series",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_pk", sa.Integer, sa.ForeignKey("studies.id"), nullable=False, index=True),
        _uid("SeriesInstanceUID"),
        *_text(*SERIES),
        _count("num_instances"),
    )
    op.create_table(
        "instances",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("series_pk", sa.Integer, sa.ForeignKey("series.id"), nullable=False, index=True),
        _uid("SOPInstanceUID"),
        *_text(*INSTANCE),
        sa.Column("transfer_syntax", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(128), nullable=False, server_default=""),
    )
    op.create_table(
        "instance_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("SOPInstanceUID", sa.String(64), nullable=False, index=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("transfer_syntax", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(128), nullable=False, server_default=""),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("resolution", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "changes",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("SOPInstanceUID", sa.String(64), nullable=False),
        sa.Column("StudyInstanceUID", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("change_seq", sa.Integer, sa.ForeignKey("changes.seq"), nullable=False),
        sa.Column("peer", sa.String(64), nullable=False),
        sa.Column("SOPInstanceUID", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_outbox_peer_state", "outbox", ["peer", "state"])
    op.create_table(
        "counters",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "site_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("title", sa.String(256), nullable=False),
        sa.Column("body", sa.Text, nullable=False, server_default=""),
        sa.Column("studies", sa.Text, nullable=False, server_default="[]"),
        sa.Column("posted_by", sa.String(128), nullable=False, server_default=""),
    )
    op.create_table(
        "operator_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("details", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_table(
        "incident_drafts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("title", sa.String(256), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False, server_default="{}"),
    )


def downgrade() -> None:
    for table in ("incident_drafts", "operator_log", "notices", "site_state", "counters", "outbox", "changes", "instance_versions", "instances", "series", "studies", "patients"):
        op.drop_table(table)
