"""WADO-RS frames and rendered images (PS3.18 10.4, 8.3.5)."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import get_frame
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, RLELossless

from tests.web.conftest import assert_error, multiframe, parts_of
from twinpacs.app import Site
from twinpacs.synthetic import StudySpec, encode, make_study

pytestmark = pytest.mark.anyio
RLE = "1.2.840.10008.1.2.5"
OCTETS = 'multipart/related; type="application/octet-stream"'
NATIVE_PART = 'application/octet-stream; transfer-syntax="1.2.840.10008.1.2.1"'


def _store(site: Site, data: bytes) -> str:
    site.archive.store(data)
    ds = pydicom.dcmread(io.BytesIO(data))
    return f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"


def _frame(k: int) -> bytes:
    """Frame k of multiframe(): 16 x 16 pixels of 100 * k, 16-bit little endian."""
    return np.full((16, 16), 100 * k, dtype="<u2").tobytes()


async def test_native_frames(client: httpx.AsyncClient, site: Site) -> None:
    path = _store(site, multiframe(ExplicitVRLittleEndian))
    for accept in (None, OCTETS, OCTETS + "; transfer-syntax=*"):
        response = await client.get(path + "/frames/3,1", headers={"Accept": accept} if accept else {})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(OCTETS)
        assert parts_of(response) == [(NATIVE_PART, _frame(3)), (NATIVE_PART, _frame(1))]


async def test_compressed_frames_as_stored_or_decoded(client: httpx.AsyncClient, site: Site) -> None:
    data = multiframe(RLELossless)
    path = _store(site, data)
    pixel_data = pydicom.dcmread(io.BytesIO(data)).PixelData
    stored = [get_frame(pixel_data, k, number_of_frames=3) for k in range(3)]
    as_stored = await client.get(path + "/frames/2")  # no Accept: the stored bitstream
    assert parts_of(as_stored) == [(f'image/dicom-rle; transfer-syntax="{RLE}"', stored[1])]
    labelled = await client.get(path + "/frames/2", headers={"Accept": OCTETS + "; transfer-syntax=*"})
    assert parts_of(labelled) == [(f'application/octet-stream; transfer-syntax="{RLE}"', stored[1])]
    decoded = await client.get(path + "/frames/1,2,3", headers={"Accept": OCTETS})  # uncompressed asked
    assert parts_of(decoded) == [(NATIVE_PART, _frame(k)) for k in (1, 2, 3)]
    assert_error(await client.get(path + "/frames/1", headers={"Accept": 'multipart/related; type="image/jpeg"'}), 406)


async def test_jpeg_frames(client: httpx.AsyncClient, site: Site) -> None:
    data = encode(make_study(StudySpec(series=1, instances_per_series=1, rows=16, columns=16,
                                       transfer_syntax=JPEGBaseline8Bit))[0])
    path = _store(site, data)
    response = await client.get(path + "/frames/1", headers={"Accept": 'multipart/related; type="image/jpeg"'})
    ((content_type, frame),) = parts_of(response)
    assert content_type == 'image/jpeg; transfer-syntax="1.2.840.10008.1.2.4.50"' and frame[:2] == b"\xff\xd8"


@pytest.mark.parametrize("frames, status", [("4", 404), ("0", 400), ("1,x", 400), ("", 404)])
async def test_bad_frame_lists(client: httpx.AsyncClient, site: Site, frames: str, status: int) -> None:
    path = _store(site, multiframe())
    assert_error(await client.get(f"{path}/frames/{frames}"), status)


def _pixels(response: httpx.Response) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(response.content)))


@pytest.mark.parametrize("transfer_syntax", [ExplicitVRLittleEndian, RLELossless])
async def test_rendered_window(client: httpx.AsyncClient, site: Site, transfer_syntax: str) -> None:
    """Frame k holds 100 * k, i.e. HU 100 * k - 1024; window -824,200 maps HU -924..-724 onto 0..255."""
    path = _store(site, multiframe(transfer_syntax))
    grey = []
    for k in (1, 2, 3):
        response = await client.get(f"{path}/frames/{k}/rendered", params={"window": "-824,200,linear-exact"})
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        pixels = _pixels(response)
        assert pixels.shape == (16, 16) and len(np.unique(pixels)) == 1
        grey.append(int(pixels[0, 0]))
    assert grey == [0, 128, 255]
    sigmoid = await client.get(f"{path}/frames/2/rendered", params={"window": "-824,200,sigmoid"})
    assert int(_pixels(sigmoid)[0, 0]) == 128


async def test_rendered_defaults_and_media_types(client: httpx.AsyncClient, site: Site) -> None:
    ds = make_study(StudySpec(series=1, instances_per_series=1, rows=32, columns=32))[0]
    path = _store(site, encode(ds))
    png = await client.get(path + "/rendered")  # the object's own window: 40/400
    expected = np.clip(((ds.pixel_array - 1024.0) - 39.5) / 399 + 0.5, 0, 1) * 255
    assert np.abs(_pixels(png).astype(float) - expected).max() <= 1
    jpeg = await client.get(path + "/rendered", headers={"Accept": "image/jpeg"}, params={"quality": "80"})
    assert jpeg.headers["content-type"] == "image/jpeg" and jpeg.content[:2] == b"\xff\xd8"
    thumb = await client.get(path + "/rendered", params={"viewport": "64,16"})
    assert Image.open(io.BytesIO(thumb.content)).size == (16, 16)
    lossy = make_study(StudySpec(series=1, instances_per_series=1, transfer_syntax=JPEGBaseline8Bit))[0]
    assert (await client.get(_store(site, encode(lossy)) + "/rendered")).status_code == 200


@pytest.mark.parametrize("suffix, params, accept, status", [
    ("/rendered", {"window": "40"}, None, 400),
    ("/rendered", {"window": "40,0"}, None, 400),
    ("/rendered", {"window": "40,400,cubic"}, None, 400),
    ("/rendered", {"quality": "101"}, None, 400),
    ("/rendered", {"annotation": "patient"}, None, 400),
    ("/rendered", {"colour": "yes"}, None, 400),
    ("/rendered", {}, "image/gif", 406),
    ("/frames/1,2/rendered", {}, None, 400),
    ("/frames/9/rendered", {}, None, 404),
])
async def test_rendered_errors(client: httpx.AsyncClient, site: Site, suffix: str, params: dict[str, str],
                               accept: str | None, status: int) -> None:
    path = _store(site, multiframe())
    response = await client.get(path + suffix, params=params, headers={"Accept": accept} if accept else {})
    assert_error(response, status)
