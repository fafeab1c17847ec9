"""The doors of one running site and the hostile inputs thrown at them, shared by the bounded
fuzz tests (tests/fuzz/test_fuzz_*.py) and the long run (bench/fuzz.py).

A FuzzSite is a real site: DIMSE (pynetdicom), HL7 (MLLP, on an asyncio loop in a thread) and
HTTP (uvicorn), all on 127.0.0.1 with ports chosen at run time, and small limits so that inputs
reach them. Each door has a hypothesis strategy and a `send_*` that sends one input and checks
the invariants; a broken one is an AssertionError saying which:
  - no 5xx answer (a 503 only from a standby site, which these are not) and no traceback;
  - no partial object: the files in the store are exactly the objects the index knows;
  - the door still answers a valid request afterwards (C-ECHO, an HL7 message, /healthz)."""

from __future__ import annotations

import io
import socket
import struct
import tempfile
import threading
import uuid
import warnings
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import strategies as st
from pydicom import config as pydicom_config
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.association import Association
from sqlalchemy import select

from tests.backend import backend_url
from tests.served import ServedApp
from twinpacs.announcements import Announcements
from twinpacs.app import Site, build_site
from twinpacs.config import load_settings
from twinpacs.dimse import DimseServer, start_dimse
from twinpacs.dimse.transport import CONNECTION_HANDLERS
from twinpacs.errors import InvalidInput
from twinpacs.index.incident_register import drafts_for
from twinpacs.hl7 import Hl7Listener, start_hl7
from twinpacs.index.schema import instance_versions, instances
from twinpacs.synthetic import StudySpec, encode, make_study
from twinpacs.web.multipart import encode_parts, new_boundary
from tests.loops import LoopThread

HOST = "127.0.0.1"
AE_TITLE = "TWINPACS"
DICOM = "application/dicom"
# Small limits, so that generated inputs cross them (the defaults are megabytes).
LIMITS = {"dicom_max_pdu_bytes": 65536, "max_upload_bytes": 512 * 1024, "max_query_results": 50,
          "request_timeout_s": 3.0, "hl7_max_message_bytes": 16384}
VERIFICATION = "1.2.840.10008.1.1"
SOCKET_TIMEOUT_S = 15.0  # an answer slower than this is a hang


