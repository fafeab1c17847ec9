"""What the archive knows about an object, named as the standard names it (PS3.4 C.6)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from ..errors import InvalidValue, NotDicom
from .raw_values import value_strings


class Level(str, Enum):
    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"


# The longest value the index keeps of a text attribute: PN's 3 x 64 + 2 fits with room.
MAX_INDEXED_LENGTH = 256

LEVEL_ORDER = (Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE)

# Attributes the index keeps per level: the matching keys of the Patient Root and Study
# Root information models (PS3.4 C.6.1.1 / C.6.2.1) plus a few every viewer asks for.
PATIENT_KEYS = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "IssuerOfPatientID")
STUDY_KEYS = (
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "StudyID",
    "StudyDescription",
    "ReferringPhysicianName",
)
SERIES_KEYS = (
    "SeriesInstanceUID",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "SeriesDate",
    "SeriesTime",
    "BodyPartExamined",
)
INSTANCE_KEYS = (
    "SOPInstanceUID",
    "SOPClassUID",
    "InstanceNumber",
    "NumberOfFrames",
    "Rows",
    "Columns",
)

LEVEL_KEYS: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: PATIENT_KEYS,
    Level.STUDY: STUDY_KEYS,
    Level.SERIES: SERIES_KEYS,
    Level.IMAGE: INSTANCE_KEYS,
}

UNIQUE_KEY: dict[Level, str] = {
    Level.PATIENT: "PatientID",
    Level.STUDY: "StudyInstanceUID",
    Level.SERIES: "SeriesInstanceUID",
    Level.IMAGE: "SOPInstanceUID",
}

# Computed return keys (PS3.4 C.6.1.1.x "Additional Query/Retrieve Attributes").
COMPUTED_KEYS: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: (
        "NumberOfPatientRelatedStudies",
        "NumberOfPatientRelatedSeries",
        "NumberOfPatientRelatedInstances",
    ),
    Level.STUDY: (
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
        "ModalitiesInStudy",
        "SOPClassesInStudy",
    ),
    Level.SERIES: ("NumberOfSeriesRelatedInstances",),
    Level.IMAGE: (),
}


def keys_up_to(level: Level) -> tuple[str, ...]:
    """Every indexed attribute visible at `level` (its own and its parents')."""
    keys: tuple[str, ...] = ()
    for lvl in LEVEL_ORDER[: LEVEL_ORDER.index(level) + 1]:
        keys += LEVEL_KEYS[lvl]
    return keys


_INDEX_TAGS = tuple((key, BaseTag(tag_for_keyword(key))) for key in keys_up_to(Level.IMAGE))
_TAGS = tuple(tag for _, tag in _INDEX_TAGS)


@dataclass(frozen=True)
class InstanceRecord:
    """One stored object as the index sees it."""

    attributes: dict[str, str]  # keyword -> value as DICOM text (PN/DA/TM as written)
    transfer_syntax: str
    content_hash: str
    size: int

    @property
    def sop_instance_uid(self) -> str:
        return self.attributes["SOPInstanceUID"]

    @property
    def study_instance_uid(self) -> str:
        return self.attributes["StudyInstanceUID"]

    @property
    def series_instance_uid(self) -> str:
        return self.attributes["SeriesInstanceUID"]

    @classmethod
    def from_dataset(cls, ds: Dataset, transfer_syntax: str, content_hash: str, size: int) -> InstanceRecord:
        strings = value_strings(ds, _TAGS)  # straight from the bytes where that gives pydicom's text
        attributes = {key: _read(ds, key, tag, values) for (key, tag), values in zip(_INDEX_TAGS, strings)}
        for key, value in attributes.items():
            _check_indexable(key, value)
        return cls(attributes, transfer_syntax, content_hash, size)


def _read(ds: Dataset, key: str, tag: BaseTag, strings: list[str] | None) -> str:
    """An indexed attribute as text, from its `strings` where known; one pydicom cannot decode
    (a VR it does not know, a bad value) is malformed input, said so, not an internal error."""
    if strings is not None:
        return _text(strings)
    try:
        return _text(ds[tag].value)
    except Exception as exc:  # pydicom raises many types on garbage
        raise NotDicom(f"{key} {tag} cannot be read: {exc}") from None


def _check_indexable(key: str, value: str) -> None:
    """Refuse, before anything is written, a value no DICOM text may hold: an embedded NUL
    (PostgreSQL cannot store it, and it is not a DICOM character) or one longer than any VR
    of an indexed attribute allows (PN's 3 x 64 + 2 is the longest)."""
    if "\x00" in value:
        raise InvalidValue(f"{key} contains a NUL character")
    if len(value) > MAX_INDEXED_LENGTH:
        raise InvalidValue(f"{key} is {len(value)} characters long; at most {MAX_INDEXED_LENGTH} are indexed")


def _text(element: object) -> str:
    """An attribute value as DICOM text: multi-values joined by a backslash, absent as ''."""
    if element is None or element == "":
        return ""
    if isinstance(element, (list, tuple)) or type(element).__name__ == "MultiValue":
        return "\\".join(str(v).rstrip("\x00") for v in element)
    return str(element).rstrip("\x00")  # a trailing NUL is padding (PS3.5 6.2, UI)


@dataclass(frozen=True)
class StoredInstance:
    """Where to find an object for retrieval."""

    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax: str
    content_hash: str
    size: int
