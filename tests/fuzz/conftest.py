"""One fuzzed site per test module (its three doors on loopback), closed after the module.
Hypothesis runs many examples against the same site: the invariants are checked after each."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.doors import FuzzSite


@pytest.fixture(scope="module")
def fuzz_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzSite]:
    site = FuzzSite(tmp_path_factory.mktemp("fuzz"))
    yield site
    try:  # the module's inputs are over: every door answers a valid request
        site.check_echo()
        site.check_http()
        site.check_hl7()
        site.check_store()
    finally:
        site.close()
