"""QIDO-RS (PS3.18 10.6): resources, match keys, return attributes, controls, errors."""

from __future__ import annotations

import httpx
import pytest

from tests.web.conftest import SPEC, assert_error, value
from twinpacs.app import Site
from twinpacs.synthetic import StudySpec, encode, make_study

pytestmark = pytest.mark.anyio
OTHER = StudySpec(patient_id="WEB02", patient_name="Other^Otto", modality="MR", study_date="20250102",
                  series=1, instances_per_series=2, rows=8, columns=8, seed=8, accession_number="ACC-2")
STUDY_UID, SERIES_UID, SOP_UID = "0020000D", "0020000E", "00080018"
PATIENT_ID, RETRIEVE_URL = "00100020", "00081190"


@pytest.fixture
def uids(site: Site) -> dict[str, str]:
    """Both studies stored; the UIDs of SPEC's study, first series and first instance."""
    first = make_study(SPEC)
    for ds in [*first, *make_study(OTHER)]:
        site.archive.store(encode(ds))
    return {"study": first[0].StudyInstanceUID, "series": first[0].SeriesInstanceUID,
            "sop": first[0].SOPInstanceUID}


async def search(client: httpx.AsyncClient, path: str, **params: str | list[str]) -> list[dict]:  # type: ignore[type-arg]
    response = await client.get(f"/dicom-web{path}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/dicom+json"
    found: list[dict] = response.json()  # type: ignore[type-arg]
    return found


async def test_study_defaults(client: httpx.AsyncClient, uids: dict[str, str]) -> None:
    (study,) = await search(client, "/studies", PatientID="WEB01")
    assert set(study) == {
        "00080005", "00080020", "00080030", "00080050", "00080056", "00080061", "00080090",
        RETRIEVE_URL, "00100010", PATIENT_ID, "00100030", "00100040", STUDY_UID, "00200010",
        "00201206", "00201208"}
    assert value(study, "00080005") == "ISO_IR 192" and value(study, "00080056") == "ONLINE"
    assert value(study, "00100010") == "Web^Wanda" and value(study, "00080050") == "ACC-WEB"
    assert (value(study, "00201206"), value(study, "00201208")) == (2, 6)
    assert value(study, RETRIEVE_URL) == f"http://testserver/dicom-web/studies/{uids['study']}"


@pytest.mark.parametrize("params, patients", [
    ({}, ["WEB01", "WEB02"]),
    ({"PatientName": "other*"}, ["WEB02"]),  # PN: case-insensitive wildcard
    ({"StudyDate": "20260101-"}, ["WEB01"]),
    ({"ModalitiesInStudy": "MR"}, ["WEB02"]),
    ({"00100020": "WEB02"}, ["WEB02"]),  # a tag instead of a keyword
    ({"(0010,0020)": "WEB01"}, ["WEB01"]),
    ({"AccessionNumber": "NONE"}, []),  # no match: 200 with []
    ({"limit": "1"}, ["WEB01"]),
    ({"limit": "1", "offset": "1"}, ["WEB02"]),
    ({"fuzzymatching": "false"}, ["WEB01", "WEB02"]),
])
async def test_study_matching(client: httpx.AsyncClient, uids: dict[str, str], params: dict[str, str],
                              patients: list[str]) -> None:
    assert [value(s, PATIENT_ID) for s in await search(client, "/studies", **params)] == patients


async def test_series_and_instances(client: httpx.AsyncClient, uids: dict[str, str]) -> None:
    study, series = uids["study"], uids["series"]
    in_study = await search(client, f"/studies/{study}/series")
    assert [value(s, "00200011") for s in in_study] == [1, 2]
    assert {value(s, "00201209") for s in in_study} == {3}
    assert value(in_study[0], RETRIEVE_URL).endswith(f"/studies/{study}/series/{series}")
    assert PATIENT_ID not in in_study[0]  # study attributes only for /series
    everywhere = await search(client, "/series", Modality="MR")
    assert len(everywhere) == 1 and value(everywhere[0], PATIENT_ID) == "WEB02"
    instances = await search(client, f"/studies/{study}/series/{series}/instances")
    assert [value(i, "00200013") for i in instances] == [1, 2, 3]
    assert {value(i, "00280010") for i in instances} == {32}  # Rows: US, a number
    assert value(instances[0], RETRIEVE_URL).endswith(f"/series/{series}/instances/{uids['sop']}")
    assert len(await search(client, f"/studies/{study}/instances")) == 6
    assert len(await search(client, "/instances")) == 8
    (one,) = await search(client, "/instances", SOPInstanceUID=uids["sop"])
    assert value(one, PATIENT_ID) == "WEB01"


async def test_includefield(client: httpx.AsyncClient, uids: dict[str, str]) -> None:
    (study,) = await search(client, "/studies", PatientID="WEB01",
                            includefield=["StudyDescription,00081030", "SOPClassesInStudy"])
    assert value(study, "00081030") == "Synthetic CT"
    assert value(study, "00080062") == "1.2.840.10008.5.1.4.1.1.2"
    (everything,) = await search(client, "/studies", PatientID="WEB01", includefield="all")
    assert "00080062" in everything and "00100021" in everything  # IssuerOfPatientID, empty
    (extra,) = await search(client, "/studies", PatientID="WEB01", includefield="PatientAge")
    assert extra["00101010"] == {"vr": "AS"}  # asked for, not held: present and empty


async def test_fuzzymatching_is_declined_with_a_warning(client: httpx.AsyncClient, uids: dict[str, str]) -> None:
    response = await client.get("/dicom-web/studies", params={"fuzzymatching": "true", "PatientName": "web*"})
    assert response.status_code == 200 and len(response.json()) == 1
    assert response.headers["warning"].startswith("299 ") and "literal matching" in response.headers["warning"]


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
@pytest.mark.parametrize("path, params, words", [
    ("/studies", {"NoSuchKeyword": "x"}, "not a DICOM attribute"),
    ("/studies", {"ReferencedStudySequence.ReferencedSOPInstanceUID": "1.2"}, "sequence matching"),
    ("/studies", {"limit": "ten"}, "limit"),
    ("/studies", {"limit": "0"}, "limit"),
    ("/studies", {"offset": "-1"}, "offset"),
    ("/studies", {"fuzzymatching": "maybe"}, "fuzzymatching"),
    ("/studies", {"SOPInstanceUID": "1.2.3"}, "not supported for matching"),
    ("/studies", {"StudyDate": "last week"}, "not a valid DA"),
    ("/studies", {"includefield": "Nonsense"}, "not a DICOM attribute"),
    ("/studies/1.2.3/series", {"StudyInstanceUID": "1.2.3"}, "more than once"),
    ("/studies/1.02/series", {}, "not a valid UID"),
])
async def test_bad_parameters_are_400(client: httpx.AsyncClient, uids: dict[str, str], path: str,
                                      params: dict[str, str], words: str) -> None:
    response = await client.get(f"/dicom-web{path}", params=params)
    assert words in assert_error(response, 400)


async def test_only_json_is_served(client: httpx.AsyncClient, uids: dict[str, str]) -> None:
    response = await client.get("/dicom-web/studies", headers={"Accept": "application/dicom+xml"})
    assert_error(response, 406)
    assert (await client.get("/dicom-web/studies", headers={"Accept": "application/json"})).status_code == 200
