"""What a DICOMweb handler needs from its request: the archive, the stored instances its
path names, and URLs of resources."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URLPath
from starlette.requests import Request

from ..core.archive import Archive
from ..core.model import StoredInstance
from ..core.text import check_json_text
from ..errors import InvalidInput
from .body import read_bounded
from .metadata_cache import MetadataCache

_DEFER = 4096  # a deferred read leaves values larger than this on disk until used


def archive_of(request: Request) -> Archive:
    archive: Archive = request.app.state.site.archive
    return archive


def metadata_cache(request: Request) -> MetadataCache:
    """This app's metadata cache; file-backed beside a filesystem store (<data>/cache/metadata)."""
    state = request.app.state
    cache: MetadataCache | None = getattr(state, "metadata_cache", None)
    if cache is None:
        root = getattr(archive_of(request).blobs, "root", None)
        cache = MetadataCache(Path(root).parent / "cache" / "metadata" if root is not None else None)
        state.metadata_cache = cache
    return cache


async def find_instances(request: Request) -> list[StoredInstance]:
    """The current instances under the path's study/series/instance UIDs; NotFound if none."""
    p = request.path_params
    return await run_in_threadpool(
        archive_of(request).instances, p["study"], p.get("series", ""), p.get("instance", ""))


def read_dataset(archive: Archive, instance: StoredInstance, defer: bool = False) -> Dataset:
    """The stored object parsed (blocking). `defer` leaves large values on disk until used."""
    path = archive.path(instance)
    if path is not None:
        return pydicom.dcmread(path, defer_size=_DEFER if defer else None)
    return pydicom.dcmread(io.BytesIO(archive.read(instance)))


_KNOWN_BASES = 64  # distinct (scheme, Host, root path) kept; the Host header is the client's to choose


def _studies_url(request: Request) -> str:
    """The absolute URL of the studies resource, by the request's scheme, Host and root path.
    Found once per such base, not on every request: url_for walked every route (~0.3 ms of each
    QIDO-RS answer), building request.base_url took ~0.1 ms more."""
    scope = request.scope
    host = next((value for name, value in scope["headers"] if name == b"host"), b"")
    key = (scope.get("scheme", "http"), host, scope.get("root_path", ""), scope.get("server"))
    state = request.app.state
    known: dict[Any, str] = getattr(state, "studies_urls", None) or {}
    found = known.get(key)
    if found is None:
        path: URLPath = request.app.url_path_for("search_studies")
        found = str(path.make_absolute_url(request.base_url))
        state.studies_urls = {**(known if len(known) < _KNOWN_BASES else {}), key: found}
    return found


class Urls:
    """Retrieve URLs (PS3.18 10.4) under this server's /studies resource."""

    def __init__(self, request: Request) -> None:
        self.studies = _studies_url(request)

    def study(self, study: str) -> str:
        return f"{self.studies}/{study}"

    def series(self, study: str, series: str) -> str:
        return f"{self.studies}/{study}/series/{series}"

    def instance(self, study: str, series: str, sop: str) -> str:
        return f"{self.studies}/{study}/series/{series}/instances/{sop}"


async def json_object(request: Request, required: bool = True) -> dict[str, Any]:
    """The request body as a JSON object; a 400 with the reason otherwise. An empty body is
    {} when the body is optional. Bounded by limits.max_json_bytes and limits.request_timeout_s."""
    limits = request.app.state.site.settings.limits
    raw = await read_bounded(request, limits.max_json_bytes, limits.request_timeout_s, "limits.max_json_bytes")
    if not raw.strip() and not required:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise InvalidInput("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    check_json_text(body)
    return body
