"""The SQL matching agrees with the reference matcher of PS3.4 C.2.2.2 (core.query.matches)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twinpacs.core.archive import Archive
from twinpacs.core.model import Level, keys_up_to
from twinpacs.core.query import build_query, matches
from twinpacs.errors import InvalidQuery, InvalidUID, UnknownQueryLevel
from twinpacs.core.query import parse_level
from twinpacs.synthetic import StudySpec, encode, make_study

NAMES = ["Doe^John", "doe^jane", "Smith^Anna", "Smith-Jones^Al", "O'Brien^Pat", "Müller^Jörg"]
DATES = ["20250101", "20251231", "20260615", "20261130"]
MODALITIES = ["CT", "MR", "CR"]


@pytest.fixture
def populated(archive: Archive) -> Archive:
    for i in range(7):  # patient P0 has two studies
        spec = StudySpec(patient_id=f"P{i % 6}", patient_name=NAMES[i % 6], study_date=DATES[i % 4],
                         modality=MODALITIES[i % 3], series=1, instances_per_series=2,
                         rows=8, columns=8, accession_number=f"ACC{i:03d}", seed=i)
        for ds in make_study(spec):
            archive.store(encode(ds), "TEST")
    return archive


patterns = st.text(alphabet="DdoeSmith^*?-Ja'ü", min_size=1, max_size=6)
criteria = st.one_of(
    st.builds(lambda p: {"PatientName": p}, patterns),
    st.builds(lambda p: {"PatientID": p}, st.text(alphabet="P0123*?", min_size=1, max_size=3)),
    st.builds(lambda a, b: {"StudyDate": f"{a}-{b}"}, st.sampled_from(["", *DATES]), st.sampled_from(["", *DATES])),
    st.builds(lambda d: {"StudyDate": d}, st.sampled_from(DATES)),
    st.builds(lambda m: {"Modality": m}, st.sampled_from([*MODALITIES, "C*", "?R", "*"])),
    st.builds(lambda a: {"AccessionNumber": a}, st.sampled_from(["ACC001", "ACC00*", "*5", ""])),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(criteria=criteria, level=st.sampled_from([Level.STUDY, Level.SERIES, Level.IMAGE]))
def test_sql_matching_equals_reference(populated: Archive, criteria: dict[str, str], level: Level) -> None:
    if "Modality" in criteria and level is Level.STUDY:
        level = Level.SERIES  # Modality is a series attribute; ModalitiesInStudy is tested below
    everything = populated.find(build_query(level, {}, keys_up_to(level)))
    query = build_query(level, criteria, keys_up_to(level))
    expected = [row for row in everything if all(matches(m, row[m.keyword]) for m in query.matches)]
    assert populated.find(query) == expected


def test_modalities_in_study_match_and_return(populated: Archive) -> None:
    rows = populated.find(build_query(Level.STUDY, {"ModalitiesInStudy": "MR\\CR"}, ("ModalitiesInStudy",)))
    assert sorted(r["ModalitiesInStudy"] for r in rows) == ["CR", "CR", "MR", "MR"]


def test_patient_level_counts(populated: Archive) -> None:
    rows = populated.find(build_query(Level.PATIENT, {"PatientID": "P0"},
                                      ("NumberOfPatientRelatedStudies", "NumberOfPatientRelatedInstances")))
    assert rows == [{"PatientID": "P0", "NumberOfPatientRelatedStudies": "2",
                     "NumberOfPatientRelatedInstances": "4"}]


def test_uid_list_and_limit_offset(populated: Archive) -> None:
    uids = [r["StudyInstanceUID"] for r in populated.find(build_query(Level.STUDY, {}, ()))]
    listed = populated.find(build_query(Level.STUDY, {"StudyInstanceUID": "\\".join(uids[1:3])}, ()))
    assert [r["StudyInstanceUID"] for r in listed] == uids[1:3]
    page = populated.find(build_query(Level.STUDY, {}, (), limit=2, offset=3))
    assert [r["StudyInstanceUID"] for r in page] == uids[3:5]


def test_pn_matching_ignores_case_other_vrs_do_not(populated: Archive) -> None:
    assert len(populated.find(build_query(Level.STUDY, {"PatientName": "DOE*"}, ()))) == 3
    assert populated.find(build_query(Level.STUDY, {"AccessionNumber": "acc001"}, ())) == []


@pytest.mark.parametrize("bad, error", [
    ({"StudyDate": "2026-13-01"}, InvalidQuery),
    ({"StudyDate": "yesterday"}, InvalidQuery),
    ({"StudyInstanceUID": "1.2.abc"}, InvalidUID),
    ({"NoSuchKeyword": "x"}, InvalidQuery),
])
def test_bad_query_values_are_refused(bad: dict[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        build_query(Level.STUDY, bad)


@pytest.mark.parametrize("level", ["", "FRAME", None])
def test_unknown_level(level: str | None) -> None:
    with pytest.raises(UnknownQueryLevel):
        parse_level(level)
