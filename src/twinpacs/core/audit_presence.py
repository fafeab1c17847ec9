"""Audits from flat instance listings: a third-party archive answers DICOM queries (QIDO-RS,
C-FIND at IMAGE level), not digest requests, so its listing is arranged into the same
patient -> study -> series -> instance tree in memory and audited with core.audit.

Such an archive cannot tell the content hash of what it holds, so both sides are compared
with the hash left empty: presence only. That is said in the report, never glossed over.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .audit import AuditLevel, Digester, Node, patient_key

_STUDY_ATTRIBUTES = ("StudyInstanceUID", "StudyDate", "AccessionNumber")


@dataclass(frozen=True)
class Entry:
    """One instance as a listing names it, with the attributes a report shows."""

    SOPInstanceUID: str
    SeriesInstanceUID: str
    StudyInstanceUID: str
    PatientID: str = ""
    PatientName: str = ""
    IssuerOfPatientID: str = ""
    AccessionNumber: str = ""
    StudyDate: str = ""
    Modality: str = ""
    content_hash: str = ""  # empty when the archive cannot tell
    size: int = 0

    def presence_only(self) -> Entry:
        # The issuer is dropped too: few archives return IssuerOfPatientID in a C-FIND.
        return replace(self, content_hash="", size=0, IssuerOfPatientID="")


class TreeSource:
    """A DigestSource over an in-memory listing."""

    def __init__(self, name: str, entries: Iterable[Entry], presence_only: bool = True) -> None:
        self.name = name
        self._entries = sorted((e.presence_only() if presence_only else e for e in entries),
                               key=lambda e: e.SOPInstanceUID)

    def top(self) -> Node:
        return _digest(self._entries).node("")

    def children(self, level: AuditLevel, parent: str) -> list[Node]:
        groups: dict[str, list[Entry]] = defaultdict(list)
        for entry in self._entries:
            if _parent_of(entry, level) == parent:
                groups[_key_of(entry, level)].append(entry)
        if level is AuditLevel.INSTANCE:
            return [Node(uid, e[0].content_hash, 1, e[0].size) for uid, e in sorted(groups.items())]
        return [_digest(members).node(key, _attributes(members[0], level)) for key, members in sorted(groups.items())]


def _digest(entries: Iterable[Entry]) -> Digester:
    digester = Digester()
    for e in entries:
        digester.add(e.SOPInstanceUID, e.content_hash, e.size)
    return digester


def _key_of(entry: Entry, level: AuditLevel) -> str:
    if level is AuditLevel.PATIENT:
        return patient_key(entry.PatientID, entry.IssuerOfPatientID)
    if level is AuditLevel.STUDY:
        return entry.StudyInstanceUID
    if level is AuditLevel.SERIES:
        return entry.SeriesInstanceUID
    return entry.SOPInstanceUID


def _parent_of(entry: Entry, level: AuditLevel) -> str:
    if level is AuditLevel.PATIENT:
        return ""
    if level is AuditLevel.STUDY:
        return patient_key(entry.PatientID, entry.IssuerOfPatientID)
    if level is AuditLevel.SERIES:
        return entry.StudyInstanceUID
    return entry.SeriesInstanceUID


def _attributes(entry: Entry, level: AuditLevel) -> dict[str, str]:
    if level is AuditLevel.PATIENT:
        return {"PatientID": entry.PatientID, "PatientName": entry.PatientName,
                "IssuerOfPatientID": entry.IssuerOfPatientID}
    if level is AuditLevel.STUDY:
        return {"PatientID": entry.PatientID, "PatientName": entry.PatientName,
                **{k: getattr(entry, k) for k in _STUDY_ATTRIBUTES}}
    return {"SeriesInstanceUID": entry.SeriesInstanceUID, "Modality": entry.Modality}
