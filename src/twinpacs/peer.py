"""Clients for the archives this site replicates to: another twinpacs site over HTTP, any
archive over DIMSE. Each turns one batch into a Verdict per object and never trusts a
sender-side success alone: a 200 or a C-STORE success has been seen with the data absent."""

from __future__ import annotations

import io
import queue
from collections.abc import Sequence
from typing import Any

import httpx
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, build_context, evt
from pynetdicom.association import Association

from .config import DicomSettings, PeerSettings
from .core.accounts import bearer
from .core.replication import CONFIRMED, PENDING, UNVERIFIED, Outgoing, Verdict
from .dimse.reports import CommitmentReports
from .dimse.scu import MAX_CONTEXTS, Remote, associate, no_association, remote, storage_contexts
from .dimse.transport import StoredFile, enable_stored_file_sending
from .dimse.uids import StorageCommitmentPushModel, StorageCommitmentPushModelInstance
from .web.multipart import encode_parts, new_boundary, related_content_type

ORIGIN_HEADER = "X-Twinpacs-Origin"
DICOM = "application/dicom"


class PeerAnswerError(Exception):
    """The peer answered, but not with something that confirms anything."""


class TwinpacsPeer:
    """STOW-RS batches, then confirmation by the content hashes the peer reads back from
    what it stored (POST /api/replication/hashes). An object is confirmed only when the
    peer's hash equals ours."""

    def __init__(self, peer: PeerSettings, site_name: str, timeout: float = 30.0) -> None:
        self.name = peer.name
        dicomweb = peer.dicomweb_url.rstrip("/") or f"{peer.base_url}/dicom-web"
        self._stow_url = f"{dicomweb}/studies"
        self._hashes_url = f"{peer.base_url}/api/replication/hashes"
        # The peer stores what comes with this header as replicated from us, so it does not
        # queue it back here and accepts it even on standby.
        self._http = httpx.Client(timeout=timeout,
                                  headers={ORIGIN_HEADER: site_name, **bearer(peer.token.get_secret_value())})

    def deliver(self, objects: Sequence[Outgoing]) -> dict[str, Verdict]:
        todo = list(objects)
        verdicts: dict[str, Verdict] = {}
        if any(o.item.attempts for o in todo):
            # A retry may follow a send whose answer was lost (the peer died mid-batch): what
            # the peer already holds is confirmed without sending it a second time.
            try:
                held = self.hashes([o.item.sop_instance_uid for o in todo])
            except (httpx.HTTPError, PeerAnswerError):
                held = {}  # the send below and the check after it decide
            verdicts = {o.item.sop_instance_uid: Verdict(CONFIRMED) for o in todo
                        if held.get(o.item.sop_instance_uid) == o.item.content_hash}
            todo = [o for o in todo if o.item.sop_instance_uid not in verdicts]
        if not todo:
            return verdicts
        try:
            notes = self._stow(todo)
            held = self.hashes([o.item.sop_instance_uid for o in todo])
        except (httpx.HTTPError, PeerAnswerError) as exc:
            reason = str(exc) if isinstance(exc, PeerAnswerError) else f"{type(exc).__name__}: {exc}"
            return {**verdicts, **{o.item.sop_instance_uid: Verdict(PENDING, reason) for o in todo}}
        for o in todo:
            verdicts[o.item.sop_instance_uid] = _compare(o, held.get(o.item.sop_instance_uid), notes)
        return verdicts

    def hashes(self, uids: list[str]) -> dict[str, str | None]:
        response = self._http.post(self._hashes_url, json={"uids": uids})
        if response.status_code != 200:
            raise PeerAnswerError(f"hash check answered HTTP {response.status_code}: {response.text[:200]}")
        try:
            found = response.json()["hashes"]
        except (ValueError, KeyError, TypeError):
            raise PeerAnswerError(f"hash check answered something other than {{hashes: ...}}: "
                                  f"{response.text[:200]!r}") from None
        if not isinstance(found, dict) or not all(isinstance(h, (str, type(None))) for h in found.values()):
            raise PeerAnswerError(f"hash check answered a malformed hashes object: {response.text[:200]!r}")
        return {uid: found.get(uid) for uid in uids}

    def _stow(self, objects: list[Outgoing]) -> dict[str, str]:
        """Send the batch; what the peer said about single objects, as notes for the record.
        Its status code is not trusted either way: the hash check decides."""
        boundary = new_boundary()
        body = encode_parts([(DICOM, o.data) for o in objects], boundary)
        response = self._http.post(self._stow_url, content=body,
                                   headers={"Content-Type": related_content_type(DICOM, boundary)})
        if response.status_code not in (200, 202, 409):
            raise PeerAnswerError(f"STOW-RS answered HTTP {response.status_code}: {response.text[:200]}")
        return _failure_notes(response)

    def close(self) -> None:
        self._http.close()


