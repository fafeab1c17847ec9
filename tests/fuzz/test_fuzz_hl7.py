"""The HL7 (MLLP) door fuzzed: odd MSH and encoding characters, missing and unknown segments,
huge fields, binary, broken framing. Every complete frame gets an ACK or the connection
closes; a valid message is acknowledged AA afterwards."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.doors import FuzzSite, hl7_inputs

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
FUZZ = settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@FUZZ
@given(hl7_inputs())
def test_hl7_survives_any_frame(fuzz_site: FuzzSite, data: bytes) -> None:
    ack = fuzz_site.send_hl7(data)
    if ack is not None:
        separator = ack[3:4]  # the ACK answers in the sender's own delimiters
        assert ack.startswith(b"MSH") and b"\rMSA" + separator + b"A" in ack, ack[:200]
    fuzz_site.check_hl7()
