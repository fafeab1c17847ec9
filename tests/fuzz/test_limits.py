"""limits.*: each limit refuses clearly, stores nothing, and leaves the door serving.

The site (tests/fuzz/doors.py LIMITS) accepts PDUs up to 64 KiB, STOW-RS bodies up to 512 KiB,
50 query matches, 16 KiB HL7 messages and 3 s of silence mid-request."""

from __future__ import annotations

import select
import socket
import struct
import subprocess
import time

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from pynetdicom import AE

from tests.fuzz.doors import (
    AE_TITLE,
    ASSOCIATE_RQ,
    DICOM,
    HOST,
    LIMITS,
    FuzzSite,
    Mllp,
    adt,
    associate,
    frame,
    pdu_header,
    stow_body,
)
from twinpacs.synthetic import StudySpec, encode, make_study

STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Q/R Find
TIMEOUT = LIMITS["request_timeout_s"]


@pytest.fixture(scope="module")
def study(fuzz_site: FuzzSite) -> str:
    """60 instances of one study, stored: more than max_query_results (50)."""
    datasets = make_study(StudySpec(patient_id="LIMITS", series=2, instances_per_series=30, rows=8, columns=8,
                                    seed=3))
    body, content_type = stow_body([encode(ds) for ds in datasets])
    assert fuzz_site.send_stow(body, content_type).status_code == 200
    return str(datasets[0].StudyInstanceUID)


def held(site: FuzzSite) -> int:
    return site.site.index.counts()["instances"]


def http_exchange(site: FuzzSite, head: bytes, chunks: list[bytes], pause: float = 0.0) -> tuple[bytes, int]:
    """Raw HTTP/1.1: send the head, then chunks until the server answers; (answer, bytes sent)."""
    sent = 0
    with socket.create_connection((HOST, site.http.port), timeout=10) as sock:
        sock.sendall(head)
        for chunk in chunks:
            if select.select([sock], [], [], pause)[0]:
                break  # answered before the body was all sent
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
                if b"\r\n\r\n" in answer and answer.rstrip().endswith(b"}"):
                    break
        except ConnectionResetError:
            pass
    return answer, sent


