"""The access trail's vocabulary (issue 9): every access to patient data, by whom, from where,
on what, with which outcome. The doors (DICOM, HTTP, HL7, commands) build an AccessEntry and
hand it to the site's AccessTrail; the trail is append-only (index/access_trail.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from .principal import Principal

Action = Literal[
    "query", "retrieve", "view", "export", "store", "correction", "merge", "deletion",
    "failover", "configuration", "login", "logout",
]
Outcome = Literal["success", "refused", "failed"]
Door = Literal["dicom", "http", "hl7", "cli"]


@dataclass(frozen=True)
class AccessEntry:
    principal: Principal
    action: Action
    outcome: Outcome
    door: Door
    patient_id: str = ""
    study_uid: str = ""
    detail: str = ""  # what exactly: the route or service, the query keys, how many objects


class AccessTrail(Protocol):
    def record(self, entry: AccessEntry) -> None:
        """Append one entry durably; never raises into the caller's request."""