def _compare(outgoing: Outgoing, theirs: str | None, notes: dict[str, str]) -> Verdict:
    if theirs == outgoing.item.content_hash:
        return Verdict(CONFIRMED)
    note = notes.get(outgoing.item.sop_instance_uid, "")
    if theirs is None:
        return Verdict(PENDING, "peer does not hold it after STOW-RS" + (f" ({note})" if note else ""))
    return Verdict(PENDING, f"peer holds other content for this SOP Instance UID (hash {theirs[:16]}…)"
                   + (f" ({note})" if note else ""))


def _failure_notes(response: httpx.Response) -> dict[str, str]:
    """SOP Instance UID -> the peer's ErrorComment or reason, from a STOW-RS response body."""
    try:
        body = response.json()
        items = body.get("00081198", {}).get("Value", []) + body.get("00081199", {}).get("Value", [])
        notes = {}
        for item in items:
            uid = item["00081155"]["Value"][0]
            comment = item.get("00000902", {}).get("Value", [""])[0]
            reason = item.get("00081197", item.get("00081196", {})).get("Value", [None])[0]
            if comment or reason is not None:
                notes[str(uid)] = str(comment or f"reason 0x{int(reason):04X}")
        return notes
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return {}  # notes are a courtesy; the hash check does not need them


