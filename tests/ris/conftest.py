"""A site with its DIMSE door on a free loopback port (its HTTP app in process is the root
conftest's `client`), a terminology map, orders placed through site.ris, and studies stored as files."""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.core.ris import Code, Order, Patient, Priority
from twinpacs.dimse import DimseServer, start_dimse
from twinpacs.synthetic import StudySpec, encode, make_study
from tests.backend import backend_url
from tests.dimse.conftest import HOST, dcmtk

AE_TITLE = "TWINPACS"
ZONE = "Europe/Oslo"  # the hospital's time zone; the worklist speaks its local time
PROCEDURE_CODES = {"CTTHOR": {"code": "24627-2", "scheme": "LN", "meaning": "CT Chest"},
                   "MRHEAD": {"code": "24590-2", "scheme": "LN", "meaning": "MR Brain"}}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    data_dir = tmp_path / "site"
    built = build_site(load_settings(overrides={
        "site": {"data_dir": data_dir, "ae_title": AE_TITLE, "name": "ris-test"},
        "database": {"url": backend_url(data_dir)}, "dicom": {"port": 0}, "hl7": {"timezone": ZONE},
        "ris": {"procedure_codes": PROCEDURE_CODES},
    }))
    yield built
    built.close()


@pytest.fixture
def server(site: Site) -> Iterator[DimseServer]:
    server = start_dimse(site)
    yield server
    server.shutdown()


def order(placer: str, accession: str, patient: Patient, **fields: Any) -> Order:
    """An order as the HL7 door would place it, with defaults for what a test does not care about."""
    defaults: dict[str, Any] = {
        "procedure": Code("CTTHOR", "L", "CT thorax"), "modality": "CT", "station_ae": "CT1",
        "scheduled_at": datetime(2026, 3, 10, 8, 30, tzinfo=timezone.utc), "priority": Priority.ROUTINE,
        "referring_physician": "Ward^Wendy", "reason": "r/o pulmonary embolism", "clinical_info": "dyspnoea",
    }
    return Order(placer, accession, patient, filler_number=f"F-{placer}", **{**defaults, **fields})


def study_files(folder: Path, spec: StudySpec, **attributes: str) -> list[Path]:
    """A small synthetic study written as files, with `attributes` set on every instance."""
    folder.mkdir(parents=True)
    paths = []
    for n, ds in enumerate(make_study(dataclasses.replace(spec, series=1, instances_per_series=2, rows=8, columns=8))):
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        paths.append(folder / f"{n}.dcm")
        paths[-1].write_bytes(encode(ds))
    return paths


def store(site: Site, files: list[Path]) -> str:
    """Put files straight into the archive; the study's UID."""
    for path in files:
        site.archive.store(path.read_bytes(), source="TEST")
    return str(dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)


def stored_state(site: Site) -> dict[str, tuple[bytes, int]]:
    """Every stored file's bytes and modification time: what G2 says a correction never changes."""
    root = Path(site.archive.blobs.root)  # type: ignore[attr-defined]
    return {str(p): (p.read_bytes(), os.stat(p).st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


def findscu(port: int, folder: Path, *keys: str, model: str = "-W") -> list[Dataset]:
    """DCMTK findscu, each response extracted to a file; the responses in order."""
    folder.mkdir()
    dcmtk("findscu", model, "-aec", AE_TITLE, "-X", "-od", folder, *itertools.chain(*(("-k", k) for k in keys)),
          HOST, port)
    return [dcmread(p) for p in sorted(folder.glob("rsp*.dcm"))]


def metadata_value(instance: dict[str, Any], tag: str) -> str:
    """The first value of a DICOM JSON attribute, PN as its Alphabetic group, '' when empty."""
    values = instance.get(tag, {}).get("Value", [""])
    found = values[0]
    return str(found["Alphabetic"] if isinstance(found, dict) else found)
