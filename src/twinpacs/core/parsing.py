"""Reading a DICOM Part 10 object from bytes, refusing anything truncated or malformed.

pydicom reads a truncated file silently (a short PixelData, missing trailing elements),
so the top-level elements are walked here instead, every declared length checked."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import _read_file_meta_info, data_element_generator, read_preamble
from pydicom.tag import BaseTag
from pydicom.uid import RE_VALID_UID, UID, DeflatedExplicitVRLittleEndian

from ..errors import InvalidUID, MissingAttribute, NotDicom
from .element_walk import UNDEFINED_LENGTH, walk
from .raw_values import raw_uid_strings, uid_strings


@dataclass(frozen=True)
class ParsedObject:
    """A validated object: its dataset (pixel data included) and where the dataset starts."""

    dataset: Dataset
    transfer_syntax: UID
    dataset_offset: int  # bytes of preamble + file meta before the dataset
    content_hash: str  # SHA-256 of transfer syntax + dataset bytes: same content, same hash

    @property
    def sop_instance_uid(self) -> str:
        return str(self.dataset.SOPInstanceUID)


def content_hash(transfer_syntax: str, dataset_bytes: bytes | memoryview) -> str:
    """Identity of an object's content. The file meta is left out on purpose: it names the
    sender's implementation and AE, so the same image sent by two nodes has different meta."""
    digest = hashlib.sha256(transfer_syntax.encode("ascii") + b"\0")
    digest.update(dataset_bytes)
    return digest.hexdigest()


def parse_part10(data: bytes) -> ParsedObject:
    """Parse and validate a Part 10 object. Raises NotDicom, MissingAttribute or InvalidUID."""
    meta, offset = _read_meta(data)
    group_length = meta("FileMetaInformationGroupLength")
    if group_length is not None and not isinstance(group_length, int):  # e.g. two values (VM 2)
        raise NotDicom("file meta group length is not one number")
    if group_length is not None and offset != 132 + 12 + group_length or offset >= len(data):
        raise NotDicom("truncated: the file meta information or the dataset is incomplete")
    syntax = meta("TransferSyntaxUID")
    if not syntax:
        raise NotDicom("file meta has no Transfer Syntax UID")
    syntax = UID(syntax)
    if not syntax.is_transfer_syntax:
        raise NotDicom(f"unknown transfer syntax {syntax}")
    # One walk both checks every declared length and collects the elements: the dataset is
    # built from them (what dcmread would have read again), values converted on first access.
    elements = _check_complete(data, offset, syntax)
    try:
        dataset = Dataset(elements, parent_encoding=default_encoding)
        encoding: str | list[str] = default_encoding
        if 0x00080005 in elements:
            encoding = convert_encodings(dataset[0x00080005].value)
        dataset.set_original_encoding(syntax.is_implicit_VR, syntax.is_little_endian, encoding)
    except Exception as exc:  # pydicom raises many types on garbage
        raise NotDicom(f"cannot parse DICOM dataset: {exc}") from None
    _check_identity(dataset, meta)
    return ParsedObject(dataset, syntax, offset, content_hash(syntax, memoryview(data)[offset:]))


# The file meta values parse_part10 reads (PS3.10 7.1).
_META_TAGS = {0x00020003: "MediaStorageSOPInstanceUID", 0x00020010: "TransferSyntaxUID"}


def _read_meta(data: bytes) -> tuple[Callable[[str], Any], int]:
    """The file meta's values by keyword, as pydicom's FileMetaDataset.get gives them, and
    where the dataset starts."""
    plain = _plain_meta(data)
    if plain is not None:
        values, offset = plain
        return values.get, offset
    fp = io.BytesIO(data)
    try:
        read_preamble(fp, force=False)
        meta = _read_file_meta_info(fp)
    except (InvalidDicomError, EOFError, ValueError, KeyError, struct.error) as exc:
        # struct.error: pydicom reads on into the dataset's first element to find where the
        # meta ends, and an element header cut short there fails to unpack.
        raise NotDicom(f"not a DICOM Part 10 object: {exc}") from None
    return meta.get, fp.tell()


