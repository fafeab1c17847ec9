"""Reading a DICOM Part 10 object from bytes, refusing anything truncated or malformed.

pydicom reads a truncated file silently (a short PixelData, missing trailing elements),
so the top-level elements are walked once more and every declared length checked."""

from __future__ import annotations

import hashlib
import io
import zlib
from dataclasses import dataclass
from typing import Any

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import _read_file_meta_info, data_element_generator, read_preamble
from pydicom.tag import BaseTag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from ..errors import InvalidUID, MissingAttribute, NotDicom

UNDEFINED_LENGTH = 0xFFFFFFFF


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
    fp = io.BytesIO(data)
    try:
        read_preamble(fp, force=False)
        meta = _read_file_meta_info(fp)
    except (InvalidDicomError, EOFError, ValueError, KeyError) as exc:
        raise NotDicom(f"not a DICOM Part 10 object: {exc}") from None
    offset = fp.tell()
    group_length = meta.get("FileMetaInformationGroupLength")
    if group_length is not None and not isinstance(group_length, int):  # e.g. two values (VM 2)
        raise NotDicom("file meta group length is not one number")
    if group_length is not None and offset != 132 + 12 + group_length or offset >= len(data):
        raise NotDicom("truncated: the file meta information or the dataset is incomplete")
    syntax = meta.get("TransferSyntaxUID")
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


_REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


def _check_identity(dataset: Dataset, meta: Dataset) -> None:
    for keyword in _REQUIRED:
        try:
            value = dataset.get(keyword)
        except Exception as exc:  # pydicom decodes on access: an unknown VR, a bad value
            raise NotDicom(f"{keyword} cannot be read: {exc}") from None
        if not value:
            raise MissingAttribute(f"{keyword} is missing or empty")
        check_uid(keyword, str(value))
    meta_uid = meta.get("MediaStorageSOPInstanceUID")
    if meta_uid and str(meta_uid) != str(dataset.SOPInstanceUID):
        raise InvalidUID("MediaStorageSOPInstanceUID in the file meta differs from SOPInstanceUID")


def check_uid(keyword: str, value: str) -> str:
    """PS3.5 9.1: digits and dots, no leading zeros in a component, at most 64 characters."""
    if not UID(value).is_valid:
        raise InvalidUID(f"{keyword} {value!r} is not a valid UID")
    return value
