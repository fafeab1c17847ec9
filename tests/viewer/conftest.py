"""A served site holding a patient's CT study, its priors and a study without one, and one
headless Chromium (Debian's, driven by Playwright) for the whole module.

The images are synthetic CT whose centre is a flat square of a known Hounsfield value that
differs per instance (and per frame), so a grey level read from the canvas says which image
is on screen and whether window/level was applied as stated."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import pytest
from playwright.sync_api import Browser, Page
from pydicom import Dataset

from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.synthetic import StudySpec, encode, make_study
from twinpacs.web.viewer import MANIFEST
from tests.backend import backend_url
from tests.browser import chromium
from tests.served import ServedApp

SIZE = 64
SQUARE = slice(SIZE // 4, 3 * SIZE // 4)  # the flat centre: half the image each way


def centre_hu(instance: int, frame: int = 1, study_offset: int = 0) -> int:
    """The flat centre's value: inside the CT images' stored window (W 400 L 40) for 1..20; the
    prior's is offset by PRIOR_OFFSET, more than the tolerance apart from the current's."""
    return -150 + 15 * instance + 40 * (frame - 1) + study_offset


PRIOR_OFFSET = 7  # HU: 4.5 grey levels in W 400


def expected_grey(hu: float, width: float, center: float) -> float:
    """DICOM's linear VOI function (PS3.3 C.11.2.1.2.1) onto 0..255."""
    lower, upper = center - 0.5 - (width - 1) / 2, center - 0.5 + (width - 1) / 2
    return float(np.clip((hu - lower) / (upper - lower), 0, 1) * 255)


def _flat_centre(ds: Dataset, frames: int = 1, study_offset: int = 0) -> Dataset:
    """The synthetic phantom with its centre square set to centre_hu (stored value = HU + 1024)."""
    base = np.frombuffer(ds.PixelData, dtype="<u2").reshape(ds.Rows, ds.Columns)
    stack = np.stack([base.copy() for _ in range(frames)])
    for k in range(frames):
        stack[k][SQUARE, SQUARE] = centre_hu(int(ds.InstanceNumber), k + 1, study_offset) + 1024
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = stack.astype("<u2").tobytes()
    return ds


@dataclass
class Archive:
    url: str
    current: str  # the patient's newest CT: series 1 (20 images), series 2 (one 3-frame instance)
    multiframe_series: str
    prior: str  # the most recent earlier CT of the same patient
    older_prior: str  # an older CT of the same patient
    mr: str  # a later-than-prior MR of the same patient: not a relevant prior for a CT
    lone: str  # another patient's only study


def _study(spec: StudySpec, study_offset: int = 0) -> list[Dataset]:
    return [_flat_centre(ds, study_offset=study_offset) for ds in make_study(spec)]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    data_dir = tmp_path_factory.mktemp("viewer") / "site"
    site: Site = build_site(load_settings(overrides={"site": {"data_dir": data_dir, "name": "viewer-test"},
                                                     "database": {"url": backend_url(data_dir)}}))
    base = StudySpec(patient_id="VIEW01", patient_name="Viewer^Vera", rows=SIZE, columns=SIZE, series=1)
    current = _study(replace(base, instances_per_series=20, study_date="20261130", accession_number="ACC-NOW",
                             seed=1))
    # series 2 of the same study (same seed and patient: same study UID), as one 3-frame instance
    multiframe = make_study(replace(base, instances_per_series=1, study_date="20261130", seed=1, series=2))[1]
    multiframe.SeriesDescription = "Synthetic CT multi-frame"
    current.append(_flat_centre(multiframe, frames=3))
    prior = _study(replace(base, instances_per_series=5, study_date="20250601", seed=2), PRIOR_OFFSET)
    older = _study(replace(base, instances_per_series=2, study_date="20240101", seed=3))
    mr = _study(replace(base, modality="MR", instances_per_series=2, study_date="20260101", seed=4))
    lone = _study(StudySpec(patient_id="VIEW02", patient_name="Lone^Leo", rows=SIZE, columns=SIZE, series=1,
                            instances_per_series=2, seed=5))
    for ds in [*current, *prior, *older, *mr, *lone]:
        site.archive.store(encode(ds), "TEST")
    served = ServedApp(site)
    yield Archive(served.url, current[0].StudyInstanceUID, multiframe.SeriesInstanceUID, prior[0].StudyInstanceUID,
                  older[0].StudyInstanceUID, mr[0].StudyInstanceUID, lone[0].StudyInstanceUID)
    served.stop()
    site.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not MANIFEST.is_file():
        pytest.fail(f"the viewer bundle is not built ({MANIFEST} is missing): run scripts/setup.sh, "
                    "which builds frontend/ with Node.js 20 or later")
    with chromium("--use-angle=swiftshader", "--enable-unsafe-swiftshader") as launched:
        yield launched


@pytest.fixture(scope="module")
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 700})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda exc: problems.append(str(exc)))
    yield opened
    context.close()
    assert not problems, f"the page raised: {problems}"
