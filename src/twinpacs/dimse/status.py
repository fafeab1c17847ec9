"""DIMSE status values and the one place where errors become status datasets (PS3.7 Annex C)."""

from __future__ import annotations

import logging

from pydicom.dataset import Dataset

from ..errors import TwinpacsError

log = logging.getLogger(__name__)

SUCCESS = 0x0000
PENDING = 0xFF00
CANCEL = 0xFE00
WARNING_COERCION = 0xB000  # C-STORE warning; used for "another version already held"
UNABLE_TO_PROCESS = 0xC000
OUT_OF_RESOURCES = 0xA700
NO_SUCH_ACTION = 0x0123  # DIMSE-N statuses, PS3.7 C.4
PROCESSING_FAILURE = 0x0110
NO_SUCH_OBJECT_INSTANCE = 0x0112  # Storage Commitment FailureReason, PS3.4 J.3.2.1.1
CLASS_INSTANCE_CONFLICT = 0x0119
MISSING_ATTRIBUTE = 0x0120
INVALID_ATTRIBUTE_VALUE = 0x0106

_COMMENT_LENGTH = 64  # ErrorComment is LO


def status(code: int, comment: str = "") -> Dataset:
    """A status dataset; pynetdicom copies its elements into the response primitive."""
    ds = Dataset()
    ds.Status = code
    if comment:
        ds.ErrorComment = comment[:_COMMENT_LENGTH]
    return ds


def failure(exc: BaseException, operation: str) -> Dataset:
    """Map any exception onto a failure status; never lets a traceback reach the peer."""
    if isinstance(exc, TwinpacsError):
        log.info("%s refused: %s", operation, exc.message)
        return status(exc.dimse_status, exc.message)
    if isinstance(exc, OSError):
        log.error("%s failed: %s", operation, exc, exc_info=exc)
        return status(OUT_OF_RESOURCES, "storage unavailable")
    log.error("%s failed unexpectedly", operation, exc_info=exc)
    return status(UNABLE_TO_PROCESS, f"internal error: {type(exc).__name__}")
