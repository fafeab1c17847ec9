"""QIDO-RS, the Search transaction (PS3.18 10.6).

Query parameters are match keys (keyword or tag), includefield, limit, offset and
fuzzymatching (accepted, not performed: a Warning says so, PS3.18 8.3.4). At most
limits.max_query_results matches are returned, also when no limit or a larger one is asked
for; a response cut there says so in a Warning and the client pages on with offset (8.3.4.4). A parameter
this server cannot honour is a 400 naming it, never silently dropped. No match is a 200
with an empty array, as the current PS3.18 10.6.3 specifies (earlier editions used 204)."""

from __future__ import annotations

import re
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..core.archive import Archive
from ..core.model import COMPUTED_KEYS, Level, keys_up_to
from ..core.query import build_query, matchable_keys
from ..errors import InvalidQuery
from .context import Urls, archive_of
from .dicomjson import DicomJSONResponse, texts_to_json
from .errors import NotAcceptable
from .media import accepts_json

# Default return attributes (PS3.18 Tables 10.6.3-3, -4, -5), where this archive keeps them.
STUDY_KEYS = (
    "StudyDate", "StudyTime", "AccessionNumber", "InstanceAvailability", "ModalitiesInStudy",
    "ReferringPhysicianName", "RetrieveURL", "PatientName", "PatientID", "PatientBirthDate",
    "PatientSex", "StudyInstanceUID", "StudyID", "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
SERIES_KEYS = ("Modality", "SeriesDescription", "RetrieveURL", "SeriesInstanceUID", "SeriesNumber",
               "NumberOfSeriesRelatedInstances")
INSTANCE_KEYS = ("SOPClassUID", "SOPInstanceUID", "InstanceAvailability", "RetrieveURL",
                 "InstanceNumber", "Rows", "Columns", "NumberOfFrames")
# Values the web door supplies itself: JSON is UTF-8 (PS3.18 F.2), everything held is online.
_CONSTANTS = {"SpecificCharacterSet": "ISO_IR 192", "InstanceAvailability": "ONLINE"}
_TAG = re.compile(r"^\(?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?$")
_CONTROL = {"includefield", "limit", "offset", "fuzzymatching"}


def _supplied(level: Level) -> set[str]:
    return {*keys_up_to(level), *COMPUTED_KEYS[level], *_CONSTANTS, "RetrieveURL"}


def keyword_of(attribute: str) -> str:
    """An attribute given as keyword, ggggeeee or (gggg,eeee) -> its keyword (PS3.18 8.3.4)."""
    if tag_for_keyword(attribute) is not None:
        return attribute
    found = _TAG.match(attribute)
    keyword = keyword_for_tag(int(found[1] + found[2], 16)) if found else ""
    if not keyword:
        hint = "; sequence matching is not supported" if "." in attribute else ""
        raise InvalidQuery(f"{attribute!r} is not a DICOM attribute keyword or tag{hint}")
    return keyword


def _count(name: str, text: str, minimum: int) -> int:
    if not text.isdigit() or int(text) < minimum:
        raise InvalidQuery(f"{name} must be an integer of at least {minimum}, not {text!r}")
    return int(text)


class Search:
    """One QIDO-RS request: its level, defaults, match keys and controls."""

    def __init__(self, request: Request, level: Level, defaults: tuple[str, ...]) -> None:
        self.level = level
        self.criteria: dict[str, str] = {}
        self.includes: list[str] = []
        self.limit: int | None = None
        self.offset = 0
        self.fuzzy = False
        for key, value in request.path_params.items():
            self.criteria[{"study": "StudyInstanceUID", "series": "SeriesInstanceUID"}[key]] = value
        for key, value in request.query_params.multi_items():
            self._parameter(key, value)
        supplied = _supplied(level)
        self.keys = [k for k in ("SpecificCharacterSet", *defaults) if k in supplied]
        self.keys = list(dict.fromkeys([*self.keys, *self.includes, *self.criteria]))

    def _parameter(self, key: str, value: str) -> None:
        if key == "includefield":
            for name in filter(None, (v.strip() for v in value.split(","))):
                self.includes += sorted(_supplied(self.level)) if name == "all" else [keyword_of(name)]
        elif key == "limit":
            self.limit = _count("limit", value, 1)
        elif key == "offset":
            self.offset = _count("offset", value, 0)
        elif key == "fuzzymatching":
            if value not in ("true", "false"):
                raise InvalidQuery(f"fuzzymatching must be true or false, not {value!r}")
            self.fuzzy = value == "true"
        else:
            self._match_key(keyword_of(key), value)

    def _match_key(self, keyword: str, value: str) -> None:
        if keyword in self.criteria:
            raise InvalidQuery(f"{keyword} is given more than once (or also in the path); "
                               "list several UIDs in one value, separated by commas")
        if value and keyword not in matchable_keys(self.level):
            raise InvalidQuery(f"{keyword} is not supported for matching at the "
                               f"{self.level.value.lower()} level")
        self.criteria[keyword] = value

    def run(self, archive: Archive, urls: Urls, maximum: int) -> tuple[list[dict[str, Any]], bool]:
        """Blocking: the index query and the JSON of each match, and whether matches beyond
        the server's maximum were left out. One row more than the maximum tells."""
        capped = self.limit is None or self.limit > maximum
        limit = maximum + 1 if capped else self.limit
        query = build_query(self.level, self.criteria, tuple(self.keys), limit, self.offset)
        rows = archive.find(query)
        truncated = capped and len(rows) > maximum
        return [texts_to_json(self._values(row, urls)) for row in rows[:maximum]], truncated

    def _values(self, row: dict[str, str], urls: Urls) -> dict[str, str]:
        values = {}
        for key in self.keys:
            if key == "RetrieveURL":
                values[key] = self._retrieve_url(row, urls)
            else:
                values[key] = _CONSTANTS.get(key) or row.get(key, "")
        return values

    def _retrieve_url(self, row: dict[str, str], urls: Urls) -> str:
        if self.level is Level.STUDY:
            return urls.study(row["StudyInstanceUID"])
        if self.level is Level.SERIES:
            return urls.series(row["StudyInstanceUID"], row["SeriesInstanceUID"])
        return urls.instance(row["StudyInstanceUID"], row["SeriesInstanceUID"], row["SOPInstanceUID"])


def _endpoint(level: Level, *defaults: tuple[str, ...]) -> Any:
    keys = tuple(dict.fromkeys(k for group in defaults for k in group))

    async def search(request: Request) -> Response:
        if not accepts_json(request):
            raise NotAcceptable("QIDO-RS answers in application/dicom+json only")
        query = Search(request, level, keys)
        maximum = request.app.state.site.settings.limits.max_query_results
        found, truncated = await run_in_threadpool(query.run, archive_of(request), Urls(request), maximum)
        warnings = []
        if query.fuzzy:
            warnings.append(f"299 {request.url.netloc}: The fuzzymatching parameter is not "
                            "supported. Only literal matching has been performed.")
        if truncated:
            warnings.append(f'299 {request.url.netloc}: "The number of results exceeded the maximum '
                            'supported by the server. Additional results can be requested."')
        return DicomJSONResponse(found, headers={"Warning": ", ".join(warnings)} if warnings else {})

    return search


# Parent UIDs are always returned below the study level: RetrieveURLs are built from them.
_STUDY_UID = ("StudyInstanceUID",)
_SERIES_UID = ("StudyInstanceUID", "SeriesInstanceUID")

routes = [
    Route("/studies", _endpoint(Level.STUDY, STUDY_KEYS), name="search_studies"),
    Route("/series", _endpoint(Level.SERIES, STUDY_KEYS, SERIES_KEYS), name="search_series"),
    Route("/instances", _endpoint(Level.IMAGE, STUDY_KEYS, SERIES_KEYS, INSTANCE_KEYS),
          name="search_instances"),
    Route("/studies/{study}/series", _endpoint(Level.SERIES, _STUDY_UID, SERIES_KEYS),
          name="search_study_series"),
    Route("/studies/{study}/instances", _endpoint(Level.IMAGE, _STUDY_UID, SERIES_KEYS, INSTANCE_KEYS),
          name="search_study_instances"),
    Route("/studies/{study}/series/{series}/instances",
          _endpoint(Level.IMAGE, _SERIES_UID, INSTANCE_KEYS), name="search_series_instances"),
]
