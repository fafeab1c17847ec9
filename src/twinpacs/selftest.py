"""`twinpacs selftest`: the regression protocol after an upgrade (G7). Against a running site
and its peers: store a marked synthetic study by C-STORE and STOW-RS, find it at every level
(C-FIND, QIDO-RS), retrieve it (C-GET, WADO-RS) and compare content hashes with what was
sent, wait until each peer holds it by content hash, then remove it everywhere.

Each step is timed and shown beside its time at the previous self-test of the site. A step
whose prerequisite failed is skipped, never run against a half-built state; removal always runs.
The test objects carry SELFTEST_PATIENT_ID: a site removes nothing else."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import ssl
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydicom.dataset import Dataset
from pynetdicom import AE, build_context, build_role, evt
from pynetdicom.association import Association
from pynetdicom.events import Event
from pynetdicom.presentation import PresentationContext

from .core.archive import SELFTEST_PATIENT_ID
from .core.parsing import content_hash, parse_part10
from .dimse.scu import identifier
from .dimse.transport import enable_stored_file_sending
from .dimse.uids import (PatientRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelFind,
                         StudyRootQueryRetrieveInformationModelGet, Verification)
from .synthetic import StudySpec, encode, make_study
from .web.media import parse_media_type
from .web.multipart import encode_parts, new_boundary, read_parts, related_content_type

PATIENT_NAME = "SELFTEST^TWINPACS"
DESCRIPTION = "twinpacs self-test object - not a patient"
CALLING_AE = "TP_SELFTEST"
SLOWER = 2.0  # a step this many times slower than at the previous run is flagged
NOISE_S = 0.05  # ... unless it is still within timer noise of it
POLL_S = 0.2
DICOM = "application/dicom"
OK, FAILED, SKIPPED = "ok", "failed", "skipped"


class StepFailed(Exception):
    """A step's check did not hold; the message says what was seen."""


@dataclass
class Step:
    name: str
    status: str  # OK, FAILED or SKIPPED
    seconds: float | None  # None when skipped
    detail: str = ""
    previous_seconds: float | None = None

    @property
    def slower(self) -> bool:
        if self.seconds is None or not self.previous_seconds:
            return False
        return self.seconds > SLOWER * self.previous_seconds and self.seconds - self.previous_seconds > NOISE_S

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "slower": self.slower}


@dataclass
class Report:
    url: str
    study: str
    site: str = ""
    steps: list[Step] = field(default_factory=list)
    previous_at: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(s.status != FAILED for s in self.steps)

    @property
    def failed(self) -> list[Step]:
        return [s for s in self.steps if s.status == FAILED]

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "site": self.site, "study": self.study, "passed": self.passed,
                "previous_run_at": self.previous_at, "steps": [s.as_dict() for s in self.steps],
                "notes": self.notes}


@dataclass(frozen=True)
class MarkedObject:
    data: bytes
    sop_class: str
    sop_instance: str
    series: str
    content_hash: str


def marked_study(seed: int | None = None, today: dt.date | None = None) -> list[MarkedObject]:
    """A small, unmistakably marked study with fresh UIDs (they derive from the random seed)."""
    spec = StudySpec(patient_id=SELFTEST_PATIENT_ID, patient_name=PATIENT_NAME, study_description=DESCRIPTION,
                     accession_number="SELFTEST", series=2, instances_per_series=2, rows=16, columns=16,
                     seed=secrets.randbelow(2**31) if seed is None else seed,
                     study_date=(today or dt.date.today()).strftime("%Y%m%d"))
    objects = []
    for ds in make_study(spec):
        data = encode(ds)
        objects.append(MarkedObject(data, str(ds.SOPClassUID), str(ds.SOPInstanceUID), str(ds.SeriesInstanceUID),
                                  parse_part10(data).content_hash))
    return objects


