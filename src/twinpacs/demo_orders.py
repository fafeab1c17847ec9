"""The demo's RIS: two orders sent to site A over MLLP, as a RIS would send them, so that the
worklist, the referral and the reconciliation list have something to show. The first order
belongs to a sample study already loaded (its referral is one click from the images); the
second is scheduled within the hour for a CT station, STAT (the modality's worklist)."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from hl7.client import MLLPClient

from .pair import PairSite

STATION = "CT1"


def send_sample_orders(site: PairSite, headers: dict[str, str]) -> dict[str, str]:
    """Send the two orders; the loaded study's UID and the new order's accession number.
    `headers`: the Authorization the site's QIDO-RS wants."""
    (study,) = httpx.get(f"{site.url}/dicom-web/studies", params={"limit": 1, "includefield": "PatientName"},
                         headers=headers, timeout=30).json()
    patient_id, name = _text(study, "00100020"), study.get("00100010", {}).get("Value", [{}])[0].get("Alphabetic", "")
    uid, accession = _text(study, "0020000D"), _text(study, "00080050")
    soon = (datetime.now() + timedelta(minutes=45)).strftime("%Y%m%d%H%M00")
    assert site.hl7_port is not None
    with MLLPClient("127.0.0.1", site.hl7_port) as client:
        for control_id, message in (
            ("DEMO1", _order("DEMO1", patient_id, name, "PL-DEMO1", accession, "R", "20260101090000",
                             "Follow-up of pulmonary nodule, growth since last exam?")),
            ("DEMO2", _order("DEMO2", "TP-EMERG", "Akutt^Anna", "PL-DEMO2", "DEMO0002", "S", soon,
                             "Trauma, suspected splenic rupture")),
        ):
            ack = str(client.send_message(message))
            if "|AA|" not in ack:
                raise SystemExit(f"demo: site {site.name} refused sample order {control_id}: {ack}")
    return {"study": uid, "accession": "DEMO0002"}


def _order(control_id: str, patient_id: str, name: str, placer: str, accession: str, priority: str,
           scheduled: str, reason: str) -> str:
    obr = [""] * 37
    obr[0], obr[1], obr[2], obr[4] = "OBR", "1", f"{placer}^RIS", "CTCHEST^CT chest^L"
    obr[16], obr[18], obr[21], obr[24] = "0042^Doktor^Dora", accession, STATION, "CT"
    obr[27], obr[31], obr[36] = f"^^^^^{priority}", f"^{reason}", scheduled
    return "\r".join([
        f"MSH|^~\\&|DEMO-RIS|HOSP|TWINPACS|HOSP|{datetime.now():%Y%m%d%H%M%S}||ORM^O01|{control_id}|P|2.5",
        f"PID|1||{patient_id}||{name}",
        f"ORC|NW|{placer}^RIS|||||^^^^^{priority}",
        "|".join(obr),
    ])


def _text(study: dict[str, dict[str, list[str]]], tag: str) -> str:
    return str(study.get(tag, {}).get("Value", [""])[0])
