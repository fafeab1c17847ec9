"""Interoperability: dicomweb-client, a client nobody here wrote, against a real uvicorn
server on a loopback port, in this process."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from PIL import Image

from tests.web.conftest import SPEC, multiframe
from twinpacs.app import build_site
from twinpacs.config import load_settings
from twinpacs.synthetic import encode, make_study
from tests.backend import backend_url
from tests.served import ServedApp


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("dicomweb-client")
    site = build_site(load_settings(overrides={"site": {"data_dir": data_dir},
                                               "database": {"url": backend_url(data_dir)}}))
    served = ServedApp(site)
    yield f"{served.url}/dicom-web"
    served.stop()
    site.close()


@pytest.fixture(scope="module")
def web(server: str) -> DICOMwebClient:
    return DICOMwebClient(server)


@pytest.fixture(scope="module")
def originals(web: DICOMwebClient) -> dict[str, pydicom.Dataset]:
    """SPEC's study and one multi-frame instance, read from Part 10 bytes as a user's files
    would be (store_instances writes a preamble only for datasets that have one)."""
    datasets = [pydicom.dcmread(io.BytesIO(data)) for data in [*map(encode, make_study(SPEC)), multiframe()]]
    response = web.store_instances(datasets)
    assert len(response.ReferencedSOPSequence) == 7 and "FailedSOPSequence" not in response
    return {ds.SOPInstanceUID: ds for ds in datasets}


def test_search(web: DICOMwebClient, originals: dict[str, pydicom.Dataset]) -> None:
    first = originals[next(iter(originals))]
    (study,) = web.search_for_studies(search_filters={"PatientName": "web*", "StudyDate": "20260101-20261231"})
    assert study["00100020"]["Value"] == ["WEB01"]
    assert web.search_for_studies(search_filters={"PatientID": "NOBODY"}) == []
    series = web.search_for_series(first.StudyInstanceUID, search_filters={"Modality": "CT"})
    assert len(series) == 2
    instances = web.search_for_instances(first.StudyInstanceUID, first.SeriesInstanceUID,
                                         fields=["ImageType"], limit=2, offset=1)
    assert [i["00200013"]["Value"][0] for i in instances] == [2, 3]
    assert len(web.search_for_instances()) == 7


def test_retrieve(web: DICOMwebClient, originals: dict[str, pydicom.Dataset]) -> None:
    first = originals[next(iter(originals))]
    study = web.retrieve_study(first.StudyInstanceUID)
    assert len(study) == 6
    for ds in study:
        assert ds == originals[ds.SOPInstanceUID] and ds.file_meta == originals[ds.SOPInstanceUID].file_meta
    assert len(web.retrieve_series(first.StudyInstanceUID, first.SeriesInstanceUID)) == 3
    one = web.retrieve_instance(first.StudyInstanceUID, first.SeriesInstanceUID, first.SOPInstanceUID)
    assert one.PixelData == first.PixelData


def test_metadata_and_bulk_data(web: DICOMwebClient, originals: dict[str, pydicom.Dataset], server: str) -> None:
    first = originals[next(iter(originals))]
    assert len(web.retrieve_study_metadata(first.StudyInstanceUID)) == 6
    assert len(web.retrieve_series_metadata(first.StudyInstanceUID, first.SeriesInstanceUID)) == 3
    metadata = web.retrieve_instance_metadata(first.StudyInstanceUID, first.SeriesInstanceUID,
                                              first.SOPInstanceUID)
    assert metadata["00080018"]["Value"] == [first.SOPInstanceUID]
    uri = metadata["7FE00010"]["BulkDataURI"]
    instance = f"/studies/{first.StudyInstanceUID}/series/{first.SeriesInstanceUID}/instances/{first.SOPInstanceUID}"
    assert uri.endswith(f"/dicom-web{instance}/bulkdata/7FE00010")
    # dicomweb-client 0.61.2 sends "Host: 127.0.0.1" without the port (web.py, _http_get), so
    # absolute URLs built from Host (RFC 9110 7.2) name port 80; follow the path on our port.
    (pixels,) = web.retrieve_bulkdata(f"{server}{instance}/bulkdata/7FE00010")
    assert pixels == first.PixelData


def test_frames_and_rendered(web: DICOMwebClient, originals: dict[str, pydicom.Dataset]) -> None:
    (mf,) = [ds for ds in originals.values() if "NumberOfFrames" in ds]
    uids = (mf.StudyInstanceUID, mf.SeriesInstanceUID, mf.SOPInstanceUID)
    frames = web.retrieve_instance_frames(*uids, frame_numbers=[2, 3])
    assert frames == [np.full((16, 16), 100 * k, dtype="<u2").tobytes() for k in (2, 3)]
    png = web.retrieve_instance_rendered(*uids, media_types=("image/png",))
    assert Image.open(io.BytesIO(png)).size == (16, 16)
    jpeg = web.retrieve_instance_frames_rendered(*uids, frame_numbers=[2], media_types=("image/jpeg",),
                                                 params={"window": "-824,200"})
    assert jpeg[:2] == b"\xff\xd8"


def test_errors_reach_the_client(web: DICOMwebClient, originals: dict[str, pydicom.Dataset]) -> None:
    with pytest.raises(requests.HTTPError) as bad:
        web.search_for_studies(search_filters={"NoSuchKeyword": "x"})
    assert bad.value.response is not None and bad.value.response.status_code == 400
    assert "NoSuchKeyword" in bad.value.response.json()["error"]
    with pytest.raises(requests.HTTPError) as missing:
        web.retrieve_study("1.2.3.4")
    assert missing.value.response is not None and missing.value.response.status_code == 404