class FuzzSite:
    """A site with its three doors open on loopback; close() stops them all."""

    def __init__(self, data_dir: Path, **limits: Any) -> None:
        settings = load_settings(overrides={
            "site": {"data_dir": data_dir, "ae_title": AE_TITLE, "name": "fuzz"},
            "database": {"url": backend_url(data_dir)},
            # Open doors: the inputs are to reach the code behind them, not be refused at the gate.
            "dicom": {"port": 0, "accept_unknown_ae": True}, "http": {"port": 0}, "hl7": {"port": 0},
            "security": {"anonymous_role": "administrator"},
            "limits": {**LIMITS, **limits},
        })
        self.site: Site = build_site(settings)
        self.data_dir = data_dir
        self.dimse: DimseServer = start_dimse(self.site)
        self.loop = LoopThread()
        self.hl7: Hl7Listener = self.loop.run(start_hl7(self.site))
        self.http = ServedApp(self.site)
        self.client = httpx.Client(base_url=self.http.url, timeout=SOCKET_TIMEOUT_S)
        self.tried: dict[str, int] = {}

    def close(self) -> None:
        self.client.close()
        self.http.stop()
        self.loop.run(self.hl7.close())
        self.loop.stop()
        self.dimse.shutdown()
        self.site.close()

    def count(self, door: str) -> None:
        self.tried[door] = self.tried.get(door, 0) + 1

    # -- invariants ---------------------------------------------------------------------------

    def check_store(self) -> None:
        """No partial object: every file in the store is an object the index holds (current
        or a kept conflicting version), every such object has its file, no temporary is left."""
        store = self.data_dir / "store"
        files = {p.name for p in (store / "objects").rglob("*") if p.is_file()}
        with self.site.index.db.read() as conn:
            held = {r[0] for r in conn.execute(select(instances.c.content_hash))}
            held |= {r[0] for r in conn.execute(select(instance_versions.c.content_hash))}
        assert files == held, f"store and index differ: files only {files - held}, index only {held - files}"
        assert not any((store / "tmp").iterdir()), "a temporary file was left in the store"

    def check_echo(self) -> None:
        ae = AE(ae_title="FUZZECHO")
        ae.add_requested_context(VERIFICATION)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = SOCKET_TIMEOUT_S
        assoc = ae.associate(HOST, self.dimse.port, ae_title=AE_TITLE)
        assert assoc.is_established, "the DIMSE door no longer accepts an association"
        try:
            status = assoc.send_c_echo()
            assert status and status.Status == 0, "C-ECHO failed after the input"
        finally:
            assoc.release()

    def check_http(self) -> None:
        response = self.client.get("/healthz")
        assert response.status_code == 200, f"/healthz answered {response.status_code}"

    def check_hl7(self) -> None:
        with Mllp(self.hl7.port) as client:
            ack = client.send(frame(adt(f"OK{self.tried.get('hl7', 0)}")))
        assert ack is not None and b"MSA|AA|" in ack, f"a valid message after the input got {ack!r}"

    # -- doors --------------------------------------------------------------------------------

    def send_stow(self, body: bytes, content_type: str) -> httpx.Response:
        self.count("stow")
        headers = {"Content-Type": content_type.encode("latin-1")}  # any byte a client may send
        response = self.client.post("/dicom-web/studies", content=body, headers=headers)
        check_answer(response)
        self.check_store()
        if response.status_code in (200, 202):  # what was stored can be searched and read back
            for item in response.json().get("00081199", {}).get("Value", []):
                instance = item["00081190"]["Value"][0].removeprefix(self.http.url)
                study = instance.split("/series/")[0]
                for url in (f"{study}/metadata", f"{instance}/metadata", study.replace("/studies/", "/studies?StudyInstanceUID=")
                            + "&includefield=all", f"{study}/series?includefield=all", f"{study}/instances"):
                    check_answer(self.client.get(url, headers={"Accept": "application/dicom+json"}))
        return response

    def send_cstore(self, dataset: bytes) -> int | None:
        """A C-STORE whose data set is `dataset`, sent as it is (pynetdicom streams a file's
        bytes after its meta group); the status, or None when the association was aborted."""
        self.count("cstore")
        with tempfile.NamedTemporaryFile(suffix=".dcm") as f:
            f.write(part10_meta(new_uid()) + dataset)
            f.flush()
            assoc = associate(self.dimse.port, [CTImageStorage])
            try:
                status = assoc.send_c_store(Path(f.name))
            finally:
                _release(assoc)
        self.check_store()
        return int(status.Status) if status and "Status" in status else None

    def send_pdata(self, pdu: bytes) -> None:
        """Raw bytes on an established association, as if they were a P-DATA-TF PDU."""
        self.count("pdata")
        assoc = associate(self.dimse.port, [CTImageStorage])
        try:
            assert assoc.dul.socket is not None
            assoc.dul.socket.send(pdu)
        finally:
            assoc.abort()
        self.check_store()

    def send_pdu(self, data: bytes) -> bytes:
        """Raw bytes on a fresh TCP connection to the DIMSE port, then end of input: the server
        must answer or close, within SOCKET_TIMEOUT_S (no hang). Returns what it sent."""
        self.count("pdu")
        received = bytearray()
        with socket.create_connection((HOST, self.dimse.port), timeout=SOCKET_TIMEOUT_S) as sock:
            try:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
                while chunk := sock.recv(65536):
                    received += chunk
            except TimeoutError:
                raise AssertionError(f"the DIMSE door neither answered nor closed within {SOCKET_TIMEOUT_S} s")
            except ConnectionError:
                pass  # reset by the server: it refused, as it may
        return bytes(received)

    def send_hl7(self, data: bytes) -> bytes | None:
        """One frame (or anything) over MLLP; the ACK, or None when the connection closed."""
        self.count("hl7")
        with Mllp(self.hl7.port) as client:
            ack = client.send(data)
        return ack

    def send_page_text(self, payload: str, number: int) -> None:
        """`payload` planted everywhere pages show text (see `plant`), then every page read:
        shown as text, never as markup."""
        self.count("pages")
        marker = f"zq{number}x"
        text = marker + payload
        study = plant(self, text, number)
        incident = plant_incident(self, text)
        pages = ["/", "/admin", "/admin/notices", "/admin/sync", "/admin/reconciliation", "/admin/failover",
                 "/admin/incidents", f"/incidents/new?recorded={quote(text)}",
                 f"/?modality={quote(text)}&status={quote(text)}&priority={quote(text)}&date={quote(text)}",
                 f"/studies/{quote(text)}", f"/viewer/{quote(text)}"]
        if study:
            pages += [f"/studies/{study}", f"/viewer/{study}"]
        if incident:
            pages += [f"/admin/incidents/{incident}", f"/admin/incidents/{incident}?stage={quote(text)}"]
        for page in pages:
            check_escaped(self.get_page(page), text, marker, page)

    def get_page(self, path: str) -> str:
        response = self.client.get(path)
        check_answer(response)
        return response.text


