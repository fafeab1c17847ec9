"""Script-like and path-like text in every field the pages show (patient name and ID, study and
series description, referring physician, institution, body part; the HL7 order's procedure,
reason, clinical information, physicians and patient; a notice's title and text; the worklist's
filter parameters): stored through the real doors, the pages render it as text. No element,
attribute, event handler or script is ever made from it, and no page fails."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.doors import FuzzSite, check_escaped, page_payloads, plant

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
_numbers = itertools.count(1)


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(page_payloads())
def test_pages_show_hostile_text_as_text(fuzz_site: FuzzSite, payload: str) -> None:
    fuzz_site.send_page_text(payload, next(_numbers))


def test_the_study_page_shows_the_payload_escaped(fuzz_site: FuzzSite) -> None:
    text = "zq0x<script>alert(1)</script>"
    study = plant(fuzz_site, text, 0)
    html = fuzz_site.get_page(f"/studies/{study}")
    # shown, as text: patient, study, series, institution, and the order's physicians, reason, clinical info
    assert html.count("zq0x&lt;script&gt;alert(1)&lt;/script&gt;") >= 10
    for field in ("referring", "clinical reason", "clinical clinical-info"):
        assert f'<dd class="{field}">zq0x&lt;script&gt;' in html
    check_escaped(html, text, "zq0x", "study page")
