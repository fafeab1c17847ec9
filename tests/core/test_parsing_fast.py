"""parse_part10 and InstanceRecord.from_dataset read the common objects straight from the bytes
(core.element_walk, core.raw_values) and leave every other one to pydicom. Each shortcut is
checked here against pydicom's reading of the same bytes: the same values, the same refusals."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import dcmwrite
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filereader import _read_file_meta_info, read_preamble
from pydicom.tag import BaseTag
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from twinpacs.core import parsing, raw_values
from twinpacs.core.element_walk import walk
from twinpacs.core.model import _INDEX_TAGS, InstanceRecord
from twinpacs.core.parsing import _plain_meta, _walk_with_pydicom, parse_part10
from twinpacs.synthetic import StudySpec, encode, make_study

SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian]


@contextmanager
def pydicom_only() -> Iterator[None]:
    """Every shortcut off: what parse_part10 and from_dataset did before they existed."""
    with mock.patch.object(parsing, "walk", lambda *args, **kwargs: None), \
            mock.patch.object(raw_values, "_pydicom_reads_as_assumed", lambda: False):
        yield


def outcome(data: bytes) -> Any:
    """What storing `data` would index, or the type of the refusal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the odd values on purpose here
        try:
            parsed = parse_part10(data)
            record = InstanceRecord.from_dataset(parsed.dataset, parsed.transfer_syntax, parsed.content_hash,
                                                 len(data))
        except Exception as exc:  # noqa: BLE001 - the type is the outcome compared
            return type(exc)
    return record.attributes, str(record.transfer_syntax), record.content_hash, parsed.dataset_offset


def assert_same_as_pydicom(data: bytes) -> Any:
    fast = outcome(data)
    with pydicom_only():
        assert fast == outcome(data)
    return fast


def raw(tag: int, vr: str, value: bytes) -> RawDataElement:
    """An element to be written as these exact bytes (padding, NULs, separators as given)."""
    return RawDataElement(BaseTag(tag), vr, len(value), value, 0, False, True)