def plant(site: FuzzSite, text: str, number: int) -> str:
    """`text` in an instance (STOW-RS), its order (HL7) and a notice; the study's UID."""
    accession = f"XSS{number}"
    instance = with_values(PatientName=text, PatientID=text[:64], StudyDescription=text, SeriesDescription=text,
                           ReferringPhysicianName=text, InstitutionName=text, BodyPartExamined=text.encode("ascii", "replace").decode()[:16],
                           AccessionNumber=accession, OperatorsName=text)
    response = site.send_stow(*stow_body([instance]))
    assert response.status_code in (200, 202, 409), response.text[:300]
    ack = site.send_hl7(frame(order(f"C{number}", f"PL{number}", accession, text)))
    assert ack is not None and b"MSA|A" in ack
    notices = Announcements.from_site(site.site).notices
    if "\x00" in text:  # refused with a reason at every door: no store can keep a NUL
        assert response.status_code == 409 and "NUL" in response.text, response.text[:300]
        with pytest.raises(InvalidInput, match="NUL"):
            notices.post("warning", text, text, [], text)
        return ""
    notices.post("warning", text, text, [], text)
    study = site.client.get("/dicom-web/studies", params={"AccessionNumber": accession},
                            headers={"Accept": "application/dicom+json"}).json()
    assert len(study) == 1, f"the study with accession {accession} was not stored"
    return str(study[0]["0020000D"]["Value"][0])


def plant_incident(site: FuzzSite, text: str) -> int | None:
    """`text` in every text field of an incident reported through the page's form, and in a draft;
    the incident's id (None when the text was refused, as a NUL must be)."""
    fields = ("subject", "description", "product", "manufacturer", "software_version", "serial_batch")
    response = site.client.post("/incidents/new", data={"event_date": "2026-01-01", **{f: text for f in fields}})
    check_answer(response)
    drafts = drafts_for(site.site.index.db)
    if "\x00" in text or not text.strip():
        assert response.status_code == 400, response.text[:300]
        return None
    assert response.status_code == 303, response.text[:300]
    drafts.draft(site.site.name, text, text, {"detail": text})
    return int(response.headers["location"].rsplit("/", 1)[1])


def check_answer(response: httpx.Response) -> None:
    assert response.status_code < 500, f"{response.request.method} {response.request.url.path}: " \
                                       f"{response.status_code} {response.text[:300]}"
    assert "Traceback" not in response.text, "a traceback reached the client"


