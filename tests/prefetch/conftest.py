"""Two archives: a source (a real `twinpacs serve` process holding a patient's priors, shared by
the module's tests, which only read from it) and site A in this process (its DICOM listener
and HTTP door on loopback ports, and its prefetch worker), which places the orders."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.core.ris import Order, Patient, Priority
from twinpacs.dimse import DimseServer, start_dimse
from twinpacs.index.prefetch import SqlPrefetch
from twinpacs.index.schema import studies
from twinpacs.prefetch_worker import PrefetchWorker
from twinpacs.synthetic import StudySpec, encode, make_study
from twinpacs.web.multipart import encode_parts, new_boundary, related_content_type
from tests.backend import backend_url
from tests.e2e.live import LiveSite, free_port
from tests.served import ServedApp

if shutil.which("storescu") is None:
    pytest.exit("DCMTK is not installed: run scripts/setup.sh (make test does)", returncode=3)

PATIENT = "PF1"
ACCESSION = "ACCPF1"  # the order's own study carries it
SCHEDULED = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)
A_AE = "TPA"


@dataclass(frozen=True)
class Prior:
    name: str
    spec: StudySpec
    body_part: str = "CHEST"

    @property
    def objects(self) -> list[bytes]:
        datasets = make_study(self.spec)
        for ds in datasets:
            ds.BodyPartExamined = self.body_part
        return [encode(ds) for ds in datasets]

    @property
    def uid(self) -> str:
        return str(make_study(replace(self.spec, instances_per_series=1))[0].StudyInstanceUID)


def _prior(name: str, seed: int, date: str, modality: str = "CT", patient: str = PATIENT, accession: str = "",
           body_part: str = "CHEST") -> Prior:
    spec = StudySpec(patient_id=patient, patient_name="Prior^Fetch", study_date=date, modality=modality, series=1,
                     instances_per_series=2, rows=16, columns=16, seed=seed, accession_number=accession or f"OLD{seed}",
                     study_description=f"{modality} {date}")
    return Prior(name, spec, body_part)


# Scheduled 2026-12-02; within_years=5, max_studies=3, same modality CT (and, when asked, chest).
PRIORS = {p.name: p for p in [
    _prior("ct_2026", 1, "20260601"),  # relevant, most recent
    _prior("ct_2025", 2, "20250315"),  # relevant
    _prior("ct_2024", 3, "20240310"),  # relevant, third
    _prior("ct_2023", 4, "20230110", body_part="HEAD"),  # beyond max_studies (or: other body part)
    _prior("mr_2026", 5, "20260701", modality="MR"),  # other modality
    _prior("ct_2015", 6, "20150101"),  # older than five years
    _prior("own", 7, "20261202", accession=ACCESSION),  # the order's own study: never a prior
    _prior("other_patient", 8, "20260101", patient="PF2"),  # not this patient's: never found
]}
RELEVANT = {"ct_2026", "ct_2025", "ct_2024"}


def stow(dicomweb: str, objects: list[bytes]) -> None:
    boundary = new_boundary()
    response = httpx.post(f"{dicomweb}/studies", content=encode_parts([("application/dicom", o) for o in objects],
                                                                       boundary),
                          headers={"Content-Type": related_content_type("application/dicom", boundary)}, timeout=30)
    assert response.status_code == 200, response.text


@dataclass
class Source:
    live: LiveSite
    move_port: int  # the DICOM port the source sends site A's C-MOVE sub-operations to

    def dimse(self, name: str, retrieve: str) -> dict[str, Any]:
        return {"name": name, "kind": "dimse", "ae_title": "SRC", "host": "127.0.0.1",
                "port": self.live.dicom_port, "retrieve": retrieve}

    def dicomweb(self, name: str) -> dict[str, Any]:
        return {"name": name, "kind": "dicomweb", "dicomweb_url": self.live.dicomweb}

    def study_uids(self) -> set[str]:
        response = httpx.get(f"{self.live.dicomweb}/studies", timeout=30)
        return {item["0020000D"]["Value"][0] for item in response.json()}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    move_port = free_port()
    live = LiveSite(tmp_path_factory.mktemp("source"), "SRC", ("--move-destination", f"{A_AE}=127.0.0.1:{move_port}"))
    live.start()
    try:
        stow(live.dicomweb, [o for p in PRIORS.values() for o in p.objects])
        yield Source(live, move_port)
    finally:
        live.kill()


@dataclass
class SiteA:
    site: Site
    dimse: DimseServer | None
    http: ServedApp

    @property
    def worker(self) -> PrefetchWorker:
        return next(s for s in self.site.background if isinstance(s, PrefetchWorker))

    @property
    def jobs(self) -> SqlPrefetch:
        return SqlPrefetch(self.site.index.db)

    def order(self, placer: str = "PL1", accession: str = ACCESSION, patient: str = PATIENT,
              priority: Priority = Priority.ROUTINE, scheduled_at: datetime | None = SCHEDULED,
              **fields: Any) -> Order:
        return Order(placer, accession, Patient(patient, name="Prior^Fetch"), modality=fields.pop("modality", "CT"),
                     body_part=fields.pop("body_part", "CHEST"), priority=priority, scheduled_at=scheduled_at, **fields)

    def job(self, accession: str = ACCESSION) -> dict[str, Any]:
        (entry,) = self.jobs.status(accession_number=accession)
        return entry

    def wait_settled(self, accession: str = ACCESSION, timeout: float = 60) -> dict[str, Any]:
        """The order's job once it is done or failed (polled, never a fixed wait)."""
        deadline = time.monotonic() + timeout
        while (entry := self.job(accession))["job"]["state"] not in ("done", "failed"):
            assert time.monotonic() < deadline, f"prefetch job still {entry['job']}"
            time.sleep(0.02)
        return entry

    def held(self) -> set[str]:
        with self.site.index.db.read() as conn:
            return set(conn.execute(select(studies.c.StudyInstanceUID)).scalars())


SiteFactory = Callable[..., SiteA]


@pytest.fixture
def site_a(tmp_path: Path) -> Iterator[SiteFactory]:
    """Builds site A with the given prefetch sources and rules; `dimse_port` starts its DICOM
    listener (for C-MOVE), `start` its background services. All stopped afterwards."""
    made: list[SiteA] = []

    def build(sources: list[dict[str, Any]], dimse_port: int | None = None, start: bool = True,
              **prefetch: Any) -> SiteA:
        folder = tmp_path / f"a{len(made)}"
        settings = load_settings(overrides={
            "site": {"data_dir": folder, "ae_title": A_AE, "name": "A"}, "database": {"url": backend_url(folder)},
            "dicom": {"port": dimse_port or 0},
            "prefetch": {"sources": sources, "within_years": 5, "max_studies": 3, **prefetch}})
        site = build_site(settings)
        dimse = start_dimse(site) if dimse_port is not None else None
        made.append(SiteA(site, dimse, ServedApp(site)))
        if start:
            for service in site.background:
                service.start()
        return made[-1]

    yield build
    for a in made:
        a.http.stop()
        for service in a.site.background:
            service.stop()
        if a.dimse is not None:
            a.dimse.shutdown()
        a.site.close()


def uids(*names: str) -> set[str]:
    return {PRIORS[n].uid for n in names}
