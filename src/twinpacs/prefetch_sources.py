"""The archives priors are fetched from (settings.prefetch.sources): any DICOM archive over
DIMSE (C-FIND, then C-MOVE to this site's own AE title or C-GET) and any DICOMweb archive
(QIDO-RS, then WADO-RS). Each source answers `find` with the patient's studies as Candidates
and `fetch` with what it did; a source that cannot be reached or answers with a failure
raises SourceError with the reason, which the prefetch status shows as it is."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Protocol

import httpx
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pynetdicom import AE, build_context, build_role, evt
from pynetdicom.association import Association
from pynetdicom.events import Event
from pynetdicom.presentation import PresentationContext, StoragePresentationContexts
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser

from .config import DicomSettings, PrefetchSourceSettings
from .core.accounts import bearer
from .core.archive import Archive
from .core.prefetch import Candidate
from .dimse.scu import MAX_CONTEXTS, Remote, associate, identifier, no_association, remote
from .dimse.server import STORAGE_TRANSFER_SYNTAXES
from .dimse.status import SUCCESS, failure
from .dimse.uids import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)
from .web.media import parse_media_type

DICOM = "application/dicom"
_PENDING = (0xFF00, 0xFF01)
_WARNING = 0xB000  # C-MOVE/C-GET: some sub-operations failed
_MOVE_DESTINATION_UNKNOWN = 0xA801
_STUDY_KEYS = ("StudyInstanceUID", "PatientID", "AccessionNumber", "StudyDate", "StudyTime", "StudyDescription",
               "ModalitiesInStudy", "NumberOfStudyRelatedInstances", "SOPClassesInStudy")
_SERIES_KEYS = ("SeriesInstanceUID", "Modality", "BodyPartExamined")


class SourceError(Exception):
    """A source could not be searched, or a study not fetched from it: the message says why."""


class PriorSource(Protocol):
    name: str

    def find(self, patient_id: str, series_details: bool) -> list[Candidate]:
        """The patient's studies; with series_details, each one's body parts (and modalities)."""
        ...

    def fetch(self, candidate: Candidate) -> str:
        """Bring the study here; a note on what the source reported. Whether it arrived whole
        is checked against the index by the caller, not taken from the source's word."""
        ...

    def close(self) -> None: ...


def make_source(source: PrefetchSourceSettings, dicom: DicomSettings, ae_title: str, archive: Archive) -> PriorSource:
    if source.kind == "dicomweb":
        return DicomwebSource(source, archive)
    return DimseSource(source, remote(dicom, source.ae_title, source.host, source.port, source.tls), ae_title, archive)


def candidate(source: str, ds: Dataset) -> Candidate:
    """A study-level answer (C-FIND identifier or QIDO-RS object) as a Candidate."""
    count = str(ds.get("NumberOfStudyRelatedInstances", "") or "").strip()
    return Candidate(
        source=source, study_uid=_text(ds, "StudyInstanceUID"), patient_id=_text(ds, "PatientID"),
        accession_number=_text(ds, "AccessionNumber"), study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"), modalities=_values(ds, "ModalitiesInStudy"),
        description=_text(ds, "StudyDescription"), instances=int(count) if count.isdigit() else 0,
        sop_classes=_values(ds, "SOPClassesInStudy"))


def with_series(c: Candidate, series: list[Dataset]) -> Candidate:
    """The candidate with the modalities and body parts of its series added."""
    modalities = dict.fromkeys([*c.modalities, *(_text(s, "Modality") for s in series)])
    parts = dict.fromkeys(_text(s, "BodyPartExamined") for s in series)
    return replace(c, modalities=tuple(m for m in modalities if m), body_parts=tuple(p for p in parts if p))


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    return "\\".join(map(str, value)) if isinstance(value, (MultiValue, list)) else str(value or "").strip()


def _values(ds: Dataset, keyword: str) -> tuple[str, ...]:
    value = ds.get(keyword, "")
    items = value if isinstance(value, (MultiValue, list)) else str(value or "").split("\\")
    return tuple(s for s in (str(v).strip() for v in items) if s)