def associate(port: int, contexts: list[str]) -> Association:
    ae = AE(ae_title="FUZZSCU")
    for context in contexts:
        ae.add_requested_context(context, [ExplicitVRLittleEndian])
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = SOCKET_TIMEOUT_S
    assoc = ae.associate(HOST, port, ae_title=AE_TITLE, evt_handlers=list(CONNECTION_HANDLERS))
    assert assoc.is_established, "the DIMSE door refused a valid association"
    return assoc


def _release(assoc: Association) -> None:
    if assoc.is_established:
        assoc.release()


class Mllp:
    """A blocking MLLP client: send a frame, read one ACK frame (None if the server closed)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=SOCKET_TIMEOUT_S)
        self.buffer = b""

    def __enter__(self) -> Mllp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> bytes | None:
        try:
            self.sock.sendall(data)
        except ConnectionError:
            return None
        return self.read_ack()

    def read_ack(self) -> bytes | None:
        while b"\x1c\x0d" not in self.buffer:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionError:
                return None
            except TimeoutError:
                raise AssertionError(f"no ACK and no close within {SOCKET_TIMEOUT_S} s")
            if not chunk:
                return None
            self.buffer += chunk
        ack, _, self.buffer = self.buffer.partition(b"\x1c\x0d")
        return ack.lstrip(b"\x0b")


# -- DICOM inputs ---------------------------------------------------------------------------------

def new_uid() -> str:
    """A unique UID of fixed length: the inputs built around it keep their sizes from one
    replay to the next, as hypothesis requires."""
    return f"2.25.{uuid.uuid4().int | 1 << 127}"  # always 39 digits, no leading zero


def part10_meta(sop_instance: str, sop_class: str = CTImageStorage) -> bytes:
    """Preamble, DICM and a file meta group for Explicit VR Little Endian."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.1234.1"
    buffer = io.BytesIO()
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def dataset_bytes(part10: bytes) -> bytes:
    """The data set of a Part 10 file (after its meta group), or the bytes as they are."""
    if len(part10) < 144 or part10[128:132] != b"DICM":
        return part10
    return part10[144 + struct.unpack("<I", part10[140:144])[0]:]


def real_instance() -> bytes:
    """One small valid CT instance, a new SOP Instance UID each time."""
    ds = make_study(StudySpec(patient_id="FUZZ", series=1, instances_per_series=1, rows=8, columns=8,
                              seed=1))[0]
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = new_uid()
    return encode(ds)


REAL = real_instance()


def with_values(**values: Any) -> bytes:
    """REAL with some attributes set to anything (value validation off), in a new study."""
    ds = make_study(StudySpec(patient_id="FUZZ", series=1, instances_per_series=1, rows=8, columns=8, seed=1))[0]
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = new_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = new_uid(), new_uid()
    with warnings.catch_warnings(), pydicom_config.disable_value_validation():
        warnings.simplefilter("ignore")
        ds.SpecificCharacterSet = "ISO_IR 192"  # any text: UTF-8
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        return encode(ds)


def nested_sequences(depth: int) -> bytes:
    """A data set whose one sequence nests `depth` deep (undefined lengths, as a sender may)."""
    item_start, item_end = b"\xfe\xff\x00\xe0\xff\xff\xff\xff", b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
    seq_start = b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff"  # ReferencedSeriesSequence
    seq_end = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    body = (seq_start + item_start) * depth + (item_end + seq_end) * depth
    head = dataset_bytes(REAL)
    return part10_meta(new_uid()) + head[:_after_group_0008(head)] + body


