"""WADO-RS (PS3.18 10.4): instances byte for byte, Accept negotiation, metadata, bulk data."""

from __future__ import annotations

import io

import httpx
import pydicom
import pytest

from tests.web.conftest import SPEC, assert_error, parts_of, value
from twinpacs.app import Site
from twinpacs.synthetic import make_study

pytestmark = pytest.mark.anyio
DICOM = 'multipart/related; type="application/dicom"'


@pytest.fixture
def uids(site: Site, study: list[bytes]) -> dict[str, str]:
    for data in study:
        site.archive.store(data)
    first = make_study(SPEC)[0]
    return {"study": first.StudyInstanceUID, "series": first.SeriesInstanceUID, "sop": first.SOPInstanceUID}


def _path(uids: dict[str, str], level: str) -> str:
    path = f"/dicom-web/studies/{uids['study']}"
    if level in ("series", "instance"):
        path += f"/series/{uids['series']}"
    if level == "instance":
        path += f"/instances/{uids['sop']}"
    return path


@pytest.mark.parametrize("level, count", [("study", 6), ("series", 3), ("instance", 1)])
async def test_retrieve_is_byte_identical(client: httpx.AsyncClient, uids: dict[str, str], study: list[bytes],
                                          level: str, count: int) -> None:
    response = await client.get(_path(uids, level), headers={"Accept": DICOM})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(DICOM + "; boundary=")
    assert int(response.headers["content-length"]) == len(response.content)  # declared, not chunked
    parts = parts_of(response)
    assert len(parts) == count
    for content_type, data in parts:
        assert content_type == 'application/dicom; transfer-syntax="1.2.840.10008.1.2.1"'
        assert data in study


@pytest.mark.parametrize("accept", [
    None, "*/*", DICOM, DICOM + "; transfer-syntax=*", DICOM + "; transfer-syntax=1.2.840.10008.1.2.1",
    "application/dicom", 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50, */*;q=0.1',
])
async def test_accept_allowing_the_stored_syntax(client: httpx.AsyncClient, uids: dict[str, str],
                                                 accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    assert (await client.get(_path(uids, "series"), headers=headers)).status_code == 200


@pytest.mark.parametrize("accept", [
    DICOM + "; transfer-syntax=1.2.840.10008.1.2.4.50",  # would need transcoding
    "application/json",
    'multipart/related; type="application/octet-stream"',
])
async def test_accept_needing_transcoding_is_406(client: httpx.AsyncClient, uids: dict[str, str],
                                                 accept: str) -> None:
    assert "as stored" in assert_error(await client.get(_path(uids, "study"), headers={"Accept": accept}), 406)


async def test_unknown_uids_are_404(client: httpx.AsyncClient, uids: dict[str, str]) -> None:
    for path in ["/dicom-web/studies/1.2.3", f"/dicom-web/studies/{uids['study']}/series/1.2.3",
                 f"{_path(uids, 'series')}/instances/1.2.3", f"{_path(uids, 'series')}/instances/1.2.3/metadata",
                 f"{_path(uids, 'series')}/instances/1.2.3/frames/1",
                 f"{_path(uids, 'series')}/instances/1.2.3/rendered"]:
        assert "no stored instance" in assert_error(await client.get(path), 404)


@pytest.mark.parametrize("level, count", [("study", 6), ("series", 3), ("instance", 1)])
async def test_metadata(client: httpx.AsyncClient, uids: dict[str, str], level: str, count: int) -> None:
    response = await client.get(_path(uids, level) + "/metadata")
    assert response.status_code == 200 and response.headers["content-type"] == "application/dicom+json"
    found = response.json()
    assert len(found) == count
    first = found[0]
    assert value(first, "00100010") == "Web^Wanda" and value(first, "00280010") == 32
    assert set(first["7FE00010"]) == {"vr", "BulkDataURI"} and first["7FE00010"]["vr"] == "OW"
    assert "00020010" not in first  # the file meta is not part of the data set
    dataset = pydicom.Dataset.from_json(first, bulk_data_uri_handler=lambda *args: b"")
    assert dataset.SOPInstanceUID == value(first, "00080018")


async def test_pixel_data_bulk_data_uri_resolves(client: httpx.AsyncClient, uids: dict[str, str],
                                                 study: list[bytes]) -> None:
    (metadata,) = (await client.get(_path(uids, "instance") + "/metadata")).json()
    uri = metadata["7FE00010"]["BulkDataURI"]
    assert uri == f"http://testserver{_path(uids, 'instance')}/bulkdata/7FE00010"
    response = await client.get(uri)
    assert response.status_code == 200
    (part,) = parts_of(response)
    original = pydicom.dcmread(io.BytesIO(study[0]))
    assert part == ('application/octet-stream; transfer-syntax="1.2.840.10008.1.2.1"', original.PixelData)


async def test_bulk_data_errors(client: httpx.AsyncClient, uids: dict[str, str]) -> None:
    base = _path(uids, "instance") + "/bulkdata/"
    assert "no bulk data" in assert_error(await client.get(base + "00100010"), 404)
    assert "is not a tag" in assert_error(await client.get(base + "PixelData"), 400)
