"""The HL7 v2 door: an MLLP listener taking ADT and orders from the RIS (see listener.py)."""

from __future__ import annotations

from .listener import Hl7Listener, start_hl7

__all__ = ["Hl7Listener", "start_hl7"]
