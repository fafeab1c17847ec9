"""The DICOM JSON Model (PS3.18 Annex F), always built by pydicom from Datasets.

Index rows (keyword -> DICOM text) become elements with the VR of pydicom's dictionary;
stored objects become metadata whose binary top-level elements are BulkDataURIs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydicom import config
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from starlette.responses import JSONResponse

from .media import DICOM_JSON

_INT_VRS = {"US", "SS", "UL", "SL", "UV", "SV"}
_FLOAT_VRS = {"FL", "FD"}
_BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}


class DicomJSONResponse(JSONResponse):
    media_type = DICOM_JSON

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def text_element(keyword: str, text: str) -> DataElement:
    """An element from its DICOM text form ('' for an empty value, '\\' between values)."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    vr = dictionary_VR(tag).split(" or ")[0]
    if not text:
        return DataElement(tag, vr, [] if vr == "SQ" else None)
    values: list[Any] = text.split("\\")
    if vr in _INT_VRS:
        values = [int(v) for v in values]
    elif vr in _FLOAT_VRS:
        values = [float(v) for v in values]
    return DataElement(tag, vr, values[0] if len(values) == 1 else values)


def unchecked_element(keyword: str, value: str) -> DataElement:
    """An element reported as received or written: a client's invalid UID, or free text past
    its VR's length limit (LO's 64), kept whole rather than refused or cut."""
    tag = tag_for_keyword(keyword)
    assert tag is not None
    return DataElement(tag, dictionary_VR(tag), value, validation_mode=config.IGNORE)


def texts_to_json(values: dict[str, str]) -> dict[str, Any]:
    ds = Dataset()
    for keyword, text in values.items():
        ds.add(text_element(keyword, text))
    return dataset_json(ds)


def dataset_json(ds: Dataset) -> dict[str, Any]:
    return {f"{element.tag:08X}": element_json(element) for element in ds}


def element_json(element: DataElement) -> dict[str, Any]:
    """pydicom's JSON of an element, except where its writer raises on a value an archive
    keeps as received: a person name with no component group (an empty value among several,
    or only "=") is null, and a DS or IS value that is not a number is given as its text."""
    if element.VR == "PN" and not element.is_empty:
        names = element.value if element.VM > 1 else [element.value]
        return {"vr": "PN", "Value": [_name_json(name) for name in names]}
    if element.VR == "SQ" and element.value:
        return {"vr": "SQ", "Value": [dataset_json(item) for item in element.value]}
    try:
        return element.to_json_dict(None, 0)
    except ValueError:
        values = element.value if element.VM > 1 else [element.value]
        return {"vr": element.VR, "Value": [str(v) for v in values]}


def _name_json(name: Any) -> dict[str, str] | None:
    groups = name.components if name is not None else ()
    return dict(zip(("Alphabetic", "Ideographic", "Phonetic"), groups)) or None


def with_corrections(instance_json: str, corrected: dict[str, Any]) -> str:
    """An instance's metadata text with corrected attributes (DICOM JSON by tag, see
    texts_to_json) in place of the stored ones; keys stay in tag order."""
    content = json.loads(instance_json)
    content.update(corrected)
    return json.dumps(dict(sorted(content.items())), ensure_ascii=False, separators=(",", ":"))


def metadata_json(ds: Dataset, bulk_uri: Callable[[int], str]) -> dict[str, Any]:
    """PS3.18 F.2: a stored object's attributes without its bulk data. Every top-level binary
    element (Pixel Data first of all) becomes a BulkDataURI, read without loading its value;
    binary values inside sequences are small and stay inline."""
    out: dict[str, Any] = {}
    for tag in ds.keys():
        raw = ds.get_item(tag, keep_deferred=True)
        vr = _binary_vr(raw)
        if vr is None:
            out[f"{tag:08X}"] = element_json(ds[tag])
        elif _length(raw) == 0:
            out[f"{tag:08X}"] = {"vr": vr}
        else:
            out[f"{tag:08X}"] = {"vr": vr, "BulkDataURI": bulk_uri(tag)}
    return out


def _binary_vr(raw: DataElement | RawDataElement | Any) -> str | None:
    vr = raw.VR
    if vr is None:  # implicit VR: the dictionary's; "OB or OW" is OW there (PS3.5 A.1)
        try:
            vr = dictionary_VR(Tag(raw.tag))
        except KeyError:
            vr = "UN"
        vr = "OW" if vr == "OB or OW" else vr
    return vr if vr in _BINARY_VRS else None


def _length(raw: DataElement | RawDataElement | Any) -> int:
    if isinstance(raw, RawDataElement):
        return int(raw.length)
    return len(raw.value) if raw.value is not None else 0
