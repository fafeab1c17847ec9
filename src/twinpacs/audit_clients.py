"""The auditor's adapters to other archives (G5): a twinpacs site over its audit API, any
DICOMweb archive over QIDO-RS, any DIMSE archive over C-FIND, and the copier that `--repair`
uses (WADO-RS retrieve, STOW-RS store)."""

from __future__ import annotations

from collections.abc import Iterable
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import httpx
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind  # type: ignore[attr-defined]

from .core.audit import AuditLevel, Copy, Node
from .core.audit_presence import Entry
from .dimse.scu import identifier
from .errors import TwinpacsError
from .web.multipart import encode_parts, new_boundary, related_content_type

DICOM = "application/dicom"
_FAILED_SOP_SEQUENCE = "00081198"


class AuditClientError(TwinpacsError):
    """The other archive could not be asked, or answered something unusable."""


def _json(response: httpx.Response) -> Any:
    if response.status_code != 200:
        raise AuditClientError(f"{response.request.method} {response.request.url} answered "
                               f"{response.status_code}: {response.text[:300]}")
    return response.json()


class HttpDigestSource:
    """A twinpacs site as a DigestSource, through GET /api/audit/digest."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self.client = client
        self.url = url.rstrip("/")
        self.name = self.url

    def top(self) -> Node:
        body = _json(self.client.get(f"{self.url}/api/audit/digest"))
        self.name = str(body["site"]) or self.url
        return Node.from_dict(body["top"])

    def children(self, level: AuditLevel, parent: str) -> list[Node]:
        params = {"level": level.value, **({"parent": parent} if parent else {})}
        body = _json(self.client.get(f"{self.url}/api/audit/digest", params=params))
        return [Node.from_dict(n) for n in body["nodes"]]


def site_listing(client: httpx.Client, url: str) -> tuple[str, list[Entry]]:
    """(site name, every instance it holds), through GET /api/audit/instances."""
    body = _json(client.get(f"{url.rstrip('/')}/api/audit/instances"))
    return str(body["site"]), [Entry(**e) for e in body["instances"]]


def site_deep_check(client: httpx.Client, url: str) -> dict[str, Any]:
    """The site re-reads and re-hashes every file it holds (GET /api/audit/deep)."""
    body: dict[str, Any] = _json(client.get(f"{url.rstrip('/')}/api/audit/deep"))
    return body


# -- third-party archives: presence by query --------------------------------------------------

_QIDO_STUDY_FIELDS = ("00100020", "00100010", "00080050", "00080020")  # PatientID, Name, Accession, Date


def qido_listing(client: httpx.Client, dicomweb_url: str) -> list[Entry]:
    """Every instance of a DICOMweb archive: QIDO-RS studies, then each study's instances."""
    base = dicomweb_url.rstrip("/")
    entries = []
    for study in _qido(client, f"{base}/studies", {"includefield": ",".join(_QIDO_STUDY_FIELDS)}):
        ds = Dataset.from_json(study)
        for item in _qido(client, f"{base}/studies/{ds.StudyInstanceUID}/instances", {}):
            entries.append(_entry(ds, Dataset.from_json(item)))
    return entries


def _qido(client: httpx.Client, url: str, params: dict[str, str]) -> list[dict[str, Any]]:
    response = client.get(url, params=params, headers={"Accept": "application/dicom+json"})
    if response.status_code == 204:  # PS3.18 10.6.3: no match
        return []
    found: list[dict[str, Any]] = _json(response)
    return found


def cfind_listing(address: str, calling_ae: str = "TWINPACS-AUDIT") -> list[Entry]:
    """Every instance of a DIMSE archive given as AE@HOST:PORT: a STUDY-level C-FIND, then an
    IMAGE-level C-FIND per study (Study Root, PS3.4 C.6.2), so no unique key is left universal
    above the level asked, as the hierarchical model requires."""
    called_ae, host, port = _dimse_address(address)
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate(host, port, ae_title=called_ae)
    if not assoc.is_established:
        raise AuditClientError(f"no association with {address}")
    try:
        studies = _find(assoc, identifier("STUDY", StudyInstanceUID="", PatientID="", PatientName="",
                                           AccessionNumber="", StudyDate=""))
        entries = []
        for study in studies:
            query = identifier("IMAGE", StudyInstanceUID=study.StudyInstanceUID, SeriesInstanceUID="",
                                SOPInstanceUID="", Modality="")
            entries.extend(_entry(study, image) for image in _find(assoc, query))
        return entries
    finally:
        assoc.release()