def _plain_meta(data: bytes) -> tuple[dict[str, Any], int] | None:
    """The common file meta read straight from the bytes: it starts with a 4-byte group length,
    whose conversion is the check pydicom makes of it, and its UIDs have one value each.
    None for anything else: pydicom reads it."""
    walked = walk(data, 132, implicit=False, only_group=2) if data[128:132] == b"DICM" else None
    if walked is None:
        return None
    elements, offset = walked
    group_length = elements.get(0x00020000)
    if group_length is None or group_length.VR != "UL" or group_length.length != 4:
        return None
    values: dict[str, Any] = {"FileMetaInformationGroupLength": int.from_bytes(group_length.value, "little")}
    for tag, keyword in _META_TAGS.items():
        if tag in elements:
            strings = raw_uid_strings(elements[tag])
            if strings is None or len(strings) > 1:
                return None
            values[keyword] = strings[0] if strings else ""
    return values, offset


def _check_complete(data: bytes, offset: int, syntax: UID) -> dict[BaseTag, Any]:
    """Walk the top-level elements, checking each declared length; return them by tag."""
    body, start = data, offset  # walked in place: no copy of the pixel data
    if syntax == DeflatedExplicitVRLittleEndian:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            body, start = inflater.decompress(data[offset:]), 0
        except zlib.error as exc:
            raise NotDicom(f"deflated dataset is corrupt: {exc}") from None
        if not inflater.eof:
            raise NotDicom("deflated dataset is truncated")
    walked = walk(body, start, syntax.is_implicit_VR) if syntax.is_little_endian else None
    if walked is not None:
        return walked[0]
    return _walk_with_pydicom(body, start, syntax)


def _walk_with_pydicom(body: bytes, start: int, syntax: UID) -> dict[BaseTag, Any]:
    fp = io.BytesIO(body)
    fp.seek(start)
    end = start
    elements: dict[BaseTag, Any] = {}
    try:
        for element in data_element_generator(fp, syntax.is_implicit_VR, syntax.is_little_endian):
            elements[element.tag] = element
            end = fp.tell()
            length = getattr(element, "length", UNDEFINED_LENGTH)
            value = element.value
            if length != UNDEFINED_LENGTH and isinstance(value, bytes) and len(value) != length:
                raise NotDicom(
                    f"truncated: element {element.tag} declares {length} bytes, {len(value)} present"
                )
    except NotDicom:
        raise
    except Exception as exc:
        raise NotDicom(f"truncated or malformed dataset: {exc}") from None
    if end != len(body):
        raise NotDicom(f"truncated: the dataset ends inside an element header at byte {end - start}")
    return elements


_REQUIRED = tuple((keyword, BaseTag(tag_for_keyword(keyword)))
                  for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"))
_REQUIRED_TAGS = tuple(tag for _, tag in _REQUIRED)


def _check_identity(dataset: Dataset, meta: Callable[[str], Any]) -> None:
    uids: dict[str, str] = {}
    for (keyword, tag), strings in zip(_REQUIRED, uid_strings(dataset, _REQUIRED_TAGS)):
        value = _identity_value(dataset, keyword, strings)
        if not value:
            raise MissingAttribute(f"{keyword} is missing or empty")
        uids[keyword] = check_uid(keyword, value)
    meta_uid = meta("MediaStorageSOPInstanceUID")
    if meta_uid and str(meta_uid) != uids["SOPInstanceUID"]:
        raise InvalidUID("MediaStorageSOPInstanceUID in the file meta differs from SOPInstanceUID")


def _identity_value(dataset: Dataset, keyword: str, strings: list[str] | None) -> str:
    """An identity UID as text ('' when absent or empty), from its `strings` where known.
    Several values make a text that is no valid UID, as pydicom's list of them does."""
    if strings is not None:
        return "\\".join(strings)
    try:
        value = dataset.get(keyword)
    except Exception as exc:  # pydicom decodes on access: an unknown VR, a bad value
        raise NotDicom(f"{keyword} cannot be read: {exc}") from None
    return str(value) if value else ""


def check_uid(keyword: str, value: str) -> str:
    """PS3.5 9.1: digits and dots, no leading zeros in a component, at most 64 characters.
    pydicom's UID(value).is_valid, without building the UID."""
    uid = value.strip()
    if len(uid) > 64 or not RE_VALID_UID.match(uid):
        raise InvalidUID(f"{keyword} {value!r} is not a valid UID")
    return value
