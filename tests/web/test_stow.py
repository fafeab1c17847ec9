"""STOW-RS (PS3.18 10.5): statuses, the response dataset, and bad input that stores nothing."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import httpx
import pydicom
import pytest
from pydicom import config

from tests.web.conftest import SPEC, assert_error, instances_held, stow, stow_body, value
from twinpacs.app import Site
from twinpacs.synthetic import StudySpec, encode, make_study

pytestmark = pytest.mark.anyio
REFERENCED, FAILED, RETRIEVE_URL = "00081199", "00081198", "00081190"
FAILURE_REASON, WARNING_REASON, ERROR_COMMENT = "00081197", "00081196", "00000902"


def _variant(**attributes: str) -> bytes:
    """The first instance of SPEC with some attributes changed (validation off: some are invalid)."""
    ds = make_study(SPEC)[0]
    with warnings.catch_warnings(), config.disable_value_validation():
        warnings.simplefilter("ignore")
        for keyword, new in attributes.items():
            if new:
                setattr(ds, keyword, new)
            else:
                delattr(ds, keyword)
        if "SOPInstanceUID" in ds:
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return encode(ds)


async def test_store_a_study(client: httpx.AsyncClient, site: Site, study: list[bytes]) -> None:
    response = await stow(client, study)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom+json"
    body = response.json()
    study_uid = pydicom.dcmread(pydicom.filebase.DicomBytesIO(study[0])).StudyInstanceUID
    assert value(body, RETRIEVE_URL) == f"http://testserver/dicom-web/studies/{study_uid}"
    items = body[REFERENCED]["Value"]
    assert len(items) == 6 and FAILED not in body
    for item in items:
        url = value(item, RETRIEVE_URL)
        assert url.endswith("/instances/" + value(item, "00081155"))
        assert (await client.get(url)).status_code == 200
    assert instances_held(site) == 6
    figures = (await client.get("/api/figures")).json()
    assert figures["bytes_received"] == figures["bytes_written"] == sum(map(len, study))


async def test_storing_again_writes_nothing(client: httpx.AsyncClient, site: Site, study: list[bytes]) -> None:
    await stow(client, study)
    written = (await client.get("/api/figures")).json()["bytes_written"]
    again = await stow(client, study)
    assert again.status_code == 200 and len(again.json()[REFERENCED]["Value"]) == 6
    figures = (await client.get("/api/figures")).json()
    assert figures["bytes_written"] == written and figures["duplicates_received"] == 6  # G2
    assert instances_held(site) == 6


async def test_conflicting_version_is_kept_with_a_warning(client: httpx.AsyncClient, site: Site,
                                                          study: list[bytes]) -> None:
    await stow(client, study)
    response = await stow(client, [_variant(PatientName="Other^Olga")])
    assert response.status_code == 202
    (item,) = response.json()[REFERENCED]["Value"]
    assert value(item, WARNING_REASON) == 0xB000
    assert "other content" in value(item, ERROR_COMMENT)
    assert instances_held(site) == 6 and len(site.archive.conflicts()) == 1


async def test_some_stored_some_failed_is_202(client: httpx.AsyncClient, site: Site, study: list[bytes]) -> None:
    response = await stow(client, [study[0], b"not DICOM at all" * 20])
    assert response.status_code == 202
    body = response.json()
    assert len(body[REFERENCED]["Value"]) == 1
    (failed,) = body[FAILED]["Value"]
    assert value(failed, FAILURE_REASON) == 0xC000
    assert instances_held(site) == 1


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
@pytest.mark.parametrize("name, make, reason, words", [
    ("non-DICOM", lambda s: b"GIF89a" + bytes(500), 0xC000, "not a DICOM"),
    ("truncated", lambda s: s[0][:-100], 0xC000, "truncated"),
    ("missing SOP Instance UID", lambda s: _variant(SOPInstanceUID=""), 0xA900, "SOPInstanceUID"),
    ("invalid UID", lambda s: _variant(SOPInstanceUID="1.2.03.x"), 0xA900, "not a valid UID"),
])
async def test_bad_instances_fail_and_store_nothing(client: httpx.AsyncClient, site: Site, study: list[bytes],
                                                    name: str, make: Callable[[list[bytes]], bytes],
                                                    reason: int, words: str) -> None:
    response = await stow(client, [make(study)])
    assert response.status_code == 409, name
    (failed,) = response.json()[FAILED]["Value"]
    assert value(failed, FAILURE_REASON) == reason
    assert words in value(failed, ERROR_COMMENT)
    assert REFERENCED not in response.json()
    assert instances_held(site) == 0


async def test_an_instance_of_another_study_is_refused(client: httpx.AsyncClient, site: Site,
                                                       study: list[bytes]) -> None:
    other = encode(make_study(StudySpec(patient_id="OTHER", series=1, instances_per_series=1, rows=8, columns=8))[0])
    target = pydicom.dcmread(pydicom.filebase.DicomBytesIO(study[0])).StudyInstanceUID
    response = await stow(client, [study[0], other], study=target)
    assert response.status_code == 202
    (failed,) = response.json()[FAILED]["Value"]
    assert value(failed, FAILURE_REASON) == 0xA900 and "not to " + target in value(failed, ERROR_COMMENT)
    assert instances_held(site) == 1
    only_other = await stow(client, [other], study=target)
    assert only_other.status_code == 409 and instances_held(site) == 1


def _headers(content_type: str) -> dict[str, str]:
    return {"Content-Type": content_type}


@pytest.mark.parametrize("case, status", [
    ("no content type", 400),
    ("not multipart", 415),
    ("metadata and bulk data", 415),
    ("part of another type", 415),
    ("no boundary", 400),
    ("wrong boundary", 400),
    ("no closing boundary", 400),
    ("no parts", 400),
])
async def test_bad_bodies_store_nothing(client: httpx.AsyncClient, site: Site, study: list[bytes],
                                        case: str, status: int) -> None:
    body, headers = stow_body(study[:2])
    boundary = headers["Content-Type"].split("boundary=")[1]
    if case == "no content type":
        headers = {}
    elif case == "not multipart":
        headers, body = _headers("application/dicom"), study[0]
    elif case == "metadata and bulk data":
        headers = _headers(f'multipart/related; type="application/dicom+json"; boundary={boundary}')
    elif case == "part of another type":
        body, _ = stow_body(study[:1], part_type="application/octet-stream")
        headers = _headers(f"multipart/related; boundary={boundary}")
        body = body.replace(body[2:34], boundary.encode())
    elif case == "no boundary":
        headers = _headers('multipart/related; type="application/dicom"')
    elif case == "wrong boundary":
        headers = _headers('multipart/related; type="application/dicom"; boundary=not-the-one')
    elif case == "no closing boundary":
        body = body[: body.rindex(b"--" + boundary.encode())]  # both parts complete, the end missing
    elif case == "no parts":
        body = f"--{boundary}--\r\n".encode()
    response = await client.post("/dicom-web/studies", content=body, headers=headers)
    assert_error(response, status)
    assert instances_held(site) == 0


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
async def test_invalid_study_uid_in_path_is_400(client: httpx.AsyncClient, study: list[bytes]) -> None:
    response = await stow(client, study[:1], study="1.2.abc")
    assert "not a valid UID" in assert_error(response, 400)
