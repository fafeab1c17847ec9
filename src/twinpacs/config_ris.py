"""The configuration sections of the RIS link: the HL7 listener, where order fields are read
from, procedure codes, and the archives priors are prefetched from. Part of the one Settings
(config.py)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from .config_base import Section, check_ae_title


_HL7_LOCATION = re.compile(r"^[A-Z][A-Z0-9]{2}-\d+(\.\d+){0,2}$")  # OBR-18, ORC-7.6, PID-3.4.1

# Where each order field is read from, first present location wins (ORM^O01 and OMI^O23).
DEFAULT_ORDER_FIELDS: dict[str, list[str]] = {
    "accession_number": ["OBR-18", "IPC-1"],
    "placer_number": ["ORC-2", "OBR-2"],
    "filler_number": ["ORC-3", "OBR-3"],
    "procedure": ["OBR-4"],
    "modality": ["OBR-24", "IPC-5"],
    "body_part": ["OBR-15.4"],
    "reason": ["OBR-31"],
    "clinical_info": ["OBR-13"],
    "referring_physician": ["OBR-16", "PV1-8"],
    "priority": ["ORC-7.6", "TQ1-9", "OBR-27.6"],
    "scheduled_at": ["OBR-36", "TQ1-7", "ORC-7.4"],
    "station_ae": ["OBR-21"],
}


class Hl7Settings(Section):
    bind: str = Field("127.0.0.1", description="Address the HL7 (MLLP) listener binds to.")
    port: int | None = Field(
        None, ge=0, le=65535, description="MLLP port for HL7 v2 from the RIS; unset: no HL7 listener; 0 picks a free one."
    )
    timezone: str = Field(
        "", description="IANA time zone of HL7 times that carry no offset; empty: this machine's local time zone."
    )


class ProcedureCodeSettings(Section):
    code: str = Field(description="Code value sent to modalities (Requested Procedure Code Sequence).")
    scheme: str = Field(description="Coding scheme designator, e.g. LN (LOINC) or a local designator.")
    meaning: str = Field(description="Code meaning.")


class RisSettings(Section):
    order_fields: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_ORDER_FIELDS.items()},
        description="HL7 locations (SEG-field[.component]) each order field is read from; the first present wins. "
        "Keys given replace the default for that field only.",
    )
    procedure_codes: dict[str, ProcedureCodeSettings] = Field(
        default_factory=dict,
        description="The RIS's local procedure code = the code sent to modalities; unmapped codes are listed "
        "for reconciliation.",
    )

    @field_validator("order_fields")
    @classmethod
    def _fields(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(v) - set(DEFAULT_ORDER_FIELDS))
        if unknown:
            raise ValueError(f"unknown order field(s) {unknown}; known: {sorted(DEFAULT_ORDER_FIELDS)}")
        for name, locations in v.items():
            bad = [loc for loc in locations if not _HL7_LOCATION.match(loc)]
            if bad or not locations:
                raise ValueError(f"{name}: {bad or 'no location'} is not an HL7 location such as OBR-18 or ORC-7.6")
        return {**{k: list(d) for k, d in DEFAULT_ORDER_FIELDS.items()}, **v}


class PrefetchSourceSettings(Section):
    name: str = Field(description="A name for the source archive (shown in prefetch status).")
    kind: Literal["dimse", "dicomweb"] = Field(
        "dimse", description="dimse: C-FIND, then C-MOVE or C-GET; dicomweb: QIDO-RS, then WADO-RS."
    )
    ae_title: str = Field("", description="dimse: the source's AE title.")
    host: str = Field("127.0.0.1", description="dimse: host.")
    port: int = Field(0, ge=0, le=65535, description="dimse: port.")
    retrieve: Literal["move", "get"] = Field(
        "move", description="dimse: C-MOVE to this site's AE title (the source must know its address) or C-GET."
    )
    tls: bool = Field(
        False, description="dimse: connect with DICOM TLS (dicom.tls_remote_ca_file, dicom.tls_cert_file); "
        "a dicomweb source uses HTTPS through an https:// dicomweb_url instead.",
    )
    dicomweb_url: str = Field("", description="dicomweb: base URL, e.g. http://127.0.0.1:8081/dicom-web.")
    token: SecretStr = Field(SecretStr(""), description="dicomweb: bearer token sent to the source, if it asks for one.")

    @field_validator("ae_title")
    @classmethod
    def _ae(cls, v: str) -> str:
        return check_ae_title(v) if v else v


class PrefetchSettings(Section):
    sources: list[PrefetchSourceSettings] = Field(
        default_factory=list, description="Archives searched for a scheduled patient's prior studies."
    )
    same_modality: bool = Field(True, description="A relevant prior has the order's modality.")
    same_body_part: bool = Field(False, description="A relevant prior has the order's body part (when both are known).")
    within_years: int = Field(5, ge=0, le=100, description="A relevant prior is at most this many years old; 0: any age.")
    max_studies: int = Field(3, ge=0, le=100, description="At most this many priors per order, most recent first.")
    retry_s: float = Field(60.0, gt=0, description="Delay before a failed prefetch is tried again.")
    give_up_after: int = Field(5, ge=1, description="Attempts after which a prefetch is marked failed.")

    @field_validator("sources")
    @classmethod
    def _sources(cls, sources: list[PrefetchSourceSettings]) -> list[PrefetchSourceSettings]:
        names = [s.name for s in sources]
        if len(set(names)) != len(names):  # each prior is recorded, and fetched, by its source's name
            raise ValueError(f"prefetch source names must be unique: {', '.join(names)}")
        for s in sources:
            if s.kind == "dimse" and not (s.ae_title and s.port):
                raise ValueError(f"prefetch source {s.name}: a DIMSE source needs ae_title and port")
            if s.kind == "dicomweb" and not s.dicomweb_url:
                raise ValueError(f"prefetch source {s.name}: a DICOMweb source needs dicomweb_url")
            if s.kind == "dicomweb" and s.tls:
                raise ValueError(f"prefetch source {s.name}: tls is for DIMSE sources; a DICOMweb source uses "
                                 "HTTPS through an https:// dicomweb_url")
        return sources
