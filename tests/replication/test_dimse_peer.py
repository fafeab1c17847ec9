"""Replication to archives reached over DIMSE: confirmed only through Storage Commitment,
otherwise 'unverified'; and Storage Commitment to modalities that waits for the peer site."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import StorageCommitmentPushModel

from tests.dimse.conftest import Pki, listen, make_pki
from tests.dimse.test_commitment import Modality, commitment_request
from twinpacs.dimse import start_dimse
from twinpacs.dimse.server import STORAGE_TRANSFER_SYNTAXES
from twinpacs.dimse.uids import StorageCommitmentPushModelInstance

from .conftest import HOST, Sites, free_port, held, objects, rows, states, twinpacs_peer, wait_for


class StorageScp:
    """Another vendor's archive: takes C-STOREs; with `commits`, also Storage Commitment,
    reporting on the requester's association once its N-ACTION answer has gone out."""

    def __init__(self, commits: bool) -> None:
        self.received: dict[str, Dataset] = {}
        self._requests: dict[Any, Dataset] = {}
        ae = AE(ae_title="VENDOR")
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, STORAGE_TRANSFER_SYNTAXES)
        handlers: list[Any] = [(evt.EVT_C_STORE, self.on_store)]
        if commits:
            ae.add_supported_context(StorageCommitmentPushModel)
            handlers += [(evt.EVT_N_ACTION, self.on_action), (evt.EVT_DIMSE_SENT, self.on_sent)]
        self.server = listen(ae, handlers)
        self.port = int(self.server.server_address[1])

    def on_store(self, event: Event) -> int:
        self.received[str(event.dataset.SOPInstanceUID)] = event.dataset
        return 0x0000

    def on_action(self, event: Event) -> tuple[int, None]:
        self._requests[event.assoc] = event.action_information
        return 0x0000, None

    def on_sent(self, event: Event) -> None:
        if type(event.message).__name__ == "N_ACTION_RSP" and event.assoc in self._requests:
            info = self._requests.pop(event.assoc)
            threading.Thread(target=self._report, args=(event.assoc, info), daemon=True).start()

    def _report(self, assoc: Any, request: Dataset) -> None:
        report = Dataset()
        report.TransactionUID = request.TransactionUID
        report.ReferencedSOPSequence = [i for i in request.ReferencedSOPSequence
                                        if str(i.ReferencedSOPInstanceUID) in self.received]
        assoc.send_n_event_report(report, 1, StorageCommitmentPushModel, StorageCommitmentPushModelInstance)


@pytest.fixture
def vendor(request: pytest.FixtureRequest) -> Iterator[StorageScp]:
    scp = StorageScp(commits=request.param)
    yield scp
    scp.server.shutdown()


def dimse_peer(port: int, commitment: bool, ae_title: str = "VENDOR") -> dict[str, Any]:
    return {"name": "V", "kind": "dimse", "ae_title": ae_title, "host": HOST, "port": port,
            "storage_commitment": commitment}


@pytest.mark.parametrize(("vendor", "ask", "outcome"), [
    (False, False, "unverified"),  # sent; nothing can confirm it
    (True, True, "confirmed"),  # Storage Commitment said so
], indirect=["vendor"], ids=["no-commitment", "commitment"])
def test_dimse_peer_is_confirmed_only_by_storage_commitment(
    sites: Sites, vendor: StorageScp, ask: bool, outcome: str,
) -> None:
    a = sites.build("A", [dimse_peer(vendor.port, ask)])
    a.replication.start()  # type: ignore[union-attr]
    for data in objects(3, seed=20):
        a.archive.store(data, "TEST")
    wait_for(lambda: states(a) == {outcome: 3}, what=f"3 rows {outcome}")
    assert set(vendor.received) == set(held(a))


@pytest.mark.parametrize("vendor", [False], indirect=True)
def test_commitment_asked_of_a_peer_without_it_is_never_confirmed(sites: Sites, vendor: StorageScp) -> None:
    a = sites.build("A", [dimse_peer(vendor.port, True)])
    a.replication.start()  # type: ignore[union-attr]
    for data in objects(2, seed=21):
        a.archive.store(data, "TEST")
    wait_for(lambda: all(r["attempts"] >= 2 for r in rows(a)), what="two attempts each")
    assert states(a) == {"pending": 2}
    assert all("storage commitment" in r["last_error"] for r in rows(a))


