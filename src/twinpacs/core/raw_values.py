"""Values of raw elements as pydicom would convert them, read without pydicom.

pydicom converts a raw element through hooks, validators and value classes (UID, IS,
PersonName, MultiValue): ~30 µs an element, and the index reads 25 of them from every object
stored. For the VRs the indexed attributes have, the same conversion is done here on the
bytes, as text: one string per value, what str() gives of each value pydicom would produce.
Anything else (another VR, big endian, ISO 2022 escape sequences, bytes the character set
cannot decode, an IS that is no plain integer: where pydicom warns, repairs or refuses) gives
None, and the caller asks pydicom."""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable

from pydicom import config
from pydicom.charset import default_encoding
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.hooks import hooks, raw_element_value, raw_element_vr
from pydicom.tag import BaseTag

# A converter gets the value's bytes and the first encoding of the dataset's character set.
_Converter = Callable[[bytes, "str | None"], "list[str] | None"]
_ESC = b"\x1b"
_INTEGER = re.compile(r" *[+-]?[0-9]{1,15} *")  # 15 digits: exact as a float, so pydicom keeps an IS


def value_strings(ds: Dataset, tags: Iterable[BaseTag]) -> list[list[str] | None]:
    """For each tag, str() of each value pydicom gives the element ([] when it is empty or
    absent), or None when only pydicom can say."""
    return _strings(ds, tags, _CONVERTERS)


def uid_strings(ds: Dataset, tags: Iterable[BaseTag]) -> list[list[str] | None]:
    """value_strings for elements whose VR is UI; None for one of any other VR."""
    return _strings(ds, tags, _UID_ONLY)


def raw_uid_strings(raw: RawDataElement) -> list[str] | None:
    """uid_strings of an explicit VR element outside a dataset (the file meta's)."""
    return _element_strings(raw, raw.VR, _UID_ONLY, None) if _pydicom_reads_as_assumed() else None


def _strings(ds: Dataset, tags: Iterable[BaseTag], converters: dict[str, _Converter]) -> list[list[str] | None]:
    as_assumed = _pydicom_reads_as_assumed()
    encoding = _first_encoding(ds)
    results: list[list[str] | None] = []
    for tag in tags:
        raw = ds.get_item(tag, keep_deferred=True)
        if raw is None:
            results.append([])
        elif as_assumed and type(raw) is RawDataElement:
            results.append(_element_strings(raw, raw.VR or _dictionary_vr(tag), converters, encoding))
        else:  # converted already, or read with other settings: pydicom's value is the one
            results.append(None)
    return results


def _element_strings(
    raw: RawDataElement, vr: str | None, converters: dict[str, _Converter], encoding: str | None
) -> list[str] | None:
    convert = converters.get(vr or "")
    if convert is None or not raw.is_little_endian or (raw.value is None and raw.length):  # deferred
        return None
    return convert(raw.value, encoding) if raw.length else []


def _pydicom_reads_as_assumed() -> bool:
    """The conversions here are pydicom's with its default reading settings and hooks."""
    settings = config.settings
    return (
        settings.reading_validation_mode != config.RAISE
        and settings.writing_validation_mode != config.RAISE  # PN values are re-encoded on reading
        and not config.datetime_conversion
        and not config.use_IS_numpy
        and config.data_element_callback is None
        and hooks.raw_element_vr is raw_element_vr
        and hooks.raw_element_value is raw_element_value
    )


def _first_encoding(ds: Dataset) -> str | None:
    """The encoding pydicom decodes text with when no escape sequence switches it; None for a
    dataset not read by parse_part10 (its character set is then pydicom's to find)."""
    encodings = ds.original_character_set
    if not encodings:
        return None
    return encodings if isinstance(encodings, str) else encodings[0]


def _dictionary_vr(tag: BaseTag) -> str | None:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return None


def _split(value: bytes, encoding: str | None = None) -> list[str]:
    """pydicom's multi_string: the VRs of the default repertoire (CS, DA, TM, IS, UI)."""
    return value.decode(default_encoding).rstrip(" \x00").split("\\")


def _uid(value: bytes, encoding: str | None) -> list[str]:
    return [item.strip() for item in _split(value)]  # pydicom's UID() strips each value


def _integer_string(value: bytes, encoding: str | None) -> list[str] | None:
    items = _split(value)
    if not all(_INTEGER.fullmatch(item) or not item.strip() for item in items):
        return None
    return [item.strip() or item for item in items]  # IS keeps a blank value as it came


def _unsigned_short(value: bytes, encoding: str | None) -> list[str] | None:
    if len(value) % 2:
        return None
    return [str(number) for number in struct.unpack(f"<{len(value) // 2}H", value)]


def _decoded(value: bytes, encoding: str | None) -> str | None:
    """pydicom's decode_bytes where it is one plain decode: no escape sequence, decodable."""
    if encoding is None or _ESC in value:
        return None
    try:
        return value.decode(encoding)
    except (LookupError, UnicodeError):
        return None


def _text(value: bytes, encoding: str | None) -> list[str] | None:
    text = _decoded(value, encoding)
    return None if text is None else [item.rstrip("\x00 ") for item in text.split("\\")]


def _person_name(value: bytes, encoding: str | None) -> list[str] | None:
    text = _decoded(value.rstrip(b"\x00 "), encoding)
    # PersonName drops empty trailing component groups: "Doe^John==" is "Doe^John".
    return None if text is None else [item.rstrip("=") for item in text.split("\\")]


_CONVERTERS: dict[str, _Converter] = {
    "UI": _uid,
    "CS": _split,
    "DA": _split,
    "TM": _split,
    "IS": _integer_string,
    "US": _unsigned_short,
    "SH": _text,
    "LO": _text,
    "PN": _person_name,
}
_UID_ONLY: dict[str, _Converter] = {"UI": _uid}
