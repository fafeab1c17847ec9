"""Storage Commitment as requester (SCU, PS3.4 J.3.3): the N-EVENT-REPORT for a transaction
may come back on the association that asked, or on a new one the peer opens to this site's
DICOM listener (Orthanc does this). Both routes hand it here, to whoever waits for that
Transaction UID."""

from __future__ import annotations

import queue
import threading

from pydicom.dataset import Dataset
from pynetdicom.events import Event

from .status import SUCCESS


class CommitmentReports:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, queue.Queue[Dataset]] = {}

    def expect(self, transaction_uid: str) -> queue.Queue[Dataset]:
        """Register before sending the N-ACTION, so that an early report is not lost."""
        with self._lock:
            return self._waiting.setdefault(transaction_uid, queue.Queue(maxsize=1))

    def forget(self, transaction_uid: str) -> None:
        with self._lock:
            self._waiting.pop(transaction_uid, None)

    def on_report(self, event: Event) -> tuple[int, None]:
        """EVT_N_EVENT_REPORT handler. A report nobody waits for (late, after a timeout) is
        still acknowledged: the attempt that asked was recorded as an error and is retried."""
        info = event.event_information
        with self._lock:
            waiting = self._waiting.get(str(info.get("TransactionUID", "")))
        if waiting is not None and not waiting.full():
            waiting.put(info)
        return SUCCESS, None