@pytest.mark.parametrize("new_association", [False, True], ids=["same-association", "to-our-listener"])
def test_a_twinpacs_site_as_dimse_peer_with_storage_commitment(sites: Sites, new_association: bool) -> None:
    """B reports on A's association, or (knowing A's address, as Orthanc always does) on a
    new association to A's own DICOM listener."""
    port_b = free_port()
    a = sites.build("A", [dimse_peer(port_b, True, ae_title="B")])
    listener_a = start_dimse(a)
    destinations = {"A": f"{HOST}:{listener_a.port}"} if new_association else {}
    dimse_b = start_dimse(sites.build("B", [], dicom={"port": port_b, "move_destinations": destinations}))
    b = dimse_b.site
    try:
        a.replication.start()  # type: ignore[union-attr]
        for data in objects(4, seed=22):
            a.archive.store(data, "TEST")
        wait_for(lambda: states(a) == {"confirmed": 4}, what="4 rows confirmed by B's commitment")
        assert held(b) == held(a)  # sent as stored: the same content hashes
    finally:
        dimse_b.shutdown()
        listener_a.shutdown()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_replication_and_its_commitment_report_over_dicom_tls(sites: Sites, pki: Pki) -> None:
    """A sends to B over TLS; B reports on a new TLS association to A's listener. Each
    listener requires a client certificate from the CA, so each side proves who it is."""
    node = {"tls_cert_file": pki.node_cert, "tls_key_file": pki.node_key, "tls_ca_file": pki.ca,
            "tls_require_client_cert": True, "tls_remote_ca_file": pki.ca}
    port_b = free_port()
    a = sites.build("A", [{**dimse_peer(port_b, True, ae_title="B"), "tls": True}], dicom=node)
    listener_a = start_dimse(a)
    dimse_b = start_dimse(sites.build("B", [], dicom={
        **node, "port": port_b, "move_destinations": {"A": f"{HOST}:{listener_a.port}"}, "tls_destinations": ["A"]}))
    try:
        a.replication.start()  # type: ignore[union-attr]
        for data in objects(3, seed=24):
            a.archive.store(data, "TEST")
        wait_for(lambda: states(a) == {"confirmed": 3}, what="3 rows confirmed by B's commitment over TLS")
        assert held(dimse_b.site) == held(a)
    finally:
        dimse_b.shutdown()
        listener_a.shutdown()


def test_a_peer_whose_certificate_is_not_trusted_gets_nothing_and_the_reason_shows(
        sites: Sites, pki: Pki) -> None:
    port_b = free_port()
    a = sites.build("A", [{**dimse_peer(port_b, False, ae_title="B"), "tls": True}],
                    dicom={"tls_remote_ca_file": pki.ca})
    dimse_b = start_dimse(sites.build("B", [], dicom={"port": port_b, "tls_cert_file": pki.rogue_cert,
                                                      "tls_key_file": pki.rogue_key}))
    try:
        a.replication.start()  # type: ignore[union-attr]
        for data in objects(2, seed=25):
            a.archive.store(data, "TEST")
        wait_for(lambda: all(r["attempts"] >= 1 for r in rows(a)), what="an attempt each")
        assert states(a) == {"pending": 2}
        assert all(f"no association with B@{HOST}:{port_b} over TLS (refused, TLS handshake failed"
                   in r["last_error"] for r in rows(a))
        assert held(dimse_b.site) == {}
    finally:
        dimse_b.shutdown()


@pytest.fixture
def modality() -> Iterator[Modality]:
    made = Modality("MODALITY")
    yield made
    made.shutdown()


def test_commitment_to_a_modality_waits_for_the_peer_site(sites: Sites, modality: Modality) -> None:
    port_b = free_port()
    a = sites.build("A", [twinpacs_peer("B", port_b)], dicom={"move_destinations": {"MODALITY": modality.address}},
                    commitment_waits_for_peer=True)
    dimse = start_dimse(a)
    try:
        a.replication.start()  # type: ignore[union-attr]
        refs = []
        for data in objects(2, seed=23):
            result = a.archive.store(data, "MODALITY")
            refs.append((result.sop_class_uid, result.sop_instance_uid))
        assert modality.request(dimse, commitment_request(*refs))[0].Status == 0x0000
        with pytest.raises(queue.Empty):  # B is down: the report is held back, not sent failed
            modality.reports.get(timeout=0.5)
        sites.serve(sites.build("B", [twinpacs_peer("A", free_port())]), port_b)
        event_type, report, _ = modality.report()
        assert event_type == 1 and "FailedSOPSequence" not in report
        assert states(a) == {"confirmed": 2}
    finally:
        dimse.shutdown()


def test_commitment_reports_what_the_peer_did_not_confirm_in_time(sites: Sites, modality: Modality) -> None:
    a = sites.build("A", [twinpacs_peer("B", free_port())], dicom={"move_destinations": {"MODALITY": modality.address}},
                    commitment_waits_for_peer=True, commitment_wait_s=0.3)
    dimse = start_dimse(a)
    try:
        (data,) = objects(1, seed=24)
        result = a.archive.store(data, "MODALITY")
        request = commitment_request((result.sop_class_uid, result.sop_instance_uid))
        assert modality.request(dimse, request)[0].Status == 0x0000
        event_type, report, _ = modality.report()
        assert event_type == 2
        assert [(i.ReferencedSOPInstanceUID, i.FailureReason) for i in report.FailedSOPSequence] == [
            (result.sop_instance_uid, 0x0110)]
    finally:
        dimse.shutdown()
