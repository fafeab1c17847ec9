"""The DIMSE door fuzzed: C-STORE of hostile data sets sent byte for byte, raw P-DATA with bad
PDVs on an established association, and raw PDUs on fresh connections (random bytes, headers
with bad lengths, truncated and corrupted A-ASSOCIATE-RQs). No crash, no hang, no partial
object, and C-ECHO answers after each."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.doors import FuzzSite, dataset_bytes, dicom_inputs, pdata_inputs, pdu_inputs

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
FUZZ = settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@FUZZ
@given(dicom_inputs().map(dataset_bytes))
def test_cstore_survives_any_data_set(fuzz_site: FuzzSite, dataset: bytes) -> None:
    fuzz_site.send_cstore(dataset)
    fuzz_site.check_echo()


@FUZZ
@given(pdata_inputs())
def test_raw_pdata_on_an_association_is_survived(fuzz_site: FuzzSite, pdu: bytes) -> None:
    fuzz_site.send_pdata(pdu)
    fuzz_site.check_echo()


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(pdu_inputs())
def test_raw_pdus_are_answered_or_closed(fuzz_site: FuzzSite, data: bytes) -> None:
    answer = fuzz_site.send_pdu(data)
    if answer:
        assert answer[0] in (0x02, 0x03, 0x07), f"answered with PDU type {answer[0]:#x}"  # AC, RJ or A-ABORT
    fuzz_site.check_echo()
