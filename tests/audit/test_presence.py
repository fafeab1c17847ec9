"""Audits from flat listings (third-party archives): presence only, same diff model."""

from __future__ import annotations

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from twinpacs.audit_clients import site_listing
from twinpacs.core.audit import AuditLevel, Where, audit
from twinpacs.core.audit_presence import Entry, TreeSource

from .conftest import ServedSite


def test_a_site_listing_against_a_third_party_listing_missing_one_instance(
        twins: tuple[ServedSite, ServedSite]) -> None:
    a, _ = twins
    with httpx.Client(timeout=30) as client:
        name, entries = site_listing(client, a.url)
    assert name == "A" and len(entries) == 12
    # What a third party answers: no hash, no size, no issuer; one instance absent.
    third_party = [Entry(e.SOPInstanceUID, e.SeriesInstanceUID, e.StudyInstanceUID, e.PatientID, e.PatientName,
                         AccessionNumber=e.AccessionNumber, StudyDate=e.StudyDate) for e in entries[1:]]
    report = audit(TreeSource(name, entries), TreeSource("orthanc", third_party))
    assert [(d.key, d.where) for d in report.at(AuditLevel.INSTANCE)] == \
        [(entries[0].SOPInstanceUID, Where.MISSING_ON_B)]
    assert report.at(AuditLevel.STUDY)[0].context["AccessionNumber"] == entries[0].AccessionNumber
    assert audit(TreeSource(name, entries), TreeSource("orthanc", [*third_party, entries[0]])).identical


_uids = st.sampled_from([f"1.2.3.{i}" for i in range(12)])
_objects = st.dictionaries(_uids, st.sampled_from(["h1", "h2"]), max_size=12)


def _source(name: str, held: dict[str, str]) -> TreeSource:
    # Placement is a function of the UID, as it is of the content in an archive, and
    # hierarchical: a series in one study, a study under one patient.
    def entry(uid: str, content_hash: str) -> Entry:
        n = int(uid.rsplit(".", 1)[1])
        study = n % 3
        return Entry(uid, f"9.{study}.{n % 2}", f"9.{study}", PatientID=f"P{study % 2}", content_hash=content_hash)

    return TreeSource(name, [entry(uid, h) for uid, h in held.items()], presence_only=False)


@settings(max_examples=200, deadline=None)
@given(_objects, _objects)
def test_the_diff_is_empty_exactly_when_both_hold_the_same_objects(a: dict[str, str], b: dict[str, str]) -> None:
    report = audit(_source("A", a), _source("B", b))
    assert report.identical == (a == b)
    listed = {d.key: d.where for d in report.at(AuditLevel.INSTANCE)}
    expected = {uid: Where.MISSING_ON_B for uid in a.keys() - b.keys()}
    expected |= {uid: Where.MISSING_ON_A for uid in b.keys() - a.keys()}
    expected |= {uid: Where.DIFFERS for uid in a.keys() & b.keys() if a[uid] != b[uid]}
    assert listed == expected
