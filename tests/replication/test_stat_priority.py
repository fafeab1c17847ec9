"""A STAT order's images jump the replication queue (issue 6): an emergency patient's study
reaches the second site before a queue of routine objects that was waiting first."""

from __future__ import annotations

from sqlalchemy import select

from twinpacs.core.archive import StoreStatus
from twinpacs.core.ris import Order, Patient, Priority
from twinpacs.index.schema import changes
from twinpacs.synthetic import StudySpec, encode, make_study

from .conftest import Sites, free_port, rows, states, twinpacs_peer, wait_for


def study(patient: str, accession: str, count: int, seed: int) -> list[bytes]:
    spec = StudySpec(patient_id=patient, accession_number=accession, series=1, instances_per_series=count,
                     rows=8, columns=8, seed=seed)
    return [encode(ds) for ds in make_study(spec)]


def order(placer: str, accession: str, patient: str, priority: Priority) -> Order:
    return Order(placer_number=placer, accession_number=accession, patient=Patient(patient), modality="CT",
                 priority=priority)


def test_stat_images_are_sent_before_routine_ones_already_waiting(sites: Sites) -> None:
    port_b = free_port()
    a = sites.build("A", [twinpacs_peer("B", port_b)], batch_size=4)
    a.ris.place_order(order("P-ROUTINE", "ACC-R", "ROUTINE1", Priority.ROUTINE))
    routine = study("ROUTINE1", "ACC-R", 12, seed=1)
    unordered = study("NOORDER", "", 4, seed=2)
    for data in routine + unordered:
        assert a.archive.store(data, "MODALITY").status is StoreStatus.STORED

    # An emergency: the order arrives first and its images follow...
    a.ris.place_order(order("P-STAT1", "ACC-S1", "EMERG1", Priority.STAT))
    stat_first = study("EMERG1", "ACC-S1", 3, seed=3)
    # ...and one whose images were stored before the RIS said STAT (a routine order upgraded).
    stat_later = study("EMERG2", "ACC-S2", 3, seed=4)
    a.ris.place_order(order("P-STAT2", "ACC-S2", "EMERG2", Priority.ROUTINE))
    for data in stat_first + stat_later:
        a.archive.store(data, "MODALITY")
    a.ris.change_order(order("P-STAT2", "ACC-S2", "EMERG2", Priority.STAT))
    priorities = {r["priority"] for r in rows(a) if r["SOPInstanceUID"] in _uids(a, "ACC-S1", "ACC-S2")}
    assert priorities == {Priority.STAT.rank}

    b = sites.build("B", [])
    sites.serve(b, port_b)
    a.replication.start()  # type: ignore[union-attr]
    wait_for(lambda: states(a) == {"confirmed": 22}, what="all 22 objects confirmed by B")

    with b.index.db.read() as conn:
        arrival = [uid for (uid,) in conn.execute(select(changes.c.SOPInstanceUID).order_by(changes.c.seq))]
    stat = _uids(a, "ACC-S1", "ACC-S2")
    assert len(stat) == 6
    assert set(arrival[:6]) == stat, "the six STAT objects must reach B before any routine one"


def test_a_cancelled_stat_order_no_longer_jumps_the_queue(sites: Sites) -> None:
    a = sites.build("A", [twinpacs_peer("B", free_port())])
    a.ris.place_order(order("P1", "ACC-1", "PAT1", Priority.STAT))
    for data in study("PAT1", "ACC-1", 2, seed=5):
        a.archive.store(data, "MODALITY")
    assert {r["priority"] for r in rows(a)} == {Priority.STAT.rank}
    a.ris.cancel_order("P1")
    assert {r["priority"] for r in rows(a)} == {0}


def _uids(site: object, *accessions: str) -> set[str]:
    from twinpacs.index.schema import instances, series, studies

    statement = (select(instances.c.SOPInstanceUID).join(series, series.c.id == instances.c.series_pk)
                 .join(studies, studies.c.id == series.c.study_pk).where(studies.c.AccessionNumber.in_(accessions)))
    with site.index.db.read() as conn:  # type: ignore[attr-defined]
        return {uid for (uid,) in conn.execute(statement)}