def part10(syntax: str = ExplicitVRLittleEndian, charset: str | None = None, **elements: RawDataElement) -> bytes:
    """A small CT object with the given elements (by keyword) and character set. The elements
    are encoded here, byte for byte: pydicom's writer would convert (and refuse) odd values."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.SOPClassUID = CTImageStorage
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    if charset is not None:
        ds.SpecificCharacterSet = charset
    if "SOPInstanceUID" in elements:
        del ds.SOPInstanceUID
        ds.file_meta.MediaStorageSOPInstanceUID = elements["SOPInstanceUID"].value.decode().strip("\x00 ") or generate_uid()
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    data = buffer.getvalue()
    offset = 144 + struct.unpack("<I", data[140:144])[0]
    body = data[offset:]
    if syntax == DeflatedExplicitVRLittleEndian:
        body = zlib.decompress(body, -zlib.MAX_WBITS)
    body += b"".join(encoded(element, syntax) for element in elements.values())
    if syntax == DeflatedExplicitVRLittleEndian:
        deflater = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body = deflater.compress(body) + deflater.flush()
    return data[:offset] + body


def encoded(element: RawDataElement, syntax: str) -> bytes:
    order = ">" if syntax == ExplicitVRBigEndian else "<"
    group, number, length = element.tag >> 16, element.tag & 0xFFFF, len(element.value)
    if syntax == ImplicitVRLittleEndian:
        header = struct.pack("<HHL", group, number, length)
    elif element.VR in EXPLICIT_VR_LENGTH_32:
        header = struct.pack(f"{order}HH2s2xL", group, number, element.VR.encode(), length)
    else:
        header = struct.pack(f"{order}HH2sH", group, number, element.VR.encode(), length)
    return header + element.value


LATIN_1 = dict(
    PatientName=raw(0x00100010, "PN", "Müller^Jürgen=\\Ørsted^Hans==".encode("latin-1")),
    StudyDescription=raw(0x00081030, "LO", "Thorax\x00 \\ Abdomen  ".encode("latin-1")),
    PatientID=raw(0x00100020, "LO", b"ID\\"),
    AccessionNumber=raw(0x00080050, "SH", b"  A1 \x00"),
)
UTF_8 = dict(
    PatientName=raw(0x00100010, "PN", "王^小明=ワン^シャオミン \x00".encode()),
    StudyDescription=raw(0x00081030, "LO", "Schädel ✓".encode()),
    ReferringPhysicianName=raw(0x00080090, "PN", "Dr\\^Who=".encode()),
    SeriesDescription=raw(0x0008103E, "LO", b"\xff\xfe not UTF-8"),  # pydicom replaces: not here
)
JAPANESE = dict(  # PS3.5 H.3.1: ISO 2022 escape sequences, one per component group
    PatientName=raw(0x00100010, "PN", b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^"
                                      b"\x1b$B$?$m$&\x1b(B"),
    StudyDescription=raw(0x00081030, "LO", b"\x1b$B;3ED\x1b(B CT"),
    PatientID=raw(0x00100020, "LO", b"JP-1"),
)
PLAIN_VRS = dict(
    Modality=raw(0x00080060, "CS", b"CT\\MR "),
    PatientSex=raw(0x00100040, "CS", b"F\x00"),
    StudyDate=raw(0x00080020, "DA", b"20261204\\20261205"),
    StudyTime=raw(0x00080030, "TM", b"101010.5 "),
    SeriesDate=raw(0x00080021, "DA", b""),
    SeriesNumber=raw(0x00200011, "IS", b" +12 \\-0\\007 \\  \\4 "),
    InstanceNumber=raw(0x00200013, "IS", b"123456789012345 "),
    NumberOfFrames=raw(0x00280008, "IS", b"1 "),
    Rows=raw(0x00280010, "US", struct.pack("<H", 512)),
    Columns=raw(0x00280011, "US", struct.pack("<2H", 256, 7)),
    SOPClassUID=raw(0x00080016, "UI", CTImageStorage.encode() + b"\x00"),
)
ODD_VALUES = dict(  # pydicom repairs, warns or refuses: the shortcut must step aside
    SeriesNumber=raw(0x00200011, "IS", b"1.0"),
    InstanceNumber=raw(0x00200013, "IS", b"9999999999999999"),  # past 2**53: pydicom gives "1e+16"
    NumberOfFrames=raw(0x00280008, "IS", b"abc"),
    Rows=raw(0x00280010, "US", b"\x01\x02\x03"),
    Columns=raw(0x00280011, "SS", struct.pack("<h", -2)),
    StudyDescription=raw(0x00081030, "UN", b"Thorax"),
    Modality=raw(0x00080060, "LO", b"CT "),
    PatientName=raw(0x00100010, "LO", b"Doe^John=="),
)


CASES = [
    (None, PLAIN_VRS),
    ("ISO_IR 100", LATIN_1),
    ("ISO_IR 192", UTF_8),
    ("ISO 2022 IR 6\\ISO 2022 IR 87", JAPANESE),
    ("ISO_IR 999", LATIN_1),  # an unknown character set: pydicom decodes with its default
    (None, {}),  # every indexed attribute but the UIDs missing
] + [("ISO_IR 100", {keyword: element}) for keyword, element in ODD_VALUES.items()]  # one refusal hides others
IDS = ["plain-vrs", "latin-1", "utf-8", "iso-2022-japanese", "unknown-charset", "missing"] + [
    f"odd-{keyword}" for keyword in ODD_VALUES]


@pytest.mark.parametrize("syntax", SYNTAXES)
@pytest.mark.parametrize("charset, elements", CASES, ids=IDS)
def test_indexed_values_are_pydicoms(syntax: str, charset: str | None, elements: dict[str, RawDataElement]) -> None:
    assert_same_as_pydicom(part10(syntax, charset, **elements))


def test_the_values_the_index_needs_are_read_without_pydicom() -> None:
    """The shortcut is taken for the common objects (or the tests above prove little)."""
    for charset, elements in ((None, PLAIN_VRS), ("ISO_IR 100", LATIN_1), ("ISO_IR 192", UTF_8)):
        for syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            ds = parse_part10(part10(syntax, charset, **elements)).dataset
            strings = raw_values.value_strings(ds, [element.tag for element in elements.values()])
            expected_none = [element.tag == 0x0008103E for element in elements.values()]  # not UTF-8
            assert [s is None for s in strings] == expected_none


def test_identity_uids_padded_or_multi_valued_are_judged_as_before() -> None:
    uid = generate_uid()
    for value in (uid + "\x00", " " + uid + " ", uid + "\\" + uid, "\x00", "", uid + "\x00\n", "1.2.03"):
        data = part10(SOPInstanceUID=raw(0x00080018, "UI", value.encode()))
        assert_same_as_pydicom(data)


REAL = encode(make_study(StudySpec(patient_id="FAST", series=1, instances_per_series=1, rows=8, columns=8))[0])


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """REAL cut short, with bytes flipped, or with a length field overwritten."""
    out = bytearray(REAL[:draw(st.integers(0, len(REAL)))] if draw(st.booleans()) else REAL)
    for _ in range(draw(st.integers(0, 6))):
        if out:
            out[draw(st.integers(0, len(out) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()) and len(out) > 8:
        position = draw(st.integers(0, len(out) - 4))
        out[position:position + 4] = struct.pack("<I", draw(st.sampled_from(
            [0, 1, 2, 0xFFFFFFFF, 0xFFFF, len(out), 0x00E0FFFE, 0xE00DFFFE])))
    return bytes(out)


FUZZ = settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))


@FUZZ
@given(damaged())
def test_damaged_objects_are_refused_or_read_as_pydicom_does(data: bytes) -> None:
    assert_same_as_pydicom(data)


@FUZZ
@given(damaged(), st.sampled_from(SYNTAXES[:2]))
def test_the_walk_gives_pydicoms_elements_or_steps_aside(data: bytes, syntax: str) -> None:
    implicit = syntax == ImplicitVRLittleEndian
    start = min(len(data), 144 + struct.unpack("<I", REAL[140:144])[0])
    walked = walk(data, start, implicit)
    if walked is not None:
        elements, end = walked
        assert end == len(data)
        assert elements == _walk_with_pydicom(data, start, parsing.UID(syntax))


@FUZZ
@given(damaged())
def test_the_file_meta_is_pydicoms_or_read_by_pydicom(data: bytes) -> None:
    assert_meta_is_pydicoms(data)


META_END = 144 + struct.unpack("<I", REAL[140:144])[0]


@pytest.mark.parametrize("dataset", [
    b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + REAL[META_END:],  # pydicom stops after an item delimiter
    b"\x08\x00\x05\x00OB\x00\x00",  # a header pydicom cannot finish reading
    b"\x08\x00\x05\x00OB\x00\x00\x01\x00",
    b"\x08\x00\x05\x00CS\x00\x00",
], ids=["item-delimiter", "8-byte-header", "10-byte-header", "empty-element"])
def test_where_the_file_meta_ends_is_pydicoms(dataset: bytes) -> None:
    assert_meta_is_pydicoms(REAL[:META_END] + dataset)


def assert_meta_is_pydicoms(data: bytes) -> None:
    plain = _plain_meta(data)
    if plain is not None:
        values, offset = plain
        fp = io.BytesIO(data)
        read_preamble(fp, force=False)
        meta = _read_file_meta_info(fp)
        assert offset == fp.tell()
        for keyword in ("FileMetaInformationGroupLength", "TransferSyntaxUID", "MediaStorageSOPInstanceUID"):
            assert values.get(keyword) == meta.get(keyword)


def test_undefined_lengths_are_left_to_pydicom() -> None:
    sequence = b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    assert walk(REAL + sequence, 144 + struct.unpack("<I", REAL[140:144])[0], implicit=False) is None
    assert isinstance(assert_same_as_pydicom(REAL + sequence), tuple)


def test_a_common_object_is_walked_without_pydicom() -> None:
    assert _plain_meta(REAL) is not None
    assert walk(REAL, META_END, implicit=False) is not None