class SelfTest:
    def __init__(self, url: str, replication_timeout: float = 30.0, timeout: float = 30.0,
                 objects: list[MarkedObject] | None = None, headers: dict[str, str] | None = None,
                 dicom_tls: ssl.SSLContext | None = None) -> None:
        self.url = url.rstrip("/")
        self.dicom_tls = dicom_tls  # for a site whose DICOM port takes TLS only
        self.host = urlsplit(self.url).hostname or "127.0.0.1"
        self.replication_timeout = replication_timeout
        self.timeout = timeout
        self.objects = objects or marked_study()
        self.study = str(parse_part10(self.objects[0].data).dataset.StudyInstanceUID)
        # Series 1 goes by DIMSE, the others by DICOMweb: both doors are exercised.
        first = self.objects[0].series
        self.by_dimse = [o for o in self.objects if o.series == first]
        self.by_stow = [o for o in self.objects if o.series != first]
        self.expected = {o.sop_instance: o.content_hash for o in self.objects}
        self.info: dict[str, Any] = {}
        self.http = httpx.Client(timeout=timeout, headers=headers)  # headers: the Authorization, if any
        self.report = Report(self.url, self.study)
        self._previous: dict[str, float] = {}
        self.sent = False  # set before the first object leaves: from then on, cleanup is due

    # -- the protocol ------------------------------------------------------------------------

    def run(self) -> Report:
        stores = ["store by C-STORE", "store by STOW-RS"]
        try:
            self._step("site information", self.site_information)
            self._step("DICOM echo (C-ECHO)", self.echo, ["site information"])
            self._step(stores[0], self.store_dimse, ["DICOM echo (C-ECHO)"])
            self._step(stores[1], self.store_stow, ["site information"])
            for level in ("patient", "study", "series", "image"):
                self._step(f"find {level} (C-FIND)", lambda lv=level: self.find_dimse(lv), stores)
            self._step("find study, series, instances (QIDO-RS)", self.find_qido, stores)
            self._step("retrieve by C-GET", self.retrieve_get, stores)
            self._step("retrieve by WADO-RS", self.retrieve_wado, stores)
            for peer in self.info.get("peers", []):
                self._step(f"replicate to peer {peer['name']}", lambda p=peer: self.replicate(p), stores)
        finally:
            # Cleanup runs whatever failed (or was interrupted) before, unless nothing was sent.
            removals = [(f"remove at site {self.info.get('site', self.url)}", lambda: self.remove(self.url))]
            removals += [(f"remove at peer {p['name']}", lambda p=p: self.remove_at_peer(p))
                         for p in self.info.get("peers", []) if p["kind"] == "twinpacs"]
            for name, action in removals:
                if self.sent:
                    self._step(name, action)
                else:
                    self.report.steps.append(Step(name, SKIPPED, None, "nothing was sent, so nothing to remove"))
            for peer in self.info.get("peers", []):
                if self.sent and peer["kind"] != "twinpacs":
                    self.report.notes.append(f"test study {self.study} may remain at DIMSE peer {peer['name']}: "
                                             "twinpacs cannot remove it there; remove it by hand")
            self._record()
            self.http.close()
        return self.report

    def _step(self, name: str, action: Callable[[], str | None], needs: list[str] | None = None) -> None:
        blocked = [s.name for s in self.report.steps if s.name in (needs or []) and s.status != OK]
        if blocked:
            step = Step(name, SKIPPED, None, f"skipped: {', '.join(blocked)} did not pass")
        else:
            started = time.monotonic()
            try:
                status, detail = OK, action() or ""
            except StepFailed as exc:
                status, detail = FAILED, str(exc)
            except httpx.HTTPError as exc:
                status, detail = FAILED, f"cannot reach {_where(exc)}: {type(exc).__name__}: {exc}"
            except Exception as exc:  # the report names the step; the operator never sees a traceback
                status, detail = FAILED, f"{type(exc).__name__}: {exc}"
            step = Step(name, status, round(time.monotonic() - started, 3), detail)
        step.previous_seconds = self._previous.get(name)
        self.report.steps.append(step)

    # -- steps ---------------------------------------------------------------------------------

    def site_information(self) -> str:
        self.info = self._get(f"{self.url}/api/site")
        self.report.site = self.info["site"]
        try:
            previous = self._get(f"{self.url}/api/selftest/runs/latest")["run"]
        except (StepFailed, httpx.HTTPError, KeyError) as exc:
            self.report.notes.append(f"no timings of a previous self-test: {exc}")
            previous = None
        if previous:
            self.report.previous_at = previous.get("at")
            self._previous = {s["name"]: s["seconds"] for s in previous.get("steps", [])
                              if s.get("status") == OK and isinstance(s.get("seconds"), (int, float))}
        peers = ", ".join(f"{p['name']} ({p['kind']})" for p in self.info["peers"]) or "none"
        return (f"site {self.info['site']} ({self.info['role']}), AE {self.info['ae_title']}, "
                f"DICOM {self.host}:{self.info['dicom']['port']}, peers: {peers}")

    def echo(self) -> str:
        with self._association([build_context(Verification)]) as assoc:
            status = assoc.send_c_echo()
            if _status(status) != 0x0000:
                raise StepFailed(f"C-ECHO answered status {_hex(_status(status))}")
        return f"{self.info['ae_title']}@{self.host}:{self._dicom_port()}"

    def store_dimse(self) -> str:
        self.sent = True
        enable_stored_file_sending()  # send the files' own bytes, so their hashes are what we computed
        contexts = [build_context(c, _EXPLICIT) for c in dict.fromkeys(o.sop_class for o in self.by_dimse)]
        with tempfile.TemporaryDirectory(prefix="twinpacs-selftest-") as tmp, self._association(contexts) as assoc:
            for o in self.by_dimse:
                path = Path(tmp) / f"{o.sop_instance}.dcm"
                path.write_bytes(o.data)
                code = _status(assoc.send_c_store(path))
                if code != 0x0000:
                    raise StepFailed(f"C-STORE of {o.sop_instance} answered status {_hex(code)}")
        return f"{len(self.by_dimse)} instance(s) of series 1"

    def store_stow(self) -> str:
        self.sent = True
        boundary = new_boundary()
        response = self.http.post(f"{self.url}/dicom-web/studies", content=encode_parts(
            [(DICOM, o.data) for o in self.by_stow], boundary),
            headers={"Content-Type": related_content_type(DICOM, boundary), "Accept": "application/dicom+json"})
        if response.status_code != 200:
            raise StepFailed(f"STOW-RS answered HTTP {response.status_code}: {response.text[:300]}")
        return f"{len(self.by_stow)} instance(s) of series 2"

    def find_dimse(self, level: str) -> str:
        series = sorted({o.series for o in self.objects})
        if level == "patient":
            found = self._c_find(PatientRootQueryRetrieveInformationModelFind,
                                 identifier("PATIENT", PatientID=SELFTEST_PATIENT_ID, PatientName=""))
            _expect("patients", {str(d.PatientID) for d in found}, {SELFTEST_PATIENT_ID})
        elif level == "study":
            found = self._c_find(StudyRootQueryRetrieveInformationModelFind, identifier(
                "STUDY", StudyInstanceUID=self.study, PatientID="", StudyDescription=""))
            _expect("studies", {(str(d.StudyInstanceUID), str(d.PatientID), str(d.StudyDescription)) for d in found},
                    {(self.study, SELFTEST_PATIENT_ID, DESCRIPTION)})
        elif level == "series":
            found = self._c_find(StudyRootQueryRetrieveInformationModelFind,
                                 identifier("SERIES", StudyInstanceUID=self.study, SeriesInstanceUID=""))
            _expect("series", {str(d.SeriesInstanceUID) for d in found}, set(series))
        else:
            found = [d for s in series for d in self._c_find(StudyRootQueryRetrieveInformationModelFind, identifier(
                "IMAGE", StudyInstanceUID=self.study, SeriesInstanceUID=s, SOPInstanceUID=""))]
            _expect("instances", {str(d.SOPInstanceUID) for d in found}, set(self.expected))
        return f"{len(found)} match(es)"

    def find_qido(self) -> str:
        base = f"{self.url}/dicom-web/studies"
        studies = self._get(base, params={"StudyInstanceUID": self.study})
        _expect("studies", {_value(s, "0020000D") for s in studies}, {self.study})
        _expect("series", {_value(s, "0020000E") for s in self._get(f"{base}/{self.study}/series")},
                {o.series for o in self.objects})
        _expect("instances", {_value(i, "00080018") for i in self._get(f"{base}/{self.study}/instances")},
                set(self.expected))
        return "study, series and instance levels"

    def retrieve_get(self) -> str:
        received: dict[str, str] = {}

        def on_store(event: Event) -> int:
            dataset = event.request.DataSet
            raw = dataset.getvalue() if dataset is not None else b""
            received[str(event.request.AffectedSOPInstanceUID)] = content_hash(event.context.transfer_syntax, raw)
            return 0x0000

        classes = list(dict.fromkeys(o.sop_class for o in self.objects))
        contexts = [build_context(StudyRootQueryRetrieveInformationModelGet),
                    *(build_context(c, _EXPLICIT) for c in classes)]
        roles = [build_role(c, scp_role=True) for c in classes]
        with self._association(contexts, roles, [(evt.EVT_C_STORE, on_store)]) as assoc:
            final = None
            for status, _ in assoc.send_c_get(identifier("STUDY", StudyInstanceUID=self.study),
                                              StudyRootQueryRetrieveInformationModelGet):
                final = _status(status)
            if final != 0x0000:
                raise StepFailed(f"C-GET ended with status {_hex(final)}")
        return _compare("C-GET", received, self.expected)

    def retrieve_wado(self) -> str:
        response = self.http.get(f"{self.url}/dicom-web/studies/{self.study}",
                                 headers={"Accept": f'multipart/related; type="{DICOM}"; transfer-syntax=*'})
        if response.status_code != 200:
            raise StepFailed(f"WADO-RS answered HTTP {response.status_code}: {response.text[:300]}")
        boundary = parse_media_type(response.headers.get("content-type", "")).params.get("boundary", "")
        parts = asyncio.run(read_parts(_chunks(response.content), boundary))
        received = {}
        for part in parts:
            parsed = parse_part10(bytes(part.body))
            received[parsed.sop_instance_uid] = parsed.content_hash
        sent_as_files = {o.sop_instance: o.data for o in self.by_stow}
        altered = [uid for uid, data in sent_as_files.items()
                   if not any(bytes(p.body) == data for p in parts)]
        if altered:  # STOW-RS sent whole files, which the archive keeps as they came
            raise StepFailed(f"WADO-RS returned other bytes than STOW-RS sent for {', '.join(altered)}")
        return _compare("WADO-RS", received, self.expected)

    def replicate(self, peer: dict[str, Any]) -> str:
        """Held at the peer by content hash (asked of the peer), and recorded as confirmed
        here (what sync status counts); a DIMSE peer can only be asked through the latter."""
        deadline = time.monotonic() + self.replication_timeout
        seen = "nothing checked yet"
        while True:
            try:
                seen = self._replication_seen(peer)
                if not seen:
                    return self._replicated_detail(peer)
            except StepFailed as exc:
                seen = str(exc)
            except httpx.HTTPError as exc:  # the peer may be restarting: keep asking until the deadline
                seen = f"cannot reach {_where(exc)}: {type(exc).__name__}"
            if time.monotonic() >= deadline:
                raise StepFailed(f"not confirmed within {self.replication_timeout:g} s ({seen}"
                                 f"{self._queue_error(peer['name'])})")
            time.sleep(POLL_S)

    def remove(self, base_url: str) -> str:
        response = self.http.delete(f"{base_url}/api/selftest/studies/{self.study}")
        if response.status_code == 404:
            detail = "nothing held"
        elif response.status_code == 200:
            body = response.json()
            detail = f"{body['instances']} instance(s), {body['files_deleted']} file(s) removed"
        else:
            raise StepFailed(f"removal answered HTTP {response.status_code}: {_error(response)}")
        check = self.http.get(f"{base_url}/api/selftest/studies/{self.study}")
        if check.status_code != 404:
            raise StepFailed(f"the study is still held after its removal (HTTP {check.status_code})")
        return detail

    def remove_at_peer(self, peer: dict[str, Any]) -> str:
        try:
            return self.remove(peer["base_url"])
        except httpx.HTTPError as exc:
            raise StepFailed(f"cannot reach {peer['base_url']} ({type(exc).__name__}): nothing removed there; if "
                             f"the test study reached it, remove it later with DELETE "
                             f"{peer['base_url']}/api/selftest/studies/{self.study}") from None

    # -- helpers ---------------------------------------------------------------------------------

    def _replication_seen(self, peer: dict[str, Any]) -> str:
        """'' once replicated; otherwise what is still missing."""
        name, uids = peer["name"], sorted(self.expected)
        held_here = self._get(f"{self.url}/api/selftest/studies/{self.study}")["instances"]
        states = {i["uid"]: i["replication"].get(name, "not queued") for i in held_here}
        done = {"confirmed"} if peer["kind"] == "twinpacs" else {"confirmed", "unverified"}
        recorded = sum(states.get(u) in done for u in uids)
        if peer["kind"] != "twinpacs":  # nothing to ask over HTTP: its Storage Commitment decided
            return "" if recorded == len(uids) else f"{recorded} of {len(uids)} recorded as sent or confirmed here"
        response = self.http.post(f"{peer['base_url']}/api/replication/hashes", json={"uids": uids})
        if response.status_code != 200:
            raise StepFailed(f"peer hash check answered HTTP {response.status_code}: {_error(response)}")
        held = response.json()["hashes"]
        matching = sum(held.get(u) == self.expected[u] for u in uids)
        if matching == recorded == len(uids):
            return ""
        return (f"{matching} of {len(uids)} held at {name} by content hash, "
                f"{recorded} of {len(uids)} recorded as confirmed here")

    def _replicated_detail(self, peer: dict[str, Any]) -> str:
        if peer["kind"] == "twinpacs":
            return f"{len(self.expected)} instance(s) held at {peer['name']} with the same content hash"
        return f"{len(self.expected)} instance(s) sent to DIMSE peer {peer['name']}; no content hash to compare"

    def _queue_error(self, peer: str) -> str:
        try:
            queue = self._get(f"{self.url}/api/replication/queue")["peers"]
        except (StepFailed, httpx.HTTPError, KeyError):
            return ""
        errors = [q.get("last_error", "") for q in queue if q.get("name") == peer and q.get("last_error")]
        return f"; last error: {errors[0]}" if errors else ""

    def _record(self) -> None:
        steps = [{"name": s.name, "status": s.status, "seconds": s.seconds, "detail": s.detail}
                 for s in self.report.steps]
        try:
            response = self.http.post(f"{self.url}/api/selftest/runs",
                                      json={"passed": self.report.passed, "steps": steps})
            if response.status_code != 200:
                self.report.notes.append(f"timings not recorded: HTTP {response.status_code}: {_error(response)}")
        except httpx.HTTPError as exc:
            self.report.notes.append(f"timings not recorded: cannot reach {_where(exc)}: {exc}")

    def _get(self, url: str, **kwargs: Any) -> Any:
        response = self.http.get(url, **kwargs)
        if response.status_code != 200:
            raise StepFailed(f"GET {url} answered HTTP {response.status_code}: {_error(response)}")
        return response.json()

    def _dicom_port(self) -> int:
        port = int(self.info.get("dicom", {}).get("port") or 0)
        if not port:
            raise StepFailed("the site reports no DICOM listener (dicom port 0)")
        return port

    def _association(self, contexts: list[PresentationContext], roles: list[Any] | None = None,
                     handlers: list[Any] | None = None) -> _Open:
        ae = AE(ae_title=CALLING_AE)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        where = f"{self.info['ae_title']}@{self.host}:{self._dicom_port()}"
        tls = bool(self.info["dicom"].get("tls"))
        if tls and self.dicom_tls is None:
            raise StepFailed(f"{where} takes DICOM TLS only: run the self-test with --config FILE of the site "
                             "(its certificate; dicom.tls_remote_ca_file to trust the port's)")
        assoc = ae.associate(self.host, self._dicom_port(), contexts=contexts, ae_title=self.info["ae_title"],
                             ext_neg=roles or [], evt_handlers=handlers or [],
                             tls_args=(self.dicom_tls, self.host) if tls and self.dicom_tls else None)
        if not assoc.is_established:
            ae.shutdown()
            raise StepFailed(f"no association with {where} (rejected, aborted or unreachable)")
        return _Open(ae, assoc)

    def _c_find(self, model: str, identifier: Dataset) -> list[Dataset]:
        with self._association([build_context(model)]) as assoc:
            found = []
            for status, match in assoc.send_c_find(identifier, model):
                code = _status(status)
                if code in (0xFF00, 0xFF01) and match is not None:
                    found.append(match)
                elif code != 0x0000:
                    raise StepFailed(f"C-FIND at {identifier.QueryRetrieveLevel} level answered status {_hex(code)}")
        return found


