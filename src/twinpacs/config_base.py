"""What every configuration section shares: the base model (unknown keys are errors) and the
checks of values that several sections take (AE titles, host:port)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # PS3.5 AE VR: no backslash, ≤16


def check_ae_title(value: str) -> str:
    stripped = value.strip()
    if not _AE_TITLE.match(value) or not stripped:
        raise ValueError(f"{value!r} is not a valid AE title (1-16 printable characters, no backslash)")
    return stripped


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")




def parse_host_port(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port")
    return host.strip("[]"), int(port)
