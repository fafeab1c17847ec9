"""Two real sites for the page tests (and scripts/screenshots.py): A active, B standby, each an
index and store of its own with its HTTP door served by uvicorn on a loopback port.

A holds the RIS orders and the studies of a small day's worklist:
  STAT   CT, Nordmann^Kari: order with images here, a prior held here, an older prior only at B
         (fetched by A's prefetch worker from B), replicated to B and confirmed
  ASAP   MR, Hansen^Ola: scheduled, no images yet
  ROUTINE CT, Berg^Per: order whose images name another patient (a mismatch)
  no order: a study whose PatientName is markup (it must show as text)
  cancelled US order
The objects stored after one replication pass stay pending for B (A's replication worker is
not started), so the sync figures are exact and known: World.confirmed and World.pending."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.core.ris import Code, Order, Patient, Priority
from twinpacs.prefetch_worker import PrefetchWorker
from twinpacs.synthetic import StudySpec, encode, make_study
from tests.replication.conftest import Sites, free_port, settings_overrides, twinpacs_peer

ZONE = "Europe/Oslo"
DAY = "20260310"  # every order is scheduled that day
PROCEDURES = {"CTTHOR": {"code": "24627-2", "scheme": "LN", "meaning": "CT Chest"},
              "MRHEAD": {"code": "24590-2", "scheme": "LN", "meaning": "MR Brain"}}
XSS_NAME = "<script>alert(1)</script>"
REASON = "suspected aortic dissection <b>urgent</b>"
CLINICAL = "sudden chest pain, hypotension"
ROWS = 64


def spec(patient: str, name: str, accession: str, seed: int, date: str = DAY, modality: str = "CT",
         series: int = 2, instances: int = 3, description: str = "") -> StudySpec:
    return StudySpec(patient_id=patient, patient_name=name, study_date=date, modality=modality, series=series,
                     instances_per_series=instances, rows=ROWS, columns=ROWS, seed=seed, accession_number=accession,
                     study_description=description or f"{modality} study")


def study_uid(s: StudySpec) -> str:
    return str(make_study(s)[0].StudyInstanceUID)


def store(site: Site, s: StudySpec) -> int:
    objects = [encode(ds) for ds in make_study(s)]
    for data in objects:
        site.archive.store(data, source="TEST")
    return len(objects)


def order(placer: str, accession: str, patient: Patient, priority: Priority, modality: str, procedure: str,
          hour: int, **fields: Any) -> Order:
    return Order(placer, accession, patient, filler_number=f"F-{placer}", procedure=Code(procedure, "L", procedure),
                 modality=modality, station_ae=f"{modality}1", priority=priority,
                 scheduled_at=datetime(2026, 3, 10, hour, 0, tzinfo=timezone.utc),
                 referring_physician="Ward^Wendy", **fields)


STAT = spec("P-STAT", "Nordmann^Kari", "ACC-STAT", 1, description="CT chest emergency")
STAT_PRIOR = spec("P-STAT", "Nordmann^Kari", "OLD-1", 2, date="20250310", series=1, description="CT chest 2025")
STAT_PRIOR_AT_B = spec("P-STAT", "Nordmann^Kari", "OLD-2", 3, date="20240101", series=1,
                       description="CT chest 2024")
MISMATCH = spec("P-WRONG", "Berg^Petter", "ACC-ROUT", 4, series=1, description="CT chest routine")
NO_ORDER = spec("P-XSS", XSS_NAME, "NOORDER1", 5, modality="MR", series=1, description="MR head <i>external</i>")


@dataclass
class World:
    sites: Sites
    a: Site
    b: Site
    url_a: str
    url_b: str
    confirmed: int = 0  # A's objects confirmed at B
    pending: int = 0  # A's objects pending for B
    uids: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        self.sites.close()


def _build(sites: Sites, name: str, peers: list[dict[str, Any]], **sections: Any) -> Site:
    overrides = settings_overrides(sites.root, name, peers, {}, {})
    overrides.update(hl7={"timezone": ZONE}, ris={"procedure_codes": PROCEDURES}, **sections)
    site = build_site(load_settings(overrides=overrides))
    sites.built.append(site)  # stopped and closed with the others
    return site


def build_world(root: Path, plain: bool = False) -> World:
    """`plain`: no markup in the data (the README's screenshots); the same UIDs and figures."""
    no_order = replace(NO_ORDER, patient_name="Doe^Jane", study_description="MR head") if plain else NO_ORDER
    reason = "suspected aortic dissection" if plain else REASON
    sites = Sites(root)
    port_a, port_b = free_port(), free_port()
    prefetch_from_b = {"name": "B", "kind": "dicomweb", "dicomweb_url": f"http://127.0.0.1:{port_b}/dicom-web"}
    a = _build(sites, "A", [twinpacs_peer("B", port_b)], prefetch={"sources": [prefetch_from_b]})
    b = _build(sites, "B", [twinpacs_peer("A", port_a)])
    world = World(sites, a, b, sites.serve(a, port_a).url, sites.serve(b, port_b).url)
    store(b, STAT_PRIOR_AT_B)
    b.roles.set("standby", "A")

    kari, ola, per = Patient("P-STAT", name="Nordmann^Kari"), Patient("P-ASAP", name="Hansen^Ola"), \
        Patient("P-ROUT", name="Berg^Per")
    a.ris.place_order(order("ORD-1", "ACC-STAT", kari, Priority.STAT, "CT", "CTTHOR", 9, reason=reason,
                            clinical_info=CLINICAL))
    a.ris.place_order(order("ORD-2", "ACC-ASAP", ola, Priority.ASAP, "MR", "MRHEAD", 10, reason="headache"))
    a.ris.place_order(order("ORD-3", "ACC-ROUT", per, Priority.ROUTINE, "CT", "CTTHOR", 11, reason="follow-up"))
    a.ris.place_order(order("ORD-4", "ACC-CANC", ola, Priority.ROUTINE, "US", "USABD", 12, reason="-"))
    a.ris.cancel_order("ORD-4")

    store(a, STAT)
    store(a, STAT_PRIOR)
    prefetch = next(s for s in a.background if isinstance(s, PrefetchWorker))
    assert prefetch.run_once()  # the STAT order's job (the most urgent): fetches the prior only B holds
    assert a.replication is not None
    while a.replication.workers["B"].run_once():  # in this thread: the workers are not started
        pass
    world.confirmed = a.index.counts()["instances"]
    world.pending = store(a, MISMATCH) + store(a, no_order)
    world.uids = {name: study_uid(s) for name, s in (("stat", STAT), ("stat_prior", STAT_PRIOR), (
        "stat_prior_at_b", STAT_PRIOR_AT_B), ("mismatch", MISMATCH), ("no_order", NO_ORDER))}
    return world