class DimsePeer:
    """C-STORE over one association per batch; with storage_commitment, an N-ACTION and the
    N-EVENT-REPORT, taken on the same association (kept open for it) or on this site's DICOM
    listener, wherever the peer sends it; without, the objects are 'unverified': sent, never
    confirmed."""

    def __init__(self, peer: PeerSettings, to: Remote, ae_title: str, reports: CommitmentReports,
                 timeout: float = 30.0) -> None:
        self.name = peer.name
        self.peer = peer
        self.to = to
        self.reports = reports
        self.report_timeout = timeout
        self.ae = AE(ae_title=ae_title)
        self.ae.acse_timeout = self.ae.dimse_timeout = self.ae.network_timeout = timeout
        enable_stored_file_sending()  # send stored files' bytes as they are (transport.py)

    def deliver(self, objects: Sequence[Outgoing]) -> dict[str, Verdict]:
        contexts = storage_contexts([o.instance for o in objects])
        if self.peer.storage_commitment:
            contexts = [*contexts[:MAX_CONTEXTS - 1], build_context(StorageCommitmentPushModel)]
        assoc = associate(self.ae, self.to, contexts)
        if not assoc.is_established:
            return {o.item.sop_instance_uid: Verdict(PENDING, no_association(self.to)) for o in objects}
        assoc.bind(evt.EVT_N_EVENT_REPORT, self.reports.on_report)
        try:
            verdicts, sent = _store(assoc, objects)
            if sent and self.peer.storage_commitment:
                verdicts.update(self._commit(assoc, sent))
            else:
                verdicts.update({o.item.sop_instance_uid: Verdict(UNVERIFIED) for o in sent})
            return verdicts
        finally:
            if assoc.is_established:
                assoc.release()

    def _commit(self, assoc: Association, sent: list[Outgoing]) -> dict[str, Verdict]:
        """PS3.4 J.3.2: request commitment, then wait for its report (kept association open)."""
        info = Dataset()
        info.TransactionUID = generate_uid()
        info.ReferencedSOPSequence = [_reference(o.instance.sop_class_uid, o.item.sop_instance_uid) for o in sent]
        reports = self.reports.expect(info.TransactionUID)
        try:
            try:
                status, _ = assoc.send_n_action(info, 1, StorageCommitmentPushModel,
                                                StorageCommitmentPushModelInstance)
            except ValueError:  # pynetdicom: the peer accepted no Storage Commitment context
                return _all(sent, "the peer does not support storage commitment (context rejected)")
            code = status.get("Status") if status else None
            if code != 0x0000:
                return _all(sent, f"storage commitment request refused (status {_hex(code)})")
            report = reports.get(timeout=self.report_timeout)
        except queue.Empty:
            return _all(sent, f"no storage commitment report within {self.report_timeout:g} s")
        finally:
            self.reports.forget(info.TransactionUID)
        committed = {str(i.ReferencedSOPInstanceUID) for i in report.get("ReferencedSOPSequence", [])}
        failed = {str(i.ReferencedSOPInstanceUID): i.get("FailureReason")
                  for i in report.get("FailedSOPSequence", [])}
        verdicts = {}
        for o in sent:
            uid = o.item.sop_instance_uid
            if uid in committed and uid not in failed:
                verdicts[uid] = Verdict(CONFIRMED)
            elif uid in failed:
                verdicts[uid] = Verdict(PENDING, f"storage commitment failed (reason {_hex(failed[uid])})")
            else:
                verdicts[uid] = Verdict(PENDING, "the storage commitment report does not mention it")
        return verdicts

    def close(self) -> None:
        self.ae.shutdown()


def _store(assoc: Association, objects: Sequence[Outgoing]) -> tuple[dict[str, Verdict], list[Outgoing]]:
    verdicts: dict[str, Verdict] = {}
    sent = []
    for o in objects:
        if not assoc.is_established:
            verdicts[o.item.sop_instance_uid] = Verdict(PENDING, "the association ended before it was sent")
            continue
        try:
            payload: Any = StoredFile(o.path, o.instance) if o.path else dcmread(io.BytesIO(o.data))
            rsp = assoc.send_c_store(payload)
        except (ValueError, RuntimeError) as exc:  # e.g. no accepted context for its SOP class
            verdicts[o.item.sop_instance_uid] = Verdict(PENDING, f"C-STORE not sent: {exc}")
            continue
        code = rsp.get("Status") if rsp else None
        if code is not None and (code == 0x0000 or code & 0xF000 == 0xB000):  # success or warning
            sent.append(o)
        else:
            comment = f": {rsp.ErrorComment}" if rsp and "ErrorComment" in rsp else ""
            verdicts[o.item.sop_instance_uid] = Verdict(PENDING, f"C-STORE status {_hex(code)}{comment}")
    return verdicts, sent


def _reference(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop_instance
    return item


def _all(objects: list[Outgoing], error: str) -> dict[str, Verdict]:
    return {o.item.sop_instance_uid: Verdict(PENDING, error) for o in objects}


def _hex(code: Any) -> str:
    return "none (no answer)" if code is None else f"0x{int(code):04X}"


def make_client(peer: PeerSettings, site_name: str, dicom: DicomSettings, ae_title: str,
                reports: CommitmentReports) -> TwinpacsPeer | DimsePeer:
    if peer.kind == "twinpacs":
        return TwinpacsPeer(peer, site_name)
    return DimsePeer(peer, remote(dicom, peer.ae_title, peer.host, peer.port, peer.tls), ae_title, reports)
