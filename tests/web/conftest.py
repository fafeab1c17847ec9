"""A site in this process, its Starlette app, and DICOM test objects."""

from __future__ import annotations

from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.synthetic import StudySpec, encode, make_study
from twinpacs.web.multipart import encode_parts, new_boundary
from tests.backend import backend_url

SPEC = StudySpec(patient_id="WEB01", patient_name="Web^Wanda", series=2, instances_per_series=3,
                 rows=32, columns=32, accession_number="ACC-WEB", seed=7)
DICOM = "application/dicom"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    data_dir = tmp_path / "site"
    built = build_site(load_settings(overrides={"site": {"data_dir": data_dir, "name": "web-test"},
                                                "database": {"url": backend_url(data_dir)}}))
    yield built
    built.close()


@pytest.fixture(scope="session")
def study() -> list[bytes]:
    """Six single-frame CT instances (2 series x 3), Explicit VR Little Endian."""
    return [encode(ds) for ds in make_study(SPEC)]


def stow_body(parts: list[bytes], part_type: str = DICOM) -> tuple[bytes, dict[str, str]]:
    boundary = new_boundary()
    body = encode_parts([(part_type, p) for p in parts], boundary)
    return body, {"Content-Type": f'multipart/related; type="{DICOM}"; boundary={boundary}'}


async def stow(client: httpx.AsyncClient, parts: list[bytes], study: str = "") -> httpx.Response:
    body, headers = stow_body(parts)
    return await client.post("/dicom-web/studies" + (f"/{study}" if study else ""), content=body, headers=headers)


def instances_held(site: Site) -> int:
    return site.index.counts()["instances"]


def value(item: dict[str, Any], tag: str) -> Any:
    """The first value of a DICOM JSON attribute (PN as its Alphabetic group)."""
    found = item[tag]["Value"][0]
    return found["Alphabetic"] if isinstance(found, dict) and "Alphabetic" in found else found


def assert_error(response: httpx.Response, status: int) -> str:
    """The one error shape: {"error": <text>, "status": <int>}; returns the text."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "status"} and body["status"] == status and body["error"]
    return str(body["error"])


def multiframe(transfer_syntax: str = ExplicitVRLittleEndian, frames: int = 3) -> bytes:
    """A multi-frame instance whose frame k has every pixel = 100 * k (k from 1)."""
    ds: Dataset = make_study(StudySpec(patient_id="WEBMF", series=1, instances_per_series=1,
                                       rows=16, columns=16, seed=9))[0]
    arr = np.stack([np.full((16, 16), 100 * k, dtype=np.uint16) for k in range(1, frames + 1)])
    ds.NumberOfFrames = frames
    ds.PixelData = arr.tobytes()
    if transfer_syntax == RLELossless:
        ds.compress(RLELossless, arr, generate_instance_uid=False)
    return encode(ds)


def parts_of(response: httpx.Response) -> list[tuple[str, bytes]]:
    """(Content-Type, bytes) of each part of a multipart response, read with the stdlib's
    MIME parser: an independent reader of what the server wrote."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + response.headers["content-type"].encode() + b"\r\n\r\n" + response.content)
    return [(str(part["Content-Type"]), bytes(part.get_payload(decode=True)))
            for part in message.iter_parts()]