def _find(assoc: Any, query: Dataset) -> list[Dataset]:
    found = []
    for status, answer in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
        if status is None:
            raise AuditClientError("the C-FIND association was aborted or timed out")
        if status.Status in (0xFF00, 0xFF01) and answer is not None:
            found.append(answer)
        elif status.Status != 0x0000:
            raise AuditClientError(f"C-FIND failed with status 0x{status.Status:04X}")
    return found


def _dimse_address(address: str) -> tuple[str, str, int]:
    ae, sep, rest = address.partition("@")
    host, _, port = rest.rpartition(":")
    if not sep or not ae or not host or not port.isdigit():
        raise AuditClientError(f"{address!r}: expected AE@HOST:PORT")
    return ae, host, int(port)


def _entry(study: Dataset, instance: Dataset) -> Entry:
    def text(ds: Dataset, keyword: str) -> str:
        value = ds.get(keyword, "")
        return "" if value is None else str(value)

    return Entry(
        SOPInstanceUID=text(instance, "SOPInstanceUID"), SeriesInstanceUID=text(instance, "SeriesInstanceUID"),
        StudyInstanceUID=text(study, "StudyInstanceUID"), PatientID=text(study, "PatientID"),
        PatientName=text(study, "PatientName"), AccessionNumber=text(study, "AccessionNumber"),
        StudyDate=text(study, "StudyDate"), Modality=text(instance, "Modality"),
    )


# -- repair ------------------------------------------------------------------------------------


class Copier:
    """Copies one instance between two twinpacs sites: WADO-RS from the holder, as stored
    (transfer-syntax=*), then STOW-RS to the other. Success only when the target's STOW
    response lists no failure. The store names the holder as the object's origin
    (X-Twinpacs-Origin), as replication does: a standby target that has the holder as a peer
    accepts it, and it is not queued back to where it came from."""

    def __init__(self, client: httpx.Client, a_url: str, b_url: str, a_name: str, b_name: str) -> None:
        self.client = client
        a_web, b_web = f"{a_url.rstrip('/')}/dicom-web", f"{b_url.rstrip('/')}/dicom-web"
        self.routes = {True: (a_web, b_web, a_name), False: (b_web, a_web, b_name)}

    def copy(self, item: Copy) -> None:
        source, target, origin = self.routes[item.to_b]
        url = (f"{source}/studies/{item.StudyInstanceUID}/series/{item.SeriesInstanceUID}"
               f"/instances/{item.SOPInstanceUID}")
        response = self.client.get(url, headers={"Accept": f'multipart/related; type="{DICOM}"; transfer-syntax=*'})
        if response.status_code != 200:
            raise AuditClientError(f"retrieving {item.SOPInstanceUID} answered {response.status_code}")
        self.store(target, _parts(response), origin)

    def store(self, dicomweb_url: str, objects: Iterable[bytes], origin: str) -> None:
        boundary = new_boundary()
        body = encode_parts([(DICOM, o) for o in objects], boundary)
        response = self.client.post(f"{dicomweb_url}/studies", content=body,
                                    headers={"Content-Type": related_content_type(DICOM, boundary),
                                             "X-Twinpacs-Origin": origin})
        if response.status_code != 200 or _FAILED_SOP_SEQUENCE in response.json():
            raise AuditClientError(f"storing at {dicomweb_url} answered {response.status_code}: "
                                   f"{response.text[:300]}")


def _parts(response: httpx.Response) -> list[bytes]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + response.headers["content-type"].encode() + b"\r\n\r\n" + response.content)
    return [bytes(part.get_payload(decode=True)) for part in message.iter_parts()]