class DimseSource:
    """C-FIND at study level by PatientID (series level per study when body parts are needed,
    or the source gives no ModalitiesInStudy), then C-MOVE to this site's AE title (the source
    must know its address as a move destination; the objects arrive through this site's DICOM
    listener) or C-GET on the same association (stored here as they arrive)."""

    def __init__(self, source: PrefetchSourceSettings, to: Remote, ae_title: str, archive: Archive,
                 timeout: float = 30.0) -> None:
        self.name = source.name
        self.source = source
        self.to = to
        self.ae_title = ae_title
        self.archive = archive
        self.ae = AE(ae_title=ae_title)
        self.ae.acse_timeout = self.ae.dimse_timeout = self.ae.network_timeout = timeout

    @property
    def where(self) -> str:
        return str(self.to)

    @contextmanager
    def _association(self, contexts: list[PresentationContext], roles: list[Any] | None = None,
                     handlers: list[Any] | None = None) -> Iterator[Association]:
        assoc = associate(self.ae, self.to, contexts, roles)
        if not assoc.is_established:
            raise SourceError(no_association(self.to))
        for event, handler in handlers or []:
            assoc.bind(event, handler)
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()

    def find(self, patient_id: str, series_details: bool) -> list[Candidate]:
        with self._association([build_context(StudyRootQueryRetrieveInformationModelFind)]) as assoc:
            keys = {k: "" for k in _STUDY_KEYS}
            found = [candidate(self.name, ds) for ds in
                     self._c_find(assoc, identifier("STUDY", **{**keys, "PatientID": patient_id}))]
            found = [c for c in found if c.study_uid]
            return [with_series(c, self._c_find(assoc, identifier(
                        "SERIES", StudyInstanceUID=c.study_uid, **{k: "" for k in _SERIES_KEYS})))
                    if series_details or not c.modalities else c for c in found]

    def _c_find(self, assoc: Association, query: Dataset) -> list[Dataset]:
        answers = []
        for status, found in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
            code = status.get("Status") if status else None
            if code in _PENDING:
                if found is not None:
                    answers.append(found)
            elif code != SUCCESS:
                raise SourceError(f"C-FIND at {self.where}: {_outcome(status)}")
        return answers

    def fetch(self, c: Candidate) -> str:
        return self._get(c) if self.source.retrieve == "get" else self._move(c)

    def _move(self, c: Candidate) -> str:
        with self._association([build_context(StudyRootQueryRetrieveInformationModelMove)]) as assoc:
            final = _final(assoc.send_c_move(identifier("STUDY", StudyInstanceUID=c.study_uid), self.ae_title,
                                             StudyRootQueryRetrieveInformationModelMove))
        code = final.get("Status") if final else None
        if code == _MOVE_DESTINATION_UNKNOWN:
            raise SourceError(f"C-MOVE at {self.where}: the source cannot send to this site's AE title "
                              f"{self.ae_title} (status 0xA801: it lacks or cannot reach its address as a "
                              "move destination)")
        if code not in (SUCCESS, _WARNING):
            raise SourceError(f"C-MOVE at {self.where}: {_outcome(final)}")
        return f"C-MOVE: {_suboperations(final)}"

    def _get(self, c: Candidate) -> str:
        sop_classes = list(c.sop_classes) or [str(ctx.abstract_syntax) for ctx in StoragePresentationContexts]
        sop_classes = sop_classes[:MAX_CONTEXTS - 1]
        contexts = [build_context(StudyRootQueryRetrieveInformationModelGet),
                    *(build_context(uid, STORAGE_TRANSFER_SYNTAXES) for uid in sop_classes)]
        roles = [build_role(uid, scp_role=True) for uid in sop_classes]
        errors: list[str] = []

        def on_store(event: Event) -> Any:
            try:
                self.archive.store(event.encoded_dataset(), source=f"prefetch:{self.name}")
            except Exception as exc:  # answered to the source as a failure status; noted here
                errors.append(str(getattr(exc, "message", exc)))
                return failure(exc, "C-STORE")
            return SUCCESS

        with self._association(contexts, roles, [(evt.EVT_C_STORE, on_store)]) as assoc:
            final = _final(assoc.send_c_get(identifier("STUDY", StudyInstanceUID=c.study_uid),
                                            StudyRootQueryRetrieveInformationModelGet))
        code = final.get("Status") if final else None
        stored_here = f"; not stored here: {errors[0]}" if errors else ""
        if code not in (SUCCESS, _WARNING):
            raise SourceError(f"C-GET at {self.where}: {_outcome(final)}{stored_here}")
        return f"C-GET: {_suboperations(final)}{stored_here}"

    def close(self) -> None:
        self.ae.shutdown()


def _final(responses: Iterator[tuple[Dataset, Dataset | None]]) -> Dataset | None:
    """The last (non-pending) status of a C-MOVE/C-GET; None when the association ended first."""
    final = None
    for status, _ in responses:
        if status and status.get("Status") not in _PENDING:
            final = status
    return final


