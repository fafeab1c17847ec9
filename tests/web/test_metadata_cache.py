"""The WADO-RS metadata cache: entries keyed by content hash, URL filled in per request,
files written whole, torn files ignored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twinpacs.web.metadata_cache import FORMAT, MetadataCache, dumps

KEY = "ab" + "0" * 62


def _compute(calls: list[int]) -> Any:
    def compute(bulk_uri: Any) -> dict[str, Any]:
        calls.append(1)
        return {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Dœ^J"}]},
                "7FE00010": {"vr": "OW", "BulkDataURI": bulk_uri(0x7FE00010)}}
    return compute


def test_same_text_as_direct_encoding_with_each_requests_url(tmp_path: Path) -> None:
    cache, calls = MetadataCache(tmp_path), []
    first = cache.instance_json(KEY, "http://a/studies/1/series/2/instances/3", _compute(calls))
    second = cache.instance_json(KEY, "http://b:8/x/instances/3", _compute(calls))
    assert calls == [1]  # computed once
    expected = _compute([])(lambda tag: f"http://a/studies/1/series/2/instances/3/bulkdata/{tag:08X}")
    assert first == dumps(expected)
    assert json.loads(second)["7FE00010"]["BulkDataURI"] == "http://b:8/x/instances/3/bulkdata/7FE00010"


def test_file_entry_survives_a_new_cache_and_a_torn_one_is_recomputed(tmp_path: Path) -> None:
    calls: list[int] = []
    text = MetadataCache(tmp_path).instance_json(KEY, "http://a/i", _compute(calls))
    (entry,) = (tmp_path / FORMAT).rglob("*.json")
    assert MetadataCache(tmp_path).instance_json(KEY, "http://a/i", _compute(calls)) == text
    assert calls == [1]
    entry.write_text(entry.read_text()[:40])  # torn
    assert MetadataCache(tmp_path).instance_json(KEY, "http://a/i", _compute(calls)) == text
    assert calls == [1, 1]


def test_memory_only_and_bounded() -> None:
    cache, calls = MetadataCache(None, max_bytes=400), []
    for i in range(5):
        cache.instance_json(f"{i:02d}" + "f" * 62, "u", _compute(calls))
    assert len(calls) == 5 and cache._bytes <= 400
