"""The index tables, as the queries see them. Migrations (migrations/versions) create them;
a test checks that the migrated database and this module agree."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
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
    false,
)
from sqlalchemy import DDL, event

from ..core.model import INSTANCE_KEYS, MAX_INDEXED_LENGTH, PATIENT_KEYS, SERIES_KEYS, STUDY_KEYS

metadata = MetaData()

_TEXT = MAX_INDEXED_LENGTH  # DICOM text columns; longer values are refused before storing


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
    # Higher goes first: a STAT order's images jump the queue (core/ris.py Priority.rank).
    Column("priority", Integer, nullable=False, server_default="0"),
    Index("ix_outbox_peer_state", "peer", "state"),
    Index("ix_outbox_instance", "SOPInstanceUID"),
    Index("ix_outbox_claim", "peer", "state", "priority", "id"),
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

# -- the RIS link (G9) -------------------------------------------------------------------------

# Patients as the RIS registered them (ADT). The images' own patient attributes stay in
# `patients`; a disagreement between the two is what the reconciliation list shows.
ris_patients = Table(
    "ris_patients",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("PatientID", String(64), nullable=False),
    Column("IssuerOfPatientID", String(64), nullable=False, server_default=""),
    Column("PatientName", String(_TEXT), nullable=False, server_default=""),
    Column("PatientBirthDate", String(16), nullable=False, server_default=""),
    Column("PatientSex", String(16), nullable=False, server_default=""),
    Column("merged_into", String(64), nullable=False, server_default=""),  # set by an A40 merge
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("PatientID", "IssuerOfPatientID", name="uq_ris_patient_identity"),
)

# Imaging orders (ORM^O01 / OMI^O23). Cancelled orders stay, marked.
orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("placer_number", String(64), nullable=False, unique=True),
    Column("filler_number", String(64), nullable=False, server_default=""),
    Column("accession_number", String(16), nullable=False, unique=True),
    Column("PatientID", String(64), nullable=False),
    Column("IssuerOfPatientID", String(64), nullable=False, server_default=""),
    Column("PatientName", String(_TEXT), nullable=False, server_default=""),
    Column("PatientBirthDate", String(16), nullable=False, server_default=""),
    Column("PatientSex", String(16), nullable=False, server_default=""),
    Column("procedure_code", String(64), nullable=False, server_default=""),
    Column("procedure_scheme", String(64), nullable=False, server_default=""),
    Column("procedure_text", String(_TEXT), nullable=False, server_default=""),
    Column("mapped_code", String(64), nullable=False, server_default=""),  # '' = unmapped
    Column("mapped_scheme", String(64), nullable=False, server_default=""),
    Column("mapped_meaning", String(_TEXT), nullable=False, server_default=""),
    Column("modality", String(16), nullable=False, server_default=""),
    Column("body_part", String(64), nullable=False, server_default=""),
    Column("scheduled_at", DateTime(timezone=True), nullable=True),
    Column("station_ae", String(16), nullable=False, server_default=""),
    Column("priority", String(16), nullable=False, server_default="ROUTINE"),
    Column("referring_physician", String(_TEXT), nullable=False, server_default=""),
    Column("reason", Text, nullable=False, server_default=""),
    Column("clinical_info", Text, nullable=False, server_default=""),
    Column("status", String(16), nullable=False, server_default="scheduled"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_orders_patient", "PatientID"),
    Index("ix_orders_scheduled", "scheduled_at"),
)

# Every HL7 message as received, with the acknowledgement it got: the audit of the RIS link.
hl7_messages = Table(
    "hl7_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("remote", String(128), nullable=False, server_default=""),
    Column("control_id", String(64), nullable=False, server_default=""),  # MSH-10
    Column("message_type", String(32), nullable=False, server_default=""),  # e.g. ADT^A01
    Column("raw", Text, nullable=False),
    Column("ack_code", String(2), nullable=False),  # AA, AE or AR
    Column("error", Text, nullable=False, server_default=""),
)

# A40 merges as applied, with what moved, so that each can be reversed by its record.
patient_merges = Table(
    "patient_merges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("surviving_id", String(64), nullable=False),
    Column("surviving_issuer", String(64), nullable=False, server_default=""),
    Column("prior_id", String(64), nullable=False),
    Column("prior_issuer", String(64), nullable=False, server_default=""),
    Column("message_id", String(64), nullable=False, server_default=""),
    Column("details", Text, nullable=False, server_default="{}"),  # JSON: studies, orders, prior values
    Column("reversed_at", DateTime(timezone=True), nullable=True),
    Column("reversed_by", String(128), nullable=False, server_default=""),
)

# Corrected attributes of a stored study (merge, reconciliation): applied to the index and to
# DICOMweb metadata; the stored files, pixel data included, are never rewritten (G2).
study_overrides = Table(
    "study_overrides",
    metadata,
    Column("StudyInstanceUID", String(64), primary_key=True),
    Column("attributes", Text, nullable=False),  # JSON: keyword -> corrected value
    Column("original", Text, nullable=False),  # JSON: keyword -> value before any correction
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# The RIS state's versions, for its replication to twinpacs peers (core/ris_sync.py): one row
# per order (by placer number), RIS patient (PatientID, backslash, issuer) and study correction
# (Study Instance UID; the row stays when the correction is undone, so the undoing is sent too).
ris_versions = Table(
    "ris_versions",
    metadata,
    Column("kind", String(16), primary_key=True),  # order | patient | study
    Column("row_key", String(160), primary_key=True),
    # This site's sequence (counters 'ris_revision'): a peer has what is at or below its confirmed revision.
    Column("revision", BigInteger, nullable=False),
    Column("origin", String(64), nullable=False, server_default=""),  # '' = changed here, else the site it came from
    Column("origin_revision", BigInteger, nullable=False),  # the revision at the origin
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_ris_versions_revision", "revision"),
)

# Per twinpacs peer: the RIS revision up to which it confirmed receiving everything.
ris_peers = Table(
    "ris_peers",
    metadata,
    Column("peer", String(64), primary_key=True),
    Column("confirmed_revision", BigInteger, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Prefetching of priors: one job per order, one row per prior study found at a source.
prefetch_jobs = Table(
    "prefetch_jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, ForeignKey("orders.id"), nullable=False, unique=True),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("state", String(16), nullable=False),  # pending | running | done | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("detail", Text, nullable=False, server_default=""),
    # Bumped at every claim and reset: a worker settles only the claim it made.
    Column("claims", Integer, nullable=False, server_default="0"),
    # The first study metadata request of the order's study: were its relevant priors all here?
    Column("opened_at", DateTime(timezone=True), nullable=True),
    Column("opened_study", String(64), nullable=False, server_default=""),
    Column("opened_hit", Boolean, nullable=True),
    Column("opened_missing", Integer, nullable=False, server_default="0"),
    Index("ix_prefetch_jobs_state", "state", "priority"),
)

prefetch_studies = Table(
    "prefetch_studies",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, ForeignKey("prefetch_jobs.id"), nullable=False, index=True),
    Column("source", String(64), nullable=False),
    Column("StudyInstanceUID", String(64), nullable=False),
    Column("StudyDate", String(16), nullable=False, server_default=""),
    Column("modalities", String(64), nullable=False, server_default=""),
    Column("description", String(_TEXT), nullable=False, server_default=""),
    # chosen -> fetched | failed; or local (already here), not-relevant (with the rule's reason)
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("instances", Integer, nullable=False, server_default="0"),
    Column("error", Text, nullable=False, server_default=""),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# -- incident drafts from the archive's own events (issue 8; revision 0005) --------------------

# What condition raised a draft (e.g. "sync_gap:B"), and the same key while the draft is open:
# NULL once reviewed, so the unique index allows one open draft per condition and any number
# of reviewed ones.
incident_drafts.append_column(Column("condition", String(160), nullable=False, server_default=""))
incident_drafts.append_column(Column("open_condition", String(160), nullable=True))
# JSON: {"problem_types": [HIT-CS ids], "consequence": id, "workflow_steps": [1..18], "basis": ...}
incident_drafts.append_column(Column("classification", Text, nullable=False, server_default="{}"))
incident_drafts.append_column(Column("severity", String(16), nullable=False, server_default="warning"))
incident_drafts.append_column(Column("state", String(16), nullable=False, server_default="open"))  # open | reviewed
incident_drafts.append_column(Column("reviewed_at", DateTime(timezone=True), nullable=True))
incident_drafts.append_column(Column("reviewed_by", String(128), nullable=False, server_default=""))
incident_drafts.append_column(Column("review_note", Text, nullable=False, server_default=""))
Index("ix_incident_drafts_open_condition", incident_drafts.c.open_condition, unique=True)

# One row per (draft, webhook receiver): the escalation's delivery, attempt by attempt.
incident_escalations = Table(
    "incident_escalations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("draft_id", Integer, ForeignKey("incident_drafts.id"), nullable=False, index=True),
    Column("receiver", String(512), nullable=False),  # the URL as shown: secrets masked
    Column("state", String(16), nullable=False),  # sending | delivered | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# -- the incident register (issue 8; revision 0006) ------------------------------------------

# One row per incident, its current state. `fields` (JSON) holds every register field
# (core.incident_register.FIELDS); event_date, subject and consequence are copied out of it
# for listing and counting. `version` is the number of the latest incident_versions row.
incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(128), nullable=False),
    Column("event_date", String(10), nullable=False),  # YYYY-MM-DD
    Column("subject", Text, nullable=False),
    Column("consequence", String(32), nullable=False, server_default=""),
    # A draft is taken over once (NULLs do not collide: incidents entered by hand have none).
    Column("source_draft", Integer, ForeignKey("incident_drafts.id"), nullable=True, unique=True),
    Column("fields", Text, nullable=False),
)

# Every change of an incident, creation included: who, when, and per field from what to what.
incident_versions = Table(
    "incident_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Column("changed_by", String(128), nullable=False),
    Column("changes", Text, nullable=False),  # JSON: {field: {"from": old, "to": new}}
    UniqueConstraint("incident_id", "version", name="uq_incident_versions_incident_version"),
)

# -- the access audit trail (issue 9; revision 0008) -----------------------------------------

# One row per access to patient data: who (principal), from where (door, address), on what
# (patient, study), what (action, detail), when, with which outcome. Append-only: the
# application has no UPDATE or DELETE on it, and triggers refuse them on both backends.
access_trail = Table(
    "access_trail",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("site", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("door", String(8), nullable=False),
    Column("principal_name", String(128), nullable=False),
    Column("principal_role", String(32), nullable=False),
    Column("principal_kind", String(16), nullable=False),
    Column("address", String(64), nullable=False, server_default=""),
    Column("patient_id", String(64), nullable=False, server_default=""),
    Column("study_uid", String(64), nullable=False, server_default=""),
    Column("detail", Text, nullable=False, server_default=""),
    Index("ix_access_trail_at", "at"),
    Index("ix_access_trail_patient", "patient_id"),
    Index("ix_access_trail_study", "study_uid"),
    Index("ix_access_trail_principal", "principal_name"),
)

# The triggers, as revision 0008 creates them; attached here for metadata.create_all too.
ACCESS_TRAIL_TRIGGERS = {
    "sqlite": (
        "CREATE TRIGGER access_trail_no_update BEFORE UPDATE ON access_trail "
        "BEGIN SELECT RAISE(ABORT, 'access_trail is append-only'); END",
        "CREATE TRIGGER access_trail_no_delete BEFORE DELETE ON access_trail "
        "BEGIN SELECT RAISE(ABORT, 'access_trail is append-only'); END",
    ),
    "postgresql": (
        "CREATE FUNCTION access_trail_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'access_trail is append-only'; END $$",
        "CREATE TRIGGER access_trail_append_only BEFORE UPDATE OR DELETE ON access_trail "
        "FOR EACH ROW EXECUTE FUNCTION access_trail_append_only()",
    ),
}
for _dialect, _statements in ACCESS_TRAIL_TRIGGERS.items():
    for _statement in _statements:
        event.listen(access_trail, "after_create", DDL(_statement).execute_if(dialect=_dialect))

# -- accounts of the HTTP door (issue 9; revision 0007) --------------------------------------

# Local users: name, role (core.accounts.ROLES), argon2id password hash; disabled users are kept.
accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(32), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# API tokens of users, as SHA-256 hex of the token (the token is shown once, never stored).
account_tokens = Table(
    "account_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Login sessions, by SHA-256 hex of the session id the cookie carries; each with its CSRF token.
login_sessions = Table(
    "login_sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

# Login attempts of the last minute, per key (a client address, a user name) as SHA-256 hex: a
# name typed in the wrong box may be a password. Shared by every process on this index, so the
# limit holds for a site served by several (core.accounts.RateLimit); older rows are pruned.
login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_hash", String(64), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
)