def _after_group_0008(data: bytes) -> int:
    """Where a tag above (0008,1115) could go: REAL's elements are sorted, group 0008's short
    ones first; the first element of a later group is a safe cut."""
    offset = 0
    while offset + 8 <= len(data):
        group, element = struct.unpack("<HH", data[offset:offset + 4])
        if (group, element) > (0x0008, 0x1115):
            return offset
        vr = data[offset + 4:offset + 6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV"):
            offset += 12 + struct.unpack("<I", data[offset + 8:offset + 12])[0]
        else:
            offset += 8 + struct.unpack("<H", data[offset + 6:offset + 8])[0]
    return offset


@st.composite
def flipped(draw: st.DrawFn, data: bytes = REAL) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
    return bytes(out)


@st.composite
def huge_length(draw: st.DrawFn) -> bytes:
    """An element length field of REAL's data set overwritten with a large or odd value."""
    out = bytearray(REAL)
    start = 144 + struct.unpack("<I", REAL[140:144])[0]
    position = draw(st.integers(start, len(out) - 4))
    out[position:position + 4] = struct.pack("<I", draw(st.sampled_from(
        [0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF, 0x10000000, len(REAL) + 1, 0xFFFF, 0xFFFF0000])))
    return bytes(out)


def dicom_inputs() -> st.SearchStrategy[bytes]:
    """Part 10 files from plain garbage to nearly valid."""
    return st.one_of(
        st.binary(max_size=2048),
        st.integers(0, len(REAL)).map(lambda n: REAL[:n]),  # truncated
        flipped(),
        huge_length(),
        st.integers(1, 3000).map(nested_sequences),
        st.binary(max_size=512).map(lambda tail: REAL[:132] + tail),  # DICM, then garbage
        st.sampled_from(["PatientName", "PatientID", "StudyDescription", "InstitutionName", "AccessionNumber"])
        .flatmap(lambda k: st.integers(1, 300_000).map(lambda n: with_values(**{k: "A" * n}))),  # oversized
        st.sampled_from(["Rows", "Columns", "BitsAllocated", "NumberOfFrames", "SamplesPerPixel"])
        .flatmap(lambda k: st.sampled_from([0, 1, 3, 4097, 65535]).map(lambda v: with_values(**{k: v}))),
        st.just(with_values(StudyInstanceUID="1.2.3.../../etc", SOPInstanceUID="../../../etc/passwd")),
    )


def stow_body(parts: list[bytes]) -> tuple[bytes, str]:
    boundary = new_boundary()
    body = encode_parts([(DICOM, p) for p in parts], boundary)
    return body, f'multipart/related; type="{DICOM}"; boundary={boundary}'


@st.composite
def stow_inputs(draw: st.DrawFn) -> tuple[bytes, str]:
    """A STOW-RS body and Content-Type: well-framed parts of any content, or broken framing."""
    parts = draw(st.lists(dicom_inputs(), min_size=1, max_size=3))
    body, content_type = stow_body(parts)
    framing = draw(st.sampled_from(["ok", "ok", "ok", "truncated", "flipped", "no-boundary", "garbage"]))
    if framing == "truncated":
        body = body[:draw(st.integers(0, len(body) - 1))]
    elif framing == "flipped":
        body = draw(flipped(body))
    elif framing == "no-boundary":
        content_type = f'multipart/related; type="{DICOM}"'
    elif framing == "garbage":
        content_type = draw(st.sampled_from([content_type, "application/dicom", "multipart/related; boundary=",
                                             'multipart/related; type="application/dicom"; boundary="\x7f\xff"', "multipart/related; boundary=" + "b" * 5000]))
        body = draw(st.binary(max_size=1024))
    return body, content_type


# -- PDU inputs -----------------------------------------------------------------------------------

def captured_associate_rq() -> bytes:
    """The A-ASSOCIATE-RQ PDU pynetdicom sends, as bytes: a listener that only records."""
    with socket.create_server((HOST, 0)) as server:
        port = server.getsockname()[1]
        got: list[bytes] = []

        def accept() -> None:
            conn, _ = server.accept()
            with conn:
                conn.settimeout(5)
                data = b""
                while len(data) < 6 or len(data) < 6 + struct.unpack(">I", data[2:6])[0]:
                    data += conn.recv(65536)
                got.append(data)

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        ae = AE(ae_title="FUZZSCU")
        ae.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian])
        ae.add_requested_context(VERIFICATION)
        ae.acse_timeout = ae.network_timeout = 2
        ae.associate(HOST, port, ae_title=AE_TITLE)
        thread.join(5)
        return got[0]


