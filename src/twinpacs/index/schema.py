"""The index tables, as the queries see them. Migrations (migrations/versions) create them;
a test checks that the migrated database and this module agree."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ..core.model import INSTANCE_KEYS, PATIENT_KEYS, SERIES_KEYS, STUDY_KEYS

metadata = MetaData()

# DICOM text columns: PN may be 64 chars per component group; 256 leaves room everywhere.
_TEXT = 256


def _dicom_columns(keys: tuple[str, ...], unique_key: str | None) -> list[Column]:  # type: ignore[type-arg]
    return [
        Column(k, String(64), nullable=False, unique=True) if k == unique_key
        else Column(k, String(_TEXT), nullable=False, server_default="")
        for k in keys
    ]


patients = Table(
    "patients",
    metadata,
    Column("id", Integer, primary_key=True),
    *_dicom_columns(PATIENT_KEYS, None),
    Column("num_studies", Integer, nullable=False, server_default="0"),
    Column("num_series", Integer, nullable=False, server_default="0"),
    Column("num_instances", Integer, nullable=False, server_default="0"),
    UniqueConstraint("PatientID", "IssuerOfPatientID", name="uq_patient_identity"),
)

studies = Table(
    "studies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("patient_pk", Integer, ForeignKey("patients.id"), nullable=False, index=True),
    *_dicom_columns(STUDY_KEYS, "StudyInstanceUID"),
    Column("num_series", Integer, nullable=False, server_default="0"),
    Column("num_instances", Integer, nullable=False, server_default="0"),
    Index("ix_studies_date", "StudyDate"),
    Index("ix_studies_accession", "AccessionNumber"),
)

series = Table(
    "series",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("study_pk", Integer, ForeignKey("studies.id"), nullable=False, index=True),
    *_dicom_columns(SERIES_KEYS, "SeriesInstanceUID"),
    Column("num_instances", Integer, nullable=False, server_default="0"),
)

instances = Table(
    "instances",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("series_pk", Integer, ForeignKey("series.id"), nullable=False, index=True),
    *_dicom_columns(INSTANCE_KEYS, "SOPInstanceUID"),
    Column("transfer_syntax", String(64), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("source", String(128), nullable=False, server_default=""),
)

# Every other version of an instance that was ever received with different content.
# Nothing here is deleted by the application: it is what the conflict list shows.
instance_versions = Table(
    "instance_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("SOPInstanceUID", String(64), nullable=False, index=True),
    Column("content_hash", String(64), nullable=False),
    Column("transfer_syntax", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("source", String(128), nullable=False, server_default=""),
    Column("state", String(16), nullable=False),  # 'open' until an administrator resolves it
    Column("resolution", Text, nullable=False, server_default=""),
)

# The ordered change log: replication and audits read it as (since, limit).
changes = Table(
    "changes",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("SOPInstanceUID", String(64), nullable=False),
    Column("StudyInstanceUID", String(64), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

# Transactional outbox: one row per (change, peer), written in the store's transaction.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("change_seq", Integer, ForeignKey("changes.seq"), nullable=False),
    Column("peer", String(64), nullable=False),
    Column("SOPInstanceUID", String(64), nullable=False),
    Column("content_hash", String(64), nullable=False),
    # pending -> confirmed | unverified (sent, peer cannot confirm) | failed (gave up; visible)
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=False, server_default=""),
    Index("ix_outbox_peer_state", "peer", "state"),
    Index("ix_outbox_instance", "SOPInstanceUID"),
)

counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# Site state that outlives a restart and can differ from the configuration: the role after a failover.
site_state = Table(
    "site_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Downtime and degraded-state notices (G10).
notices = Table(
    "notices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("posted_at", DateTime(timezone=True), nullable=False),
    Column("cleared_at", DateTime(timezone=True), nullable=True),
    Column("severity", String(16), nullable=False),
    Column("title", String(256), nullable=False),
    Column("body", Text, nullable=False, server_default=""),
    Column("studies", Text, nullable=False, server_default="[]"),  # JSON list of study summaries
    Column("posted_by", String(128), nullable=False, server_default=""),
)

# Append-only record of operator actions (failovers, forced overrides). Never updated or deleted.
operator_log = Table(
    "operator_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("details", Text, nullable=False, server_default="{}"),  # JSON
)

# Incidents drafted by the archive itself; the incident register (a later issue) takes them over.
incident_drafts = Table(
    "incident_drafts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("site", String(64), nullable=False),
    Column("title", String(256), nullable=False),
    Column("description", Text, nullable=False),
    Column("details", Text, nullable=False, server_default="{}"),  # JSON
)

# One row per start of a serving site: the effective configuration (secrets masked) and the
# environment it ran in, with a hash, so that what changed between two starts can be shown (G7).
config_starts = Table(
    "config_starts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("fingerprint", String(64), nullable=False),  # sha256 of settings + environment
    Column("settings", Text, nullable=False),  # JSON: {"dotted.key": {"value": ..., "explicit": bool}}
    Column("environment", Text, nullable=False),  # JSON: versions, OS, database engine, storage path
    Column("source", Text, nullable=False, server_default=""),  # configuration file, if any
)

# Self-test runs (twinpacs selftest): each step's outcome and timing, to compare with the last run.
selftest_runs = Table(
    "selftest_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("passed", Integer, nullable=False),  # 1 or 0
    Column("steps", Text, nullable=False),  # JSON list of {"name", "ok", "seconds", "detail"}
)

# In a migration's target database only: how far each table was copied, so an interrupted
# `twinpacs migrate` resumes where it stopped.
migration_progress = Table(
    "migration_progress",
    metadata,
    Column("table_name", String(64), primary_key=True),
    Column("last_key", Text, nullable=False, server_default=""),  # JSON of the last copied primary key
    Column("copied", BigInteger, nullable=False, server_default="0"),
    Column("done", Integer, nullable=False, server_default="0"),
    Column("source", Text, nullable=False, server_default=""),  # the source URL (masked)
)
