"""G5: audit two archives against each other and list exactly what differs.

Each archive is seen through a `DigestSource`: a tree patient -> study -> series -> instance
where every node carries a digest of everything below it. The auditor compares the two top
digests; only where they differ does it ask for the children, and only the children whose
digests differ are descended into. Two identical archives are therefore confirmed with one
request per side, and a single lost instance is found with a handful of requests per level,
never by listing everything.

The digest of a node is SHA-256 over the lines "SOPInstanceUID NUL content_hash LF" of every
instance below it, in SOPInstanceUID order (see `Digester`). A flat digest, not a Merkle
tree: each side can compute it from its index in one ordered scan, without caches that could
themselves go stale. Against a third-party archive the content hash is unknown and left
empty, which turns the same comparison into a presence check (see audit_presence.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class AuditLevel(str, Enum):
    PATIENT = "patient"
    STUDY = "study"
    SERIES = "series"
    INSTANCE = "instance"


CHILD_LEVEL = {AuditLevel.PATIENT: AuditLevel.STUDY, AuditLevel.STUDY: AuditLevel.SERIES,
               AuditLevel.SERIES: AuditLevel.INSTANCE}

PLURAL = {AuditLevel.PATIENT: "patients", AuditLevel.STUDY: "studies", AuditLevel.SERIES: "series",
          AuditLevel.INSTANCE: "instances"}

# The attribute each level's key is; a patient's key is PatientID and issuer (see patient_key).
KEY_ATTRIBUTE = {AuditLevel.STUDY: "StudyInstanceUID", AuditLevel.SERIES: "SeriesInstanceUID",
                 AuditLevel.INSTANCE: "SOPInstanceUID"}


def patient_key(patient_id: str, issuer: str) -> str:
    """PatientID and IssuerOfPatientID joined by a backslash, which neither LO value may hold."""
    return f"{patient_id}\\{issuer}"


class Digester:
    """Accumulates the digest of one node from its instances, fed in SOPInstanceUID order."""

    __slots__ = ("_hash", "instances", "size")

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.instances = 0
        self.size = 0

    def add(self, sop_instance_uid: str, content_hash: str, size: int) -> None:
        self._hash.update(f"{sop_instance_uid}\0{content_hash}\n".encode("ascii", "replace"))
        self.instances += 1
        self.size += size

    def node(self, key: str, attributes: dict[str, str] | None = None) -> Node:
        return Node(key, self._hash.hexdigest(), self.instances, self.size, attributes or {})


@dataclass(frozen=True)
class Node:
    """One patient, study, series or instance as one archive holds it. For an instance the
    digest is its content hash (empty when the archive cannot tell) and `instances` is 1."""

    key: str
    digest: str
    instances: int
    size: int
    attributes: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "digest": self.digest, "instances": self.instances, "size": self.size,
                "attributes": self.attributes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Node:
        return cls(str(data["key"]), str(data["digest"]), int(data["instances"]), int(data["size"]),
                   {str(k): str(v) for k, v in data.get("attributes", {}).items()})


class DigestSource(Protocol):
    """An archive as the auditor sees it: the local index, a twinpacs site over HTTP, or a
    tree built from a third-party archive's query results."""

    name: str

    def top(self) -> Node:
        """The whole archive: its digest, instance count and total size."""
        ...

    def children(self, level: AuditLevel, parent: str) -> list[Node]:
        """The nodes at `level` under `parent` (a patient key, Study or Series Instance UID;
        empty for the patient level). Only nodes holding at least one instance."""
        ...


class Where(str, Enum):
    MISSING_ON_A = "missing_on_a"
    MISSING_ON_B = "missing_on_b"
    DIFFERS = "differs"  # present on both; the content (or something below) differs


@dataclass(frozen=True)
class Difference:
    level: AuditLevel
    key: str
    where: Where
    context: dict[str, str]  # this node's attributes and its ancestors' (PatientID, StudyDate...)
    a: Node | None
    b: Node | None

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level.value, "key": self.key, "where": self.where.value, **self.context,
                "a": self.a.as_dict() if self.a else None, "b": self.b.as_dict() if self.b else None}