def stow_head(site: FuzzSite, boundary: str, length: int | None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (f"POST /dicom-web/studies HTTP/1.1\r\nHost: {HOST}:{site.http.port}\r\n"
            f'Content-Type: multipart/related; type="{DICOM}"; boundary={boundary}\r\n{framing}\r\n\r\n').encode()


def chunked(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def test_stow_declaring_a_body_over_the_limit_is_refused_before_it_is_read(fuzz_site: FuzzSite) -> None:
    before = held(fuzz_site)
    head = stow_head(fuzz_site, "b0", 100 * 1024 * 1024)
    answer, sent = http_exchange(fuzz_site, head, [b"--b0\r\n" + b"x" * 65536] * 1600, pause=0.05)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"status":413' in answer and b"limits.max_upload_bytes" in answer
    assert sent < LIMITS["max_upload_bytes"]  # refused from the header, not after 100 MB
    assert held(fuzz_site) == before
    fuzz_site.check_store()


def test_stow_chunked_body_over_the_limit_is_refused_once_it_passes(fuzz_site: FuzzSite) -> None:
    before = held(fuzz_site)
    part = b"--b1\r\nContent-Type: application/dicom\r\n\r\n"
    chunks = [chunked(part)] + [chunked(b"\0" * 65536)] * 160  # 10 MiB offered
    answer, sent = http_exchange(fuzz_site, stow_head(fuzz_site, "b1", None), chunks, pause=0.01)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 4 * LIMITS["max_upload_bytes"]  # the read stopped near the limit
    assert held(fuzz_site) == before
    fuzz_site.check_store()
    fuzz_site.check_http()


def test_stow_body_just_under_the_limit_is_stored(fuzz_site: FuzzSite) -> None:
    ds = make_study(StudySpec(patient_id="NEAR", series=1, instances_per_series=1, rows=400, columns=400,
                              seed=4))[0]  # 320 kB of pixels
    body, content_type = stow_body([encode(ds)])
    assert len(body) < LIMITS["max_upload_bytes"]
    assert fuzz_site.send_stow(body, content_type).status_code == 200


def test_stow_sender_silent_mid_body_gets_408_and_nothing_is_stored(fuzz_site: FuzzSite) -> None:
    before = held(fuzz_site)
    body, _ = stow_body([encode(make_study(StudySpec(patient_id="SLOW", rows=8, columns=8, seed=5))[0])])
    boundary = body[2:34].decode()
    head = stow_head(fuzz_site, boundary, len(body))
    started = time.monotonic()
    answer, _ = http_exchange(fuzz_site, head, [body[:100]])  # and then nothing
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert TIMEOUT <= time.monotonic() - started < TIMEOUT + 5
    assert held(fuzz_site) == before


def test_stow_truncated_multipart_is_400_and_stores_nothing(fuzz_site: FuzzSite) -> None:
    before = held(fuzz_site)
    body, content_type = stow_body([encode(ds) for ds in make_study(StudySpec(patient_id="CUT", rows=8,
                                                                              columns=8, seed=6))])
    response = fuzz_site.client.post("/dicom-web/studies", content=body[:-20],
                                     headers={"Content-Type": content_type})
    assert response.status_code == 400 and "closing boundary" in response.json()["error"]
    assert held(fuzz_site) == before


# -- QIDO-RS and C-FIND -----------------------------------------------------------------------------

def qido(site: FuzzSite, study: str, query: str = "") -> tuple[int, str]:
    response = site.client.get(f"/dicom-web/studies/{study}/instances{query}",
                               headers={"Accept": "application/dicom+json"})
    assert response.status_code == 200, response.text
    return len(response.json()), response.headers.get("warning", "")


def test_qido_returns_at_most_the_maximum_and_says_it_was_cut(fuzz_site: FuzzSite, study: str) -> None:
    count, warning = qido(fuzz_site, study)
    assert count == 50
    assert warning.startswith("299 ") and "exceeded the maximum supported by the server" in warning
    assert qido(fuzz_site, study, "?limit=1000")[0] == 50  # a larger limit is the maximum
    assert "exceeded" in qido(fuzz_site, study, "?limit=1000")[1]


def test_qido_pages_with_offset_and_limit(fuzz_site: FuzzSite, study: str) -> None:
    assert qido(fuzz_site, study, "?limit=20") == (20, "")  # the client's own page: no warning
    assert qido(fuzz_site, study, "?offset=50") == (10, "")  # the rest: complete
    assert qido(fuzz_site, study, "?limit=20&offset=40") == (20, "")
    uids: set[str] = set()
    for offset in range(0, 60, 25):
        response = fuzz_site.client.get(f"/dicom-web/studies/{study}/instances?limit=25&offset={offset}")
        uids |= {item["00080018"]["Value"][0] for item in response.json()}
    assert len(uids) == 60  # pages cover every match once


def test_cfind_stops_at_the_maximum_with_out_of_resources(fuzz_site: FuzzSite, study: str) -> None:
    assoc = associate(fuzz_site.dimse.port, [STUDY_FIND])
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "IMAGE"
    identifier.StudyInstanceUID = study
    identifier.SeriesInstanceUID = ""
    identifier.SOPInstanceUID = ""
    try:
        responses = list(assoc.send_c_find(identifier, STUDY_FIND))
    finally:
        assoc.release()
    statuses = [int(status.Status) for status, _ in responses]
    assert statuses == [0xFF00] * 50 + [0xA700]
    assert "more than 50 matches" in responses[-1][0].ErrorComment


def test_findscu_shows_the_refusal(fuzz_site: FuzzSite, study: str) -> None:
    result = subprocess.run(["findscu", "-v", "-S", "-k", "QueryRetrieveLevel=IMAGE", "-k", f"StudyInstanceUID={study}",
                             "-k", "SOPInstanceUID", "-aec", AE_TITLE, HOST, str(fuzz_site.dimse.port)],
                            capture_output=True, text=True, timeout=30)
    final = [line for line in result.stderr.splitlines() if "Final Find Response" in line]
    assert final and "Out of Resources" in final[0].replace("OutOfResources", "Out of Resources"), \
        result.stderr[-2000:]
    assert result.stderr.count("Find Response: ") == 50


# -- PDUs ---------------------------------------------------------------------------------------------

def read_pdu(sock: socket.socket) -> tuple[int, bytes]:
    header = b""
    while len(header) < 6:
        chunk = sock.recv(6 - len(header))
        assert chunk, "the connection closed without a PDU"
        header += chunk
    pdu_type, _, length = struct.unpack(">BBI", header)
    body = b""
    while len(body) < length:
        body += sock.recv(length - len(body))
    return pdu_type, body


def test_the_associate_ac_offers_the_configured_pdu_size(fuzz_site: FuzzSite) -> None:
    with socket.create_connection((HOST, fuzz_site.dimse.port), timeout=10) as sock:
        sock.sendall(ASSOCIATE_RQ)
        pdu_type, body = read_pdu(sock)
    assert pdu_type == 0x02
    at = body.index(b"\x51\x00\x00\x04")  # User Information: Maximum Length sub-item
    assert struct.unpack(">I", body[at + 4:at + 8])[0] == LIMITS["dicom_max_pdu_bytes"]


def test_a_pdu_announcing_more_than_the_limit_is_aborted_at_once(fuzz_site: FuzzSite) -> None:
    before = held(fuzz_site)
    with socket.create_connection((HOST, fuzz_site.dimse.port), timeout=10) as sock:
        sock.sendall(ASSOCIATE_RQ)
        assert read_pdu(sock)[0] == 0x02
        started = time.monotonic()
        sock.sendall(pdu_header(0x04, LIMITS["dicom_max_pdu_bytes"] + 1))  # and no body
        pdu_type, body = read_pdu(sock)
    assert pdu_type == 0x07 and body[2] == 2  # A-ABORT from the service provider
    assert time.monotonic() - started < 2  # not after waiting for the announced bytes
    assert held(fuzz_site) == before
    fuzz_site.check_echo()


def test_an_associate_rq_announcing_gigabytes_is_aborted(fuzz_site: FuzzSite) -> None:
    with socket.create_connection((HOST, fuzz_site.dimse.port), timeout=10) as sock:
        sock.sendall(pdu_header(0x01, 2**32 - 1) + ASSOCIATE_RQ[6:])
        assert read_pdu(sock)[0] == 0x07
    fuzz_site.check_echo()


def test_junk_connections_do_not_hold_association_slots(fuzz_site: FuzzSite) -> None:
    """Regression (found by fuzzing): a connection that sent junk and closed held its slot of
    dicom.max_associations (32) for acse_timeout, so 32 junk connections locked the door."""
    for n in range(40):
        with socket.create_connection((HOST, fuzz_site.dimse.port), timeout=10) as sock:
            sock.sendall(bytes([n % 256]) * (n % 7))
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(4096):
                pass
    started = time.monotonic()
    fuzz_site.check_echo()
    assert time.monotonic() - started < TIMEOUT


def test_after_a_refused_pdu_the_rest_is_not_read(fuzz_site: FuzzSite, caplog: pytest.LogCaptureFixture) -> None:
    """Regression (found by fuzzing): pynetdicom went on decoding the peer's bytes after the
    A-ABORT, six at a time, one warning each."""
    with socket.create_connection((HOST, fuzz_site.dimse.port), timeout=10) as sock:
        sock.sendall(pdu_header(0x09, 10) + bytes(range(256)) * 200)
        sock.shutdown(socket.SHUT_WR)
        assert read_pdu(sock)[0] == 0x07
    time.sleep(0.2)
    refusals = [r for r in caplog.records if r.name == "twinpacs.dimse.transport"]
    assert len(refusals) == 1 and "type 0x09" in refusals[0].getMessage()


def test_an_undecodable_dimse_message_is_aborted_at_once(fuzz_site: FuzzSite) -> None:
    """Regression (found by fuzzing): a command set without Command Field made pynetdicom's
    decoder raise in the DUL thread, which died; the association hung until its timeout."""
    element = struct.pack("<HHI", 0x0000, 0x0002, 6) + b"1.2.3\0"  # Affected SOP Class UID only
    pdv = struct.pack(">IBB", len(element) + 2, 1, 0x03) + element  # context 1, command, last fragment
    with socket.create_connection((HOST, fuzz_site.dimse.port), timeout=10) as sock:
        sock.sendall(ASSOCIATE_RQ)
        assert read_pdu(sock)[0] == 0x02
        started = time.monotonic()
        sock.sendall(pdu_header(0x04, len(pdv)) + pdv)
        assert read_pdu(sock)[0] == 0x07
    assert time.monotonic() - started < 2
    fuzz_site.check_echo()


@pytest.mark.parametrize("items", [
    struct.pack(">IBB", 40, 1, 0x03) + b"short",  # a PDV item running past its P-DATA-TF
    struct.pack(">IB", 1, 1),  # a PDV item without its message control header
])
def test_a_malformed_pdv_item_is_aborted_at_once(fuzz_site: FuzzSite, items: bytes) -> None:
    with socket.create_connection((HOST, fuzz_site.dimse.port), timeout=10) as sock:
        sock.sendall(ASSOCIATE_RQ)
        assert read_pdu(sock)[0] == 0x02
        started = time.monotonic()
        sock.sendall(pdu_header(0x04, len(items)) + items)
        pdu_type, body = read_pdu(sock)
    assert pdu_type == 0x07 and body[2] == 2  # A-ABORT from the service provider
    assert time.monotonic() - started < 2
    fuzz_site.check_echo()


def test_stores_larger_than_one_pdu_still_work(fuzz_site: FuzzSite, tmp_path_factory: pytest.TempPathFactory) -> None:
    ds = make_study(StudySpec(patient_id="BIGPDU", rows=256, columns=256, seed=8))[0]  # 128 kB > 64 kB PDUs
    path = tmp_path_factory.mktemp("big") / "big.dcm"
    path.write_bytes(encode(ds))
    assoc = associate(fuzz_site.dimse.port, [CTImageStorage])
    try:
        assert assoc.send_c_store(ds).Status == 0  # pynetdicom fragments to the offered size
    finally:
        assoc.release()
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.1234.99.1"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    path.write_bytes(encode(ds))
    result = subprocess.run(["storescu", "-xe", "-aec", AE_TITLE, HOST, str(fuzz_site.dimse.port), str(path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr[-2000:]
    assert fuzz_site.site.index.current_hash(ds.SOPInstanceUID) is not None


def test_a_silent_association_is_released_after_the_timeout(fuzz_site: FuzzSite) -> None:
    ae = AE(ae_title="IDLE")
    ae.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian])
    assoc = ae.associate(HOST, fuzz_site.dimse.port, ae_title=AE_TITLE)
    assert assoc.is_established
    deadline = time.monotonic() + TIMEOUT + 10
    while assoc.is_established and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not assoc.is_established  # the server ended it: network_timeout = request_timeout_s


# -- HL7 ----------------------------------------------------------------------------------------------

def test_an_hl7_message_over_the_limit_gets_ar_and_the_connection_serves_on(fuzz_site: FuzzSite) -> None:
    with Mllp(fuzz_site.hl7.port) as client:
        ack = client.send(frame(adt("BIG") + "\rNTE|1||" + "x" * LIMITS["hl7_max_message_bytes"]))
        assert ack is not None and b"MSA|AR|" in ack and b"longer than 16384 bytes" in ack
        assert b"MSA|AA|NEXT" in (client.send(frame(adt("NEXT"))) or b"")


def test_an_unfinished_hl7_message_closes_the_connection_after_the_timeout(fuzz_site: FuzzSite) -> None:
    with Mllp(fuzz_site.hl7.port) as client:
        client.sock.sendall(b"\x0b" + adt("HALF").encode()[:40])
        started = time.monotonic()
        assert client.read_ack() is None  # closed, no ACK: nothing of it was applied
        assert TIMEOUT <= time.monotonic() - started < TIMEOUT + 5
    fuzz_site.check_hl7()


def test_an_idle_hl7_connection_is_kept_between_messages(fuzz_site: FuzzSite) -> None:
    with Mllp(fuzz_site.hl7.port) as client:
        assert b"MSA|AA|" in (client.send(frame(adt("IDLE1"))) or b"")
        time.sleep(TIMEOUT + 0.5)
        assert b"MSA|AA|IDLE2" in (client.send(frame(adt("IDLE2"))) or b"")


def test_a_json_body_over_the_limit_is_refused_and_changes_nothing(fuzz_site: FuzzSite) -> None:
    """The API's JSON bodies are bounded too (limits.max_json_bytes, 1 MiB by default)."""
    before = fuzz_site.client.get("/api/notices").json()
    huge = b'{"title": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    answer = fuzz_site.client.post("/api/notices", content=huge, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413 and "limits.max_json_bytes" in answer.text
    assert fuzz_site.client.get("/api/notices").json() == before
    fuzz_site.check_http()


def test_a_nul_character_in_json_text_is_refused_with_its_place(fuzz_site: FuzzSite) -> None:
    """No store can keep a NUL (PostgreSQL refuses it): refused at the door with a 400 naming the field."""
    before = fuzz_site.client.get("/api/notices").json()
    answer = fuzz_site.client.post("/api/notices", json={"severity": "warning", "title": "down\x00time"})
    assert answer.status_code == 400 and "title" in answer.text and "NUL" in answer.text
    assert fuzz_site.client.get("/api/notices").json() == before
