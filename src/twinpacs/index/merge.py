"""A40 patient merges applied to the index, and their reversal (owned by the merge work)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from ..core.ris import MergeRecord, Patient


def merge_patients(conn: Connection, surviving: Patient, prior_id: str, prior_issuer: str, at: datetime,
                   message_id: str) -> MergeRecord:
    raise NotImplementedError


def reverse_merge(conn: Connection, merge_id: int, at: datetime, actor: str) -> MergeRecord:
    raise NotImplementedError
