"""C-GET / C-MOVE outside the happy path, driven by pynetdicom where DCMTK cannot observe it:
unknown destinations, bad identifiers, no match, C-CANCEL, outbound sockets."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, build_context, build_role, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import (
    CTImageStorage,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)
from pynetdicom.transport import ThreadedAssociationServer

from twinpacs.dimse import DimseServer
from twinpacs.dimse.scu import identifier
from twinpacs.dimse.server import STORAGE_TRANSFER_SYNTAXES
from twinpacs.synthetic import write_study

from .conftest import (
    HOST,
    StartServer,
    association,
    dataset_bytes,
    listen,
    spec,
    store_files,
)

GET = StudyRootQueryRetrieveInformationModelGet
MOVE = StudyRootQueryRetrieveInformationModelMove


class Spy:
    """A pynetdicom storage SCP that keeps what it receives and notes, while each C-STORE
    is in progress, whether the sending site's outbound sockets have Nagle off."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.nodelay: list[bool] = []
        self.server_under_test: DimseServer | None = None
        ae = AE(ae_title="SPY")
        ae.add_supported_context(CTImageStorage, STORAGE_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        self._server: ThreadedAssociationServer = listen(ae, [(evt.EVT_C_STORE, self.on_store)])

    @property
    def address(self) -> str:
        return f"{HOST}:{self._server.server_address[1]}"

    def on_store(self, event: Event) -> int:
        self.received.append(event.encoded_dataset())
        if self.server_under_test is not None:
            outbound = [a for a in self.server_under_test.ae.active_associations if a.is_requestor]
            self.nodelay += [a.dul.socket.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
                             for a in outbound]
        return 0x0000

    def shutdown(self) -> None:
        self._server.shutdown()


@pytest.fixture
def spy() -> Iterator[Spy]:
    spy = Spy()
    yield spy
    spy.shutdown()


@pytest.fixture
def moving(start_server: StartServer, spy: Spy, tmp_path: Path) -> tuple[DimseServer, list[Path]]:
    server = start_server({"SPY": spy.address})
    spy.server_under_test = server
    files = write_study(spec(instances_per_series=3), tmp_path / "sent")
    store_files(server, files)
    return server, files


def move(server: DimseServer, identifier: Dataset, destination: str = "SPY") -> list[tuple[Dataset, Any]]:
    with association(server.port, [build_context(MOVE)]) as assoc:
        return list(assoc.send_c_move(identifier, destination, MOVE))


def test_c_move_sends_stored_bytes_over_sockets_with_nagle_off(
    moving: tuple[DimseServer, list[Path]], spy: Spy,
) -> None:
    server, files = moving
    responses = move(server, identifier("STUDY", StudyInstanceUID=_study_uid(files)))
    assert responses[-1][0].Status == 0x0000
    assert sorted(dataset_bytes(d) for d in spy.received) == sorted(dataset_bytes(p.read_bytes()) for p in files)
    assert spy.nodelay and all(spy.nodelay)


def test_c_move_to_an_unknown_destination_is_refused(moving: tuple[DimseServer, list[Path]], spy: Spy) -> None:
    server, files = moving
    ((status, _),) = move(server, identifier("STUDY", StudyInstanceUID=_study_uid(files)), destination="NOWHERE")
    assert status.Status == 0xA801
    assert not spy.received


def test_c_move_with_a_bad_identifier_fails_with_a_comment(moving: tuple[DimseServer, list[Path]], spy: Spy) -> None:
    server, _ = moving
    status, _ = move(server, identifier("SERIES", StudyInstanceUID="1.2.3"))[-1]  # no SeriesInstanceUID
    assert status.Status == 0xA900 and "SeriesInstanceUID" in status.ErrorComment
    assert not spy.received


def get(server: DimseServer, identifier: Dataset, model: str = GET,
        on_store: Any = None) -> tuple[list[tuple[Dataset, Any]], list[bytes]]:
    """C-GET as a pynetdicom SCU; the responses and the data sets received."""
    received: list[bytes] = []

    def store(event: Event) -> int:
        received.append(event.encoded_dataset())
        if on_store:
            on_store(event)
        return 0x0000

    # One context per syntax, so every stored syntax can come back as it is.
    contexts = [build_context(model), *(build_context(CTImageStorage, ts) for ts in STORAGE_TRANSFER_SYNTAXES)]
    with association(server.port, contexts, ext_neg=[build_role(CTImageStorage, scp_role=True)],
                     evt_handlers=[(evt.EVT_C_STORE, store)]) as assoc:
        return list(assoc.send_c_get(identifier, model)), received


@pytest.fixture
def stored(server: DimseServer, tmp_path: Path) -> list[Path]:
    files = write_study(spec(instances_per_series=4), tmp_path / "sent")
    store_files(server, files)
    return files


def _study_uid(files: list[Path]) -> str:
    return str(dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # the client is told to send one
@pytest.mark.parametrize(("model", "level", "keys", "words"), [
    (GET, "SERIES", {"StudyInstanceUID": "1.2.3"}, "SeriesInstanceUID"),
    (GET, "PATIENT", {"PatientID": "X"}, "PATIENT"),  # no patient level in the study root
    (PatientRootQueryRetrieveInformationModelGet, "PATIENT", {}, "PatientID"),
    (GET, "NOLEVEL", {"StudyInstanceUID": "1.2.3"}, "QueryRetrieveLevel"),
    (GET, "STUDY", {"StudyInstanceUID": "1.02.3"}, "UID"),
], ids=["no unique key", "patient level in study root", "no patient id", "unknown level", "bad uid"])
def test_c_get_with_a_bad_identifier_fails_with_a_comment(
    server: DimseServer, stored: list[Path], model: str, level: str, keys: dict[str, str], words: str,
) -> None:
    responses, received = get(server, identifier(level, **keys), model)
    status = responses[-1][0]
    assert status.Status == 0xA900 and words in status.ErrorComment
    assert not received


def test_c_get_matching_nothing_succeeds_with_nothing(server: DimseServer, stored: list[Path]) -> None:
    responses, received = get(server, identifier("STUDY", StudyInstanceUID="1.2.3.4"))
    assert [r[0].Status for r in responses] == [0x0000]
    assert responses[-1][0].NumberOfCompletedSuboperations == 0 and not received


def test_c_cancel_stops_a_c_get(server: DimseServer, stored: list[Path]) -> None:
    def cancel_after_the_first(event: Event) -> None:
        # Sent before this C-STORE's response, so the server sees it before the next sub-operation.
        event.assoc.send_c_cancel(1, query_model=GET)

    responses, received = get(server, identifier("STUDY", StudyInstanceUID=_study_uid(stored)),
                              on_store=cancel_after_the_first)
    assert responses[-1][0].Status == 0xFE00
    assert len(received) == 1 < len(stored)


def test_a_store_without_files_is_sent_from_its_bytes(
    server: DimseServer, stored: list[Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server.site.archive, "path", lambda instance: None)
    responses, received = get(server, identifier("STUDY", StudyInstanceUID=_study_uid(stored)))
    assert responses[-1][0].Status == 0x0000 and len(received) == len(stored)


def test_retrieval_sends_the_file_not_a_re_encoding(server: DimseServer, tmp_path: Path) -> None:
    """A group length element survives only if the stored bytes are sent as they are:
    pydicom drops (gggg,0000) for groups above 6 whenever it encodes a data set."""
    path = write_study(spec(instances_per_series=1), tmp_path / "sent")[0]
    data = path.read_bytes()
    start = len(data) - len(dataset_bytes(data))
    group_length = struct.pack("<HH2sHI", 0x0008, 0x0000, b"UL", 4, 0)  # value unchecked by anyone
    with_group_length = data[:start] + group_length + data[start:]
    server.site.archive.store(with_group_length, source="TEST")
    _, received = get(server, identifier("STUDY", StudyInstanceUID=_study_uid([path])))
    assert [dataset_bytes(r) for r in received] == [dataset_bytes(with_group_length)]