def _outcome(status: Dataset | None) -> str:
    if not status or "Status" not in status:
        return "no answer (the association was aborted or timed out)"
    comment = f" ({status.ErrorComment})" if "ErrorComment" in status else ""
    return f"status 0x{int(status.Status):04X}{comment}"


def _suboperations(status: Dataset | None) -> str:
    if not status:
        return "no final status"
    done, failed = (int(status.get(k) or 0) for k in ("NumberOfCompletedSuboperations", "NumberOfFailedSuboperations"))
    return f"{done} sent, {failed} failed"


class DicomwebSource:
    """QIDO-RS /studies?PatientID= (and /studies/{uid}/series when body parts are needed, or
    the source gives no ModalitiesInStudy), then WADO-RS /studies/{uid} as stored, each part
    stored here as soon as it has arrived (a study is never held in memory whole)."""

    def __init__(self, source: PrefetchSourceSettings, archive: Archive, timeout: float = 30.0) -> None:
        self.name = source.name
        self.base = source.dicomweb_url.rstrip("/")
        self.archive = archive
        self._http = httpx.Client(timeout=timeout, headers=bearer(source.token.get_secret_value()))

    def find(self, patient_id: str, series_details: bool) -> list[Candidate]:
        found = [candidate(self.name, ds) for ds in self._qido(
            "/studies", [("PatientID", patient_id), *(("includefield", k) for k in _STUDY_KEYS)])]
        found = [c for c in found if c.study_uid]
        return [with_series(c, self._qido(f"/studies/{c.study_uid}/series",
                                          [("includefield", k) for k in _SERIES_KEYS]))
                if series_details or not c.modalities else c for c in found]

    def _qido(self, path: str, params: list[tuple[str, str]]) -> list[Dataset]:
        url = self.base + path
        try:
            response = self._http.get(url, params=params, headers={"Accept": "application/dicom+json"})
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot reach {url}: {type(exc).__name__}: {exc}") from None
        if response.status_code == 204:
            return []
        if response.status_code != 200:
            raise SourceError(f"QIDO-RS {url} answered HTTP {response.status_code}: {response.text[:200]}")
        try:
            return [Dataset.from_json(item) for item in response.json()]
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SourceError(f"QIDO-RS {url} answered something other than DICOM JSON: {exc}") from None

    def fetch(self, c: Candidate) -> str:
        url = f"{self.base}/studies/{c.study_uid}"
        accept = f'multipart/related; type="{DICOM}"; transfer-syntax=*'
        parts = _PartStore(lambda data: self.archive.store(data, source=f"prefetch:{self.name}"))
        try:
            with self._http.stream("GET", url, headers={"Accept": accept}) as response:
                if response.status_code != 200:
                    raise SourceError(f"WADO-RS {url} answered HTTP {response.status_code}: "
                                      f"{response.read()[:200].decode('utf-8', 'replace')}")
                boundary = parse_media_type(response.headers.get("content-type", "")).params.get("boundary", "")
                if not boundary:
                    raise SourceError(f"WADO-RS {url} answered without a multipart boundary")
                parts.read(boundary, response.iter_bytes())
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot retrieve {url}: {type(exc).__name__}: {exc}") from None
        stored_here = f"; {len(parts.errors)} not stored here: {parts.errors[0]}" if parts.errors else ""
        return f"WADO-RS: {parts.count} received{stored_here}"

    def close(self) -> None:
        self._http.close()


class _PartStore:
    """Streams a multipart/related body, handing each part's bytes to `store` when it ends."""

    def __init__(self, store: Callable[[bytes], object]) -> None:
        self.store = store
        self.count = 0
        self.errors: list[str] = []
        self._part = bytearray()
        self._ended = False

    def read(self, boundary: str, chunks: Iterator[bytes]) -> None:
        parser = MultipartParser(boundary.encode("latin-1"), {  # type: ignore[arg-type]
            "on_part_begin": self._part.clear,
            "on_part_data": lambda data, start, end: self._part.extend(data[start:end]),
            "on_part_end": self._part_end,
            "on_end": self._end,
        })
        try:
            for chunk in chunks:
                parser.write(chunk)
        except (MultipartParseError, ValueError) as exc:
            raise SourceError(f"the WADO-RS body is not multipart/related: {exc}") from None
        if not self._ended:
            raise SourceError(f"the WADO-RS body ended before its closing boundary (after {self.count} part(s))")

    def _part_end(self) -> None:
        self.count += 1
        try:
            self.store(bytes(self._part))
        except Exception as exc:  # one bad part does not stop the others; the caller reports it
            self.errors.append(str(getattr(exc, "message", exc)))

    def _end(self) -> None:
        self._ended = True