@dataclass
class AuditReport:
    a: str
    b: str
    a_top: Node
    b_top: Node
    differences: list[Difference]
    requests: int  # digest requests made per side, at most: shows how little was listed

    @property
    def identical(self) -> bool:
        return self.a_top.digest == self.b_top.digest and not self.differences

    def at(self, level: AuditLevel) -> list[Difference]:
        return [d for d in self.differences if d.level is level]

    def as_dict(self) -> dict[str, Any]:
        def side(name: str, top: Node) -> dict[str, Any]:
            return {"name": name, "digest": top.digest, "instances": top.instances, "size": top.size}

        return {
            "identical": self.identical,
            "a": side(self.a, self.a_top),
            "b": side(self.b, self.b_top),
            "requests": self.requests,
            **{PLURAL[level]: [d.as_dict() for d in self.at(level)] for level in AuditLevel},
        }


def audit(a: DigestSource, b: DigestSource) -> AuditReport:
    """Compare two archives top-down, descending only into branches whose digests differ.
    A branch held by one side only is listed down to its instances, so that a repair knows
    every object to copy."""
    a_top, b_top = _both(a.top, b.top)
    report = AuditReport(a.name, b.name, a_top, b_top, [], 1)
    if a_top.digest != b_top.digest:
        _descend(a, b, AuditLevel.PATIENT, "", {}, report, (True, True))
    return report


def _descend(a: DigestSource, b: DigestSource, level: AuditLevel, parent: str, context: dict[str, str],
             report: AuditReport, present: tuple[bool, bool]) -> None:
    report.requests += 1
    a_nodes, b_nodes = _both(
        lambda: _keyed(a.children(level, parent)) if present[0] else {},
        lambda: _keyed(b.children(level, parent)) if present[1] else {},
    )
    for key in sorted(a_nodes.keys() | b_nodes.keys()):
        x, y = a_nodes.get(key), b_nodes.get(key)
        if x is not None and y is not None and x.digest == y.digest:
            continue
        where = Where.DIFFERS if x and y else Where.MISSING_ON_B if x else Where.MISSING_ON_A
        own = {**(y.attributes if y else {}), **(x.attributes if x else {})}  # A's values win
        if level in KEY_ATTRIBUTE:
            own[KEY_ATTRIBUTE[level]] = key
        here = {**context, **own}
        report.differences.append(Difference(level, key, where, here, x, y))
        if level in CHILD_LEVEL:
            _descend(a, b, CHILD_LEVEL[level], key, here, report, (x is not None, y is not None))


def _keyed(nodes: Iterable[Node]) -> dict[str, Node]:
    return {n.key: n for n in nodes}


def _both(first: Callable[[], T], second: Callable[[], T]) -> tuple[T, T]:
    """Ask both archives at once: an audit takes as long as the slower side, not the sum."""
    with ThreadPoolExecutor(2) as pool:
        one, two = pool.submit(first), pool.submit(second)
        return one.result(), two.result()


# -- repair ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Copy:
    """One instance to copy from the archive that holds it to the one that lacks it."""

    to_b: bool  # True: A -> B; False: B -> A
    StudyInstanceUID: str
    SeriesInstanceUID: str
    SOPInstanceUID: str
    StudyDate: str
    size: int


def repair_plan(report: AuditReport) -> list[Copy]:
    """What `--repair` copies: every instance missing on one side, the most recent studies
    first (StudyDate descending: today's emergencies before last year's follow-ups).
    Instances whose content differs are not copied: which version is right is an
    administrator's decision (twinpacs conflicts), not the auditor's."""
    copies = []
    for d in report.at(AuditLevel.INSTANCE):
        held = d.a or d.b
        if d.where is Where.DIFFERS or held is None:
            continue
        copies.append(Copy(d.where is Where.MISSING_ON_B, d.context.get("StudyInstanceUID", ""),
                           d.context.get("SeriesInstanceUID", ""), d.key, d.context.get("StudyDate", ""),
                           held.size))
    return sorted(copies, key=lambda c: (c.StudyDate, c.StudyInstanceUID), reverse=True)
