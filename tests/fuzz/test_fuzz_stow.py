"""STOW-RS fuzzed: random bytes, truncated and corrupted files, huge lengths, deep sequences,
oversized values, broken multipart framing. Never a 5xx, never a partial object."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.doors import REAL, FuzzSite, nested_sequences, stow_body, stow_inputs, with_values

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
FUZZ = settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@FUZZ
@given(stow_inputs())
def test_stow_survives_any_body(fuzz_site: FuzzSite, body_and_type: tuple[bytes, str]) -> None:
    response = fuzz_site.send_stow(*body_and_type)
    assert response.status_code in (200, 202, 400, 409, 413, 415), response.text[:300]


def test_a_deeply_nested_instance_is_refused_not_a_crash(fuzz_site: FuzzSite) -> None:
    response = fuzz_site.send_stow(*stow_body([nested_sequences(3000)]))
    assert response.status_code in (200, 409)
    fuzz_site.check_http()


def test_an_oversized_value_is_stored_or_refused_whole(fuzz_site: FuzzSite) -> None:
    response = fuzz_site.send_stow(*stow_body([with_values(PatientName="A" * 300_000), REAL]))
    assert response.status_code in (200, 202, 409, 413)


@pytest.mark.parametrize("name", ["a\\", "x\\=", "=\\=", "="])
def test_names_without_a_component_can_be_searched_and_read(fuzz_site: FuzzSite, name: str) -> None:
    """Regression (found by fuzzing): a person name value with no component group among several
    made QIDO-RS and WADO-RS metadata answer 500 (pydicom's JSON writer raised IndexError)."""
    response = fuzz_site.send_stow(*stow_body([with_values(PatientName=name, ReferringPhysicianName=name)]))
    assert response.status_code == 200  # send_stow has searched and read it back


def test_a_corrupt_vr_in_an_identifying_element_is_a_failed_part(fuzz_site: FuzzSite) -> None:
    """Regression (found by fuzzing): a bad VR in SOP Class UID made STOW-RS answer 500 (the
    part's UIDs, read for the response, raised outside the part's error handling)."""
    at = REAL.index(b"\x08\x00\x16\x00UI")
    corrupt = REAL[:at + 4] + b"U\x1a" + REAL[at + 6:]
    response = fuzz_site.send_stow(*stow_body([corrupt]))
    assert response.status_code == 409 and "00081198" in response.json()


def test_a_number_that_is_not_a_number_can_be_read_back(fuzz_site: FuzzSite) -> None:
    """Regression (found by fuzzing): a DS value such as ";20.0", stored as received, made
    WADO-RS metadata answer 500 (pydicom's JSON writer raised ValueError)."""
    instance = with_values(PatientID="NAN")
    spacing = instance.index(b"(\x000\x00DS\x10\x0043.7500\\43.7500")  # PixelSpacing, as REAL has it
    instance = instance[:spacing + 8] + b"43.7500\\;3.7500 " + instance[spacing + 24:]
    response = fuzz_site.send_stow(*stow_body([instance]))
    assert response.status_code == 200  # send_stow has read the metadata back