ASSOCIATE_RQ = captured_associate_rq()


def pdu_header(pdu_type: int, length: int) -> bytes:
    return struct.pack(">BBI", pdu_type, 0, length)


def pdu_inputs() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=1024),
        st.tuples(st.integers(0, 255), st.integers(0, 2**32 - 1), st.binary(max_size=256))
        .map(lambda t: pdu_header(t[0], t[1]) + t[2]),  # any header, a short body
        st.tuples(st.integers(1, 7), st.sampled_from([2**32 - 1, 2**31, 65537, 10**6]))
        .map(lambda t: pdu_header(*t) + b"\0" * 64),  # announces more than the limit
        st.integers(0, len(ASSOCIATE_RQ) - 1).map(lambda n: ASSOCIATE_RQ[:n]),  # truncated
        flipped(ASSOCIATE_RQ),
        st.binary(max_size=512).map(lambda tail: ASSOCIATE_RQ + tail),  # then garbage
        st.binary(max_size=512).map(lambda body: pdu_header(1, len(body)) + body),  # RQ of garbage
    )


@st.composite
def pdata_inputs(draw: st.DrawFn) -> bytes:
    """A P-DATA-TF PDU of PDV items with any context ID, control header and value."""
    items = b""
    for _ in range(draw(st.integers(0, 4))):
        value = draw(st.binary(max_size=512))
        items += struct.pack(">IBB", len(value) + 2, draw(st.integers(0, 255)), draw(st.integers(0, 255))) + value
    if draw(st.booleans()):
        items = draw(flipped(items)) if items else items
    return pdu_header(4, len(items)) + items


# -- HL7 inputs -----------------------------------------------------------------------------------

def frame(message: str | bytes) -> bytes:
    data = message.encode("utf-8", "surrogateescape") if isinstance(message, str) else message
    return b"\x0b" + data + b"\x1c\x0d"


def msh(kind: str, control: str, encoding: str = "^~\\&", separator: str = "|") -> str:
    s = separator
    return f"MSH{s}{encoding}{s}RIS{s}HOSP{s}TWINPACS{s}HOSP{s}20260301120000{s}{s}{kind}{s}{control}{s}P{s}2.5"


def adt(control: str) -> str:
    return "\r".join([msh("ADT^A01", control), "PID|1||P100^^^HOSP^MR||Nordmann^Ola||19800131|M"])


def hl7_escape(text: str) -> str:
    """HL7 v2 escaping of the delimiters (2.7.4): text stays one field value."""
    return (text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
            .replace("&", "\\T\\").replace("~", "\\R\\").replace("\r", "\\X0D\\"))


def order(control: str, placer: str, accession: str, text: str, patient: str = "P200") -> str:
    """An ORM^O01 new order with `text` in every field the pages show."""
    t = hl7_escape(text)
    obr = [""] * 37
    obr[0], obr[1], obr[2], obr[4] = "OBR", "1", f"{placer}^RIS", f"{t}^{t}^L"
    obr[13], obr[16], obr[18], obr[21] = t, f"0042^{t}^{t}", accession, "CT1"
    obr[24], obr[31], obr[36], obr[15] = "CT", f"R07.4^{t}^I10", "20260302093000", f"^^^{t}"
    return "\r".join([
        msh("ORM^O01", control),
        f"PID|1||{patient}^^^HOSP^MR||{t}^{t}||19800131|M",
        f"PV1|1|O||||||0077^{t}^{t}",
        f"ORC|NW|{placer}^RIS",
        "|".join(obr),
    ])


