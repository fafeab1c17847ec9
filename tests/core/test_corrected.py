"""Corrections spliced into an outgoing object (core/corrected.py): exactly the corrected
values, every other byte as stored (file meta, other elements, sequences, pixel data), in
every transfer syntax twinpacs stores, character sets and group lengths kept right."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filereader import data_element_generator
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from twinpacs.core.corrected import CorrectionError, correct_head, corrected
from twinpacs.core.parsing import parse_part10
from twinpacs.synthetic import StudySpec, available_transfer_syntaxes, encode, make_study
from tests.dimse.conftest import dcmtk

SYNTAXES = [*available_transfer_syntaxes(), ExplicitVRBigEndian]
# A longer ID (odd length: padded), a shorter name, an accession where there was none, an
# issuer the objects lack (added in tag order), an emptied sex.
VALUES = {"PatientID": "NEW-00042", "PatientName": "Li^Bo", "AccessionNumber": "ACC7",
          "IssuerOfPatientID": "HOSP", "PatientSex": ""}
PIXEL_DATA = 0x7FE00010


def instance(syntax: str, tmp_path: Path, **attributes: Any) -> bytes:
    """One synthetic object in `syntax` with `attributes` set (big endian through DCMTK)."""
    spec = StudySpec(series=1, instances_per_series=1, rows=32, columns=32, accession_number="",
                     transfer_syntax=ExplicitVRLittleEndian if syntax == ExplicitVRBigEndian else syntax)
    (ds,) = make_study(spec)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    data = encode(ds)
    if syntax != ExplicitVRBigEndian:
        return data
    (tmp_path / "le.dcm").write_bytes(data)
    dcmtk("dcmconv", "+tb", tmp_path / "le.dcm", tmp_path / "be.dcm")
    return (tmp_path / "be.dcm").read_bytes()


def elements(data: bytes) -> dict[int, Any]:
    """Each top-level element as encoded: its raw value bytes (a parsed sequence for an
    undefined-length one), walked independently of the code under test."""
    parsed = parse_part10(data)
    syntax = parsed.transfer_syntax
    fp = io.BytesIO(data)
    fp.seek(parsed.dataset_offset)
    if syntax.is_deflated:
        fp = io.BytesIO(zlib.decompress(data[parsed.dataset_offset:], -zlib.MAX_WBITS))
    return {e.tag: (e.VR, e.value) for e in data_element_generator(fp, syntax.is_implicit_VR, syntax.is_little_endian)}


@pytest.mark.parametrize("syntax", SYNTAXES, ids=lambda s: s.name)
def test_only_the_corrected_elements_change(syntax: str, tmp_path: Path) -> None:
    data = instance(syntax, tmp_path)
    out = corrected(data, VALUES)

    ds = dcmread(io.BytesIO(out))
    assert ds.file_meta.TransferSyntaxUID == syntax
    assert (ds.PatientID, str(ds.PatientName), ds.AccessionNumber, ds.IssuerOfPatientID, ds.PatientSex) == (
        "NEW-00042", "Li^Bo", "ACC7", "HOSP", "")
    offset = parse_part10(data).dataset_offset
    assert out[:offset] == data[:offset]  # preamble and file meta
    before, after = elements(data), elements(out)
    corrected_tags = {0x00080050, 0x00100010, 0x00100020, 0x00100021, 0x00100040}
    assert set(after) == set(before) | corrected_tags
    assert {t: v for t, v in after.items() if t not in corrected_tags} == {
        t: v for t, v in before.items() if t not in corrected_tags}
    assert len(after[0x00100020][1]) == 10  # "NEW-00042" padded to even length
    assert dcmread(io.BytesIO(out)).PixelData == dcmread(io.BytesIO(data)).PixelData
    if not syntax.is_deflated:  # the stored remainder, pixel data first of all, appended as it is
        pixel_tag = struct.pack("<HH" if syntax.is_little_endian else ">HH", 0x7FE0, 0x0010)
        tail = data[data.find(pixel_tag, offset):]
        assert len(tail) > len(ds.PixelData) and out.endswith(tail)


def test_only_the_header_is_read(tmp_path: Path) -> None:
    data = instance(ExplicitVRLittleEndian, tmp_path)

    class Counting(io.BytesIO):
        furthest = 0

        def read(self, size: int | None = -1) -> bytes:
            chunk = super().read(size)
            Counting.furthest = max(Counting.furthest, self.tell())
            return chunk

    correction = correct_head(Counting(data), VALUES)
    pixels = data.find(b"\xe0\x7f\x10\x00")
    assert correction.resume <= pixels and Counting.furthest <= pixels
    assert correction.apply(data) == corrected(data, VALUES)


def test_no_change_is_no_change(tmp_path: Path) -> None:
    data = instance(ImplicitVRLittleEndian, tmp_path)
    ds = dcmread(io.BytesIO(data))
    assert corrected(data, {}) == data
    assert corrected(data, {"PatientID": ds.PatientID, "PatientName": str(ds.PatientName)}) == data


def test_sequences_are_left_alone(tmp_path: Path) -> None:
    """Nested identifiers are the stored ones: only top-level attributes are corrected; an
    undefined-length sequence among the replaced elements keeps its bytes."""
    qualifiers = Dataset()
    qualifiers.UniversalEntityID = "2.16.578.1"
    other = Dataset()
    other.PatientID, other.IssuerOfPatientID = "OLD-OTHER", "OTHER"
    data = instance(ExplicitVRLittleEndian, tmp_path, IssuerOfPatientIDQualifiersSequence=Sequence([qualifiers]),
                    OtherPatientIDsSequence=Sequence([other]))
    out = corrected(data, VALUES)
    ds = dcmread(io.BytesIO(out))
    assert ds.PatientID == "NEW-00042"
    assert ds.OtherPatientIDsSequence[0].PatientID == "OLD-OTHER"
    assert ds.IssuerOfPatientIDQualifiersSequence[0].UniversalEntityID == "2.16.578.1"
    before, after = elements(data), elements(out)
    assert after[0x00100024] == before[0x00100024] and after[0x00101002] == before[0x00101002]


def test_a_name_outside_ascii_moves_the_object_to_utf8(tmp_path: Path) -> None:
    data = instance(ExplicitVRLittleEndian, tmp_path)
    assert b"\x08\x00\x05\x00" not in data  # no Specific Character Set: the default repertoire
    out = corrected(data, {"PatientName": "Østby^Åse"})
    ds = dcmread(io.BytesIO(out))
    assert ds.SpecificCharacterSet == "ISO_IR 192" and str(ds.PatientName) == "Østby^Åse"
    assert "Østby^Åse".encode() in out


def test_the_objects_character_set_is_kept_or_the_correction_refused(tmp_path: Path) -> None:
    data = instance(ExplicitVRLittleEndian, tmp_path, SpecificCharacterSet="ISO_IR 100")
    out = corrected(data, {"PatientName": "Ærø^Åse"})
    ds = dcmread(io.BytesIO(out))
    assert ds.SpecificCharacterSet == "ISO_IR 100" and str(ds.PatientName) == "Ærø^Åse"
    assert "Ærø^Åse".encode("latin-1") in out
    with pytest.raises(CorrectionError, match="character set"):
        corrected(data, {"PatientName": "王^小明"})


def test_a_group_length_follows_its_group(tmp_path: Path) -> None:
    """Old objects may carry (gggg,0000) group lengths (pydicom no longer writes them, so one
    is put in by hand); a corrected group's stays true."""
    def group_length(data: bytes) -> tuple[int, int]:
        """(the declared length of group 0010, its actual length): explicit VR LE, short VRs."""
        found = elements(data)
        actual = sum(8 + len(v) for t, (_, v) in found.items() if t >> 16 == 0x0010 and t & 0xFFFF)
        return struct.unpack("<I", found[0x00100000][1])[0], actual

    plain = instance(ExplicitVRLittleEndian, tmp_path)
    at = plain.find(b"\x10\x00\x10\x00PN")
    size = sum(8 + len(v) for t, (_, v) in elements(plain).items() if t >> 16 == 0x0010)
    data = plain[:at] + b"\x10\x00\x00\x00UL\x04\x00" + struct.pack("<I", size) + plain[at:]
    assert group_length(data)[0] == group_length(data)[1]

    out = corrected(data, {"PatientID": "A-MUCH-LONGER-IDENTIFIER", "IssuerOfPatientID": "HOSP"})
    declared, actual = group_length(out)
    assert declared == actual == size + (24 - 6) + (8 + 4)  # the ID longer than TP0001; the issuer added
    assert dcmread(io.BytesIO(out)).PatientID == "A-MUCH-LONGER-IDENTIFIER"


@pytest.mark.parametrize("values", [{"Nonsense": "x"}, {"OtherPatientIDsSequence": "x"}, {"PixelData": "x"},
                                    {"TransferSyntaxUID": "1.2"}])
def test_what_cannot_be_corrected_is_refused(values: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(CorrectionError):
        corrected(instance(ExplicitVRLittleEndian, tmp_path), values)
