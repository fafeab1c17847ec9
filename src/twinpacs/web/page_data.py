"""What the worklist and the study page read besides orders (blocking: call in the thread pool):
where a study's images are (held here; confirmed, pending or failed at each peer, from the
replication outbox as sync status counts it), the prefetch state of an order's priors (the
/api/prefetch data), and the most recent relevant prior held here (the prefetch rules of
core/prefetch.py, applied to this site's own studies)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time, timezone
from typing import Any

from ..app import Site
from ..core.archive import utcnow
from ..core.model import Level, StoredInstance
from ..core.prefetch import FAILED, LOCAL, PENDING, RUNNING, Candidate, Rules, choose, study_date
from ..core.query import build_query
from ..core.ris import Order, Patient
from ..index.prefetch import SqlPrefetch
from ..index.selftest import replication_states

NOT_QUEUED = "not queued"  # held here, no outbox row for the peer (stored before it was configured)
_CHUNK = 500  # UIDs per IN (...) list
STUDY_KEYS = ("StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "PatientName", "PatientID",
              "PatientBirthDate", "PatientSex", "StudyDescription", "ModalitiesInStudy",
              "ReferringPhysicianName")


@dataclass(frozen=True)
class PeerCopy:
    """One peer's copy of a set of instances: how many are in each replication state."""

    peer: str
    total: int
    states: dict[str, int]

    @property
    def confirmed(self) -> int:
        return self.states.get("confirmed", 0)

    @property
    def level(self) -> str:
        """ok: the peer is confirmed to hold every one; failed: some gave up; else pending."""
        if self.confirmed == self.total:
            return "ok"
        return "failed" if self.states.get("failed") else "pending"

    @property
    def summary(self) -> str:
        if self.level == "ok":
            return f"all {self.total} confirmed"
        rest = ", ".join(f"{n} {state}" for state, n in sorted(self.states.items()) if state != "confirmed" and n)
        return f"{self.confirmed} of {self.total} confirmed, {rest}"


@dataclass(frozen=True)
class Copies:
    """Where a study's images are: `held` here, and each peer's copy."""

    held: int
    peers: list[PeerCopy]


def copies(site: Site, held: Sequence[StoredInstance]) -> dict[str, Copies]:
    """Study Instance UID -> its copies, for the given current instances held here."""
    states: dict[str, dict[str, str]] = {}
    uids = [i.sop_instance_uid for i in held]
    for start in range(0, len(uids), _CHUNK):
        states.update(replication_states(site.index.db, uids[start:start + _CHUNK]))
    by_study: dict[str, list[StoredInstance]] = {}
    for instance in held:
        by_study.setdefault(instance.study_instance_uid, []).append(instance)
    peers = [p.name for p in site.settings.peers]
    return {
        study: Copies(len(found), [
            PeerCopy(peer, len(found), dict(Counter(states.get(i.sop_instance_uid, {}).get(peer, NOT_QUEUED)
                                                    for i in found)))
            for peer in peers])
        for study, found in by_study.items()
    }


def held_instances(site: Site, study_uids: Iterable[str]) -> list[StoredInstance]:
    uids = list(dict.fromkeys(study_uids))
    found: list[StoredInstance] = []
    for start in range(0, len(uids), _CHUNK):
        found += site.index.stored_instances({"StudyInstanceUID": "\\".join(uids[start:start + _CHUNK])})
    return found


def find_studies(site: Site, criteria: dict[str, str], limit: int | None = None) -> list[dict[str, str]]:
    """Stored studies (corrections included) as keyword -> text, via the archive's query."""
    keys = {k: "" for k in STUDY_KEYS} | criteria
    return site.archive.find(build_query(Level.STUDY, keys, STUDY_KEYS, limit))


@dataclass(frozen=True)
class Prefetch:
    """An order's prefetch job, as /api/prefetch shows it, in a line."""

    state: str
    summary: str
    level: str  # ok, pending, failed


def prefetch_of(site: Site, accession_number: str) -> Prefetch | None:
    """The prefetch job of the order with this accession number; None when it has none."""
    jobs = SqlPrefetch(site.index.db).status(1, accession_number) if accession_number else []
    if not jobs:
        return None
    job, counts = jobs[0]["job"], jobs[0]["counts"]
    found = ", ".join(f"{counts[s]} {label}" for s, label in
                      (("fetched", "fetched"), (LOCAL, "already here"), ("chosen", "to fetch"), (FAILED, "failed"))
                      if counts.get(s))
    state = job["state"]
    if state == PENDING:
        tries = f" after {job['attempts']} attempt(s): {job['detail']}" if job["attempts"] else ""
        return Prefetch(state, f"waiting{tries}", "pending")
    if state == RUNNING:
        return Prefetch(state, "searching and fetching now", "pending")
    if state == FAILED:
        return Prefetch(state, f"failed after {job['attempts']} attempt(s): {job['detail']}", "failed")
    return Prefetch(state, f"done: {found}" if found else "done: no relevant prior found", "ok")


def relevant_prior(site: Site, study: dict[str, str], order: Order | None,
                   patient_studies: list[dict[str, str]]) -> dict[str, str] | None:
    """The most recent relevant prior of `study` held here, by the prefetch rules ([prefetch]
    same_modality, same_body_part, within_years) with the study's own date as the reference;
    `patient_studies` are the patient's studies held here."""
    if not study.get("PatientID"):
        return None
    p = site.settings.prefetch
    rules = Rules(p.same_modality, p.same_body_part, p.within_years, max(1, p.max_studies))
    modalities = [m for m in study.get("ModalitiesInStudy", "").split("\\") if m]
    day = study_date(study.get("StudyDate", ""))
    reference = datetime.combine(day, time(23, 59), timezone.utc) if day else None
    base = order or Order("", study.get("AccessionNumber", ""), Patient(study["PatientID"]),
                          modality=modalities[0] if modalities else "")
    subject = replace(base, scheduled_at=reference or base.scheduled_at)
    candidates = [Candidate("here", s["StudyInstanceUID"], s["PatientID"], s.get("AccessionNumber", ""),
                            s.get("StudyDate", ""), s.get("StudyTime", ""),
                            tuple(m for m in s.get("ModalitiesInStudy", "").split("\\") if m), (),
                            s.get("StudyDescription", ""))
                  for s in patient_studies if s["StudyInstanceUID"] != study["StudyInstanceUID"]]
    by_uid = {s["StudyInstanceUID"]: s for s in patient_studies}
    decisions = choose(subject, candidates, rules, set(by_uid), utcnow())
    return next((by_uid[d.candidate.study_uid] for d in decisions if d.state == LOCAL), None)


def patient_studies(site: Site, patient_id: str, cache: dict[str, list[dict[str, str]]]) -> list[dict[str, str]]:
    if patient_id not in cache:
        cache[patient_id] = find_studies(site, {"PatientID": patient_id}) if patient_id else []
    return cache[patient_id]


def describe(value: Any) -> str:
    """A value from a JSON-ish structure as one line of text (config values, step details)."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
