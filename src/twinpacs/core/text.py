"""Free text people and systems send (notice titles, incident reports, API fields): the one rule
every store needs, whatever the engine. PostgreSQL cannot keep a NUL character, and no form,
message or report needs one, so it is refused at the door instead of failing in the index."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput


def check_text(**fields: str) -> None:
    for name, value in fields.items():
        if "\x00" in value:
            raise InvalidInput(f"{name} contains a NUL character")


def check_json_text(value: Any, where: str = "the request body") -> None:
    """Every string in a decoded JSON value, keys included."""
    if isinstance(value, str):
        check_text(**{where: value})
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(**{where: key})
            check_json_text(item, f"{where}.{key}")
    elif isinstance(value, list):
        for number, item in enumerate(value):
            check_json_text(item, f"{where}[{number}]")
