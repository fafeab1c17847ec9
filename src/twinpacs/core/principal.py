"""Who is asking: the identity every door attaches to a request before the domain sees it.
The web door sets it from a session cookie or a bearer token, the DICOM door from the calling
AE title and the peer's address; the access trail records it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# "application": an HL7 sending application (MSH-3^MSH-4)
Kind = Literal["user", "token", "ae", "anonymous", "local", "application"]


@dataclass(frozen=True)
class Principal:
    name: str  # user name, service account name, calling AE title, or "anonymous"
    role: str  # radiologist | radiographer | administrator | service | dicom | anonymous | operator | hl7
    kind: Kind
    address: str = ""  # the peer's IP address ("" for a local command)


ANONYMOUS = Principal("anonymous", "anonymous", "anonymous")
