"""Associations whose reactors wake on work (dimse/reactor.py): threads sharing one association."""

from __future__ import annotations

import io
import threading
from pathlib import Path

from pydicom import dcmread
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from pynetdicom import build_context
from pynetdicom.dimse_primitives import C_STORE

from twinpacs.synthetic import write_study

from .conftest import StartServer, association, dataset_bytes, spec

THREADS, EACH = 4, 5


def store_request(message_id: int, path: Path) -> C_STORE:
    request = C_STORE()
    request.MessageID = message_id
    request.AffectedSOPClassUID = CTImageStorage
    request.AffectedSOPInstanceUID = dcmread(path, stop_before_pixels=True).SOPInstanceUID
    request.DataSet = io.BytesIO(dataset_bytes(path.read_bytes()))
    return request


def test_messages_sent_from_several_threads_arrive_whole(start_server: StartServer, tmp_path: Path) -> None:
    """Each C-STORE request here spans three PDUs; sent by four threads at once on one
    association, no PDU of one may land between those of another (the site would read a data
    set under the wrong command and abort), and every request gets its own success."""
    server = start_server(limits={"dicom_max_pdu_bytes": 4096})
    files = write_study(spec(instances_per_series=THREADS * EACH, rows=64, columns=64), tmp_path)
    requests = [store_request(i, path) for i, path in enumerate(files, start=1)]
    with association(server.port, [build_context(CTImageStorage, ExplicitVRLittleEndian)]) as assoc:
        assoc.dimse_timeout = 5  # a garbled message gets the association aborted: no answer
        context_id = assoc.accepted_contexts[0].context_id
        assoc._reactor_checkpoint.clear()  # as send_* do: the responses are ours to take

        def send(mine: list[C_STORE]) -> None:
            for request in mine:
                assoc.dimse.send_msg(request, context_id)

        senders = [threading.Thread(target=send, args=(requests[i::THREADS],)) for i in range(THREADS)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
        responses = []
        while len(responses) < len(requests) and (response := assoc.dimse.get_msg(block=True)[1]) is not None:
            responses.append(response)
        assoc._reactor_checkpoint.set()
    assert sorted((r.MessageIDBeingRespondedTo, r.Status) for r in responses) == \
        [(i, 0x0000) for i in range(1, len(files) + 1)]
    assert server.site.index.counts()["instances"] == len(files)