class _Open:
    """An established association, released (and its AE shut down) on leaving the block."""

    def __init__(self, ae: AE, assoc: Association) -> None:
        self.ae, self.assoc = ae, assoc

    def __enter__(self) -> Association:
        return self.assoc

    def __exit__(self, *exc: object) -> None:
        if self.assoc.is_established:
            self.assoc.release()
        self.ae.shutdown()


_EXPLICIT = ["1.2.840.10008.1.2.1"]  # the test objects' transfer syntax: sent and taken back as they are


def _expect(what: str, found: set[Any], wanted: set[Any]) -> None:
    if found != wanted:
        missing, extra = wanted - found, found - wanted
        raise StepFailed(f"{what}: expected {len(wanted)}, found {len(found)}"
                         + (f"; missing {sorted(map(str, missing))[:3]}" if missing else "")
                         + (f"; unexpected {sorted(map(str, extra))[:3]}" if extra else ""))


def _compare(how: str, received: dict[str, str], expected: dict[str, str]) -> str:
    _expect(f"instances retrieved by {how}", set(received), set(expected))
    different = [uid for uid, h in received.items() if h != expected[uid]]
    if different:
        raise StepFailed(f"{len(different)} instance(s) came back with other content than sent: {different[0]}")
    return f"{len(received)} instance(s), content hashes equal to what was sent"


def _value(item: dict[str, Any], tag: str) -> str:
    values = item.get(tag, {}).get("Value", [""])
    return str(values[0]) if values else ""


def _status(status: Dataset | None) -> int | None:
    return int(status.Status) if status is not None and "Status" in status else None


def _hex(code: int | None) -> str:
    return "none (no answer)" if code is None else f"0x{code:04X}"


def _error(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("error", body)) if isinstance(body, dict) else str(body)
    except ValueError:
        return response.text[:300]


def _where(exc: Exception) -> str:
    try:
        return str(exc.request.url)  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # httpx raises RuntimeError when no request is attached
        return "the site"


async def _chunks(body: bytes) -> AsyncIterator[bytes]:
    yield body