_SEGMENT = st.sampled_from(["PID", "PV1", "ORC", "OBR", "EVN", "MRG", "NTE", "ZZZ", "OBX", "MSA", "msh", "M"])
_FIELD = st.one_of(st.text(max_size=40), st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
                   st.sampled_from(["^^^^", "~~~", "\\E\\", "\\X00\\", "&&&", "\\", "20269999", "-1", "9" * 40]))


@st.composite
def hl7_inputs(draw: st.DrawFn) -> bytes:
    """Frames of HL7 from plausible to hostile: odd MSH, missing or unknown segments,
    odd fields, huge fields, binary, no framing."""
    kind = draw(st.sampled_from(["ADT^A01", "ADT^A08", "ADT^A40", "ORM^O01", "OMI^O23", "ORU^R01", "", "X"]))
    encoding = draw(st.sampled_from(["^~\\&", "^~\\&", "", "^", "||||", "\x00\x01\x02\x03", "^~\\&#"]))
    separator = draw(st.sampled_from(["|", "|", "^", "\x00", "\r"]))
    segments = [msh(kind, draw(st.text(max_size=30)), encoding, separator)]
    for _ in range(draw(st.integers(0, 6))):
        fields = draw(st.lists(_FIELD, max_size=25))
        segments.append("|".join([draw(_SEGMENT), *fields]))
    if draw(st.integers(0, 9)) == 0:
        del segments[0]  # no MSH at all
    if draw(st.integers(0, 9)) == 0:  # one huge field, around the limit
        segments.append("NTE|1||" + "x" * draw(st.integers(LIMITS["hl7_max_message_bytes"] - 200,
                                                           2 * LIMITS["hl7_max_message_bytes"])))
    body = "\r".join(segments).encode("utf-8", "surrogatepass")
    shape = draw(st.sampled_from(["frame", "frame", "frame", "binary", "no-start", "two"]))
    if shape == "binary":
        return frame(draw(st.binary(max_size=1024)).replace(b"\x1c\x0d", b""))
    if shape == "no-start":
        return body + b"\x1c\x0d"
    if shape == "two":
        return frame(body) + frame(adt("SECOND"))
    return frame(body)


# -- Page inputs ----------------------------------------------------------------------------------

PAYLOADS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "../../etc/passwd", "{{7*7}}",
            "'; alert(1); '", "</textarea><svg onload=alert(1)>", "javascript:alert(1)", "${7*7}",
            "\u202eevil\u0000null", "Å^Ø=ü<b>bold</b>", "<!--", "]]><![CDATA[<x>"]


def page_payloads() -> st.SearchStrategy[str]:
    tokens = st.sampled_from([*"<>\"'&/=() ;:{}\\^|`", "script", "onerror", "img", "a", "é", "\u2028", "../"])
    hostile = st.lists(tokens, min_size=1, max_size=20).map("".join)
    return st.one_of(st.sampled_from(PAYLOADS), hostile)


class _Elements(HTMLParser):
    """Every start tag and attribute, and the text of each script element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def check_escaped(html: str, payload: str, marker: str, page: str) -> None:
    """The payload (carrying `marker`) is shown as text, never as markup: no raw copy of a
    payload with markup characters, no element, attribute, event handler or script made from it."""
    if any(c in payload for c in "<>\"'"):
        assert payload not in html, f"{page}: the payload {payload!r} appears unescaped"
    parser = _Elements()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert marker not in tag, f"{page}: an element <{tag}> made from input"
        for name, value in attrs:
            assert marker not in name, f"{page}: an attribute {name!r} made from input"
            if name.startswith("on") or name in ("href", "src", "action", "formaction"):
                assert marker not in (value or "") or not (value or "").lower().lstrip().startswith(
                    "javascript:"), f"{page}: a javascript: URL made from input"
                assert not (name.startswith("on") and marker in (value or "")), \
                    f"{page}: an event handler {name} made from input"
    for script in parser.scripts:
        assert marker not in script, f"{page}: input inside a <script>"
