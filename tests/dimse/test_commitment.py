"""Storage Commitment Push Model as SCP, with a pynetdicom modality (DCMTK has no such client)."""

from __future__ import annotations

import queue
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import MRImageStorage, generate_uid
from pynetdicom import AE, build_context, evt
from pynetdicom.association import Association
from pynetdicom.events import Event
from pynetdicom.sop_class import StorageCommitmentPushModel

from twinpacs.dimse import DimseServer
from twinpacs.dimse.uids import (
    StorageCommitmentPushModelInstance as WELL_KNOWN_INSTANCE,
)
from twinpacs.synthetic import write_study

from .conftest import HOST, StartServer, association, listen, spec, store_files

REPORT_TIMEOUT = 10.0


class Modality:
    """Requests commitment and takes the N-EVENT-REPORT, on its own listener or on the
    association it asked on; notes the order in which response and report arrive."""

    def __init__(self, ae_title: str) -> None:
        self.ae_title = ae_title
        self.reports: queue.Queue[tuple[int, Dataset, Association]] = queue.Queue()
        self.arrivals: list[str] = []
        self.report_sockets_nodelay: list[bool] = []
        self.site: DimseServer | None = None
        ae = AE(ae_title=ae_title)
        ae.add_supported_context(StorageCommitmentPushModel)
        self._listener = listen(ae, [(evt.EVT_N_EVENT_REPORT, self.on_report)])

    @property
    def address(self) -> str:
        return f"{HOST}:{self._listener.server_address[1]}"

    def on_report(self, event: Event) -> tuple[int, None]:
        self.arrivals.append("report")
        if self.site is not None:  # the site's end of the report association, now open
            self.report_sockets_nodelay += [
                a.dul.socket.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
                for a in self.site.ae.active_associations if a.is_requestor]
        self.reports.put((int(event.event_type), event.event_information, event.assoc))
        return 0x0000, None

    def on_message(self, event: Event) -> None:
        if type(event.message).__name__ == "N_ACTION_RSP":
            self.arrivals.append("response")

    def request(self, site: DimseServer, info: Dataset, action: int = 1,
                wait_here: bool = False) -> tuple[Dataset, tuple[int, Dataset, Association] | None]:
        """N-ACTION; with `wait_here`, keep the association open until the report came on it."""
        handlers = [(evt.EVT_DIMSE_RECV, self.on_message), (evt.EVT_N_EVENT_REPORT, self.on_report)]
        with association(site.port, [build_context(StorageCommitmentPushModel)], ae_title=self.ae_title,
                         evt_handlers=handlers) as assoc:
            status, _ = assoc.send_n_action(info, action, StorageCommitmentPushModel, WELL_KNOWN_INSTANCE)
            report = self.reports.get(timeout=REPORT_TIMEOUT) if wait_here else None
        return status, report

    def report(self) -> tuple[int, Dataset, Association]:
        return self.reports.get(timeout=REPORT_TIMEOUT)

    def shutdown(self) -> None:
        self._listener.shutdown()


@pytest.fixture
def modality() -> Iterator[Modality]:
    modality = Modality("MODALITY")
    yield modality
    modality.shutdown()


@pytest.fixture
def site(start_server: StartServer, modality: Modality) -> DimseServer:
    site = start_server({"MODALITY": modality.address})
    modality.site = site
    return site


@pytest.fixture
def held(site: DimseServer, tmp_path: Path) -> list[Dataset]:
    files = write_study(spec(), tmp_path / "sent")
    store_files(site, files)
    return [dcmread(p, stop_before_pixels=True) for p in files]


def commitment_request(*references: tuple[str, str], transaction: str | None = None) -> Dataset:
    info = Dataset()
    info.TransactionUID = transaction or generate_uid()
    info.ReferencedSOPSequence = [_item(sop_class, sop_instance) for sop_class, sop_instance in references]
    return info


def _item(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = sop_class, sop_instance
    return item


def _refs(sequence: list[Dataset]) -> list[tuple[str, str]]:
    return [(item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID) for item in sequence]


def test_all_held_is_reported_committed_on_a_new_association(
    site: DimseServer, modality: Modality, held: list[Dataset], caplog: pytest.LogCaptureFixture,
) -> None:
    references = [(ds.SOPClassUID, ds.SOPInstanceUID) for ds in held]
    info = commitment_request(*references)
    status, _ = modality.request(site, info)
    assert status.Status == 0x0000
    event_type, report, report_assoc = modality.report()
    assert event_type == 1
    assert report.TransactionUID == info.TransactionUID
    assert _refs(report.ReferencedSOPSequence) == references
    assert "FailedSOPSequence" not in report
    assert report_assoc.is_acceptor  # it came to the modality's own listener
    assert modality.arrivals == ["response", "report"]
    assert modality.report_sockets_nodelay and all(modality.report_sockets_nodelay)
    site.shutdown()  # waits for the report job, which checks the modality's answer
    assert not [r for r in caplog.records if r.name.startswith("twinpacs") and r.levelname == "ERROR"]


def test_missing_and_mismatched_instances_are_reported_failed(
    site: DimseServer, modality: Modality, held: list[Dataset],
) -> None:
    good, wrong_class = held
    missing = generate_uid()
    info = commitment_request((good.SOPClassUID, good.SOPInstanceUID), (MRImageStorage, wrong_class.SOPInstanceUID),
                              (good.SOPClassUID, missing))
    assert modality.request(site, info)[0].Status == 0x0000
    event_type, report, _ = modality.report()
    assert event_type == 2
    assert _refs(report.ReferencedSOPSequence) == [(good.SOPClassUID, good.SOPInstanceUID)]
    failed = [(item.ReferencedSOPInstanceUID, item.FailureReason) for item in report.FailedSOPSequence]
    assert failed == [(wrong_class.SOPInstanceUID, 0x0119), (missing, 0x0112)]


def test_an_unlisted_requester_gets_the_report_on_its_own_association(
    site: DimseServer, held: list[Dataset],
) -> None:
    roaming = Modality("ROAMING")  # no address in move_destinations
    try:
        info = commitment_request((held[0].SOPClassUID, held[0].SOPInstanceUID))
        status, report = roaming.request(site, info, wait_here=True)
    finally:
        roaming.shutdown()
    assert status.Status == 0x0000 and report is not None
    event_type, event_info, report_assoc = report
    assert (event_type, event_info.TransactionUID) == (1, info.TransactionUID)
    assert report_assoc.is_requestor  # the association the modality opened
    assert roaming.arrivals == ["response", "report"]


def _without(info: Dataset, keyword: str) -> Dataset:
    delattr(info, keyword)
    return info


CT = ("1.2.840.10008.5.1.4.1.1.2", "1.2.3")


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # the client is told to send one
@pytest.mark.parametrize(("action", "build", "status"), [
    (2, lambda: commitment_request(CT), 0x0123),
    (1, lambda: _without(commitment_request(CT), "TransactionUID"), 0x0120),
    (1, lambda: _without(commitment_request(CT), "ReferencedSOPSequence"), 0x0120),
    (1, commitment_request, 0x0106),
    (1, lambda: commitment_request(CT, transaction="1.02"), 0x0106),
], ids=["unknown action", "no transaction", "no references", "empty references", "bad transaction uid"])
def test_bad_requests_are_refused(
    site: DimseServer, modality: Modality, action: int, build: Callable[[], Dataset], status: int,
) -> None:
    response, _ = modality.request(site, build(), action=action)
    assert response.Status == status
