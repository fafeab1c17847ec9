"""Corrections applied to an object on its way out to a client (G2: the stored file never changes).

A reconciliation or an A40 merge corrects a study's identity in the index; whoever retrieves
the study must receive that identity too, not the one in the stored file. The object sent is
the stored one with only the corrected top-level elements re-encoded (in the object's own
transfer syntax and character set): the file meta and every other element keep their bytes,
and everything after the last corrected element, pixel data included, is the stored object's
own remainder, neither parsed nor copied into a new encoding. A deflated dataset is one
compressed stream, so it is inflated, spliced and deflated again."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, BinaryIO

from pydicom import config
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, convert_raw_data_element
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import _read_file_meta_info, data_element_generator, read_preamble
from pydicom.filewriter import write_data_element
from pydicom.tag import BaseTag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

CHARSET = 0x00080005
_UTF8 = "ISO_IR 192"
_DEFAULT_CHARSETS = ("", "ISO_IR 6")  # the default repertoire: ASCII, of which UTF-8 is a superset
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}


class CorrectionError(ValueError):
    """A correction that cannot be expressed in the object (not a text attribute, or a value
    the object's character set cannot hold)."""


@dataclass(frozen=True)
class Correction:
    """The corrected object is `head` followed by the stored object's bytes from `resume` on."""

    head: bytes
    resume: int

    def apply(self, stored: bytes) -> bytes:
        return self.head + stored[self.resume:]


def corrected(stored: bytes, values: Mapping[str, str]) -> bytes:
    """The Part 10 object `stored` with these attributes (keyword -> DICOM text, '' an empty
    value, '\\' between values) in place of its own."""
    return correct_head(io.BytesIO(stored), values).apply(stored)


def correct_head(fp: BinaryIO, values: Mapping[str, str]) -> Correction:
    """Read only as far into the Part 10 object `fp` as the last corrected element (the whole
    object when deflated) and say how the corrected object begins."""
    tags = _tags(values)
    read_preamble(fp, force=False)
    syntax = UID(_read_file_meta_info(fp).TransferSyntaxUID)
    start = fp.tell()
    fp.seek(0)
    prefix = fp.read(start)  # preamble and file meta, unchanged
    if syntax != DeflatedExplicitVRLittleEndian:
        return _splice(fp, start, tags, syntax.is_implicit_VR, syntax.is_little_endian, prefix)
    compressed = fp.read()
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    body = inflater.decompress(compressed) + inflater.flush()
    spliced = _splice(io.BytesIO(body), 0, tags, False, True, b"").apply(body)
    deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
    stream = deflater.compress(spliced) + deflater.flush()
    # PS3.5 A.5: a deflated stream of odd length is padded with one NUL byte.
    return Correction(prefix + stream + b"\0" * (len(stream) % 2), start + len(compressed))


def _tags(values: Mapping[str, str]) -> dict[int, tuple[str, str]]:
    """tag -> (VR, text) of each correction; only top-level text attributes of the dataset."""
    tags = {}
    for keyword, text in values.items():
        tag = tag_for_keyword(keyword)
        if tag is None:
            raise CorrectionError(f"{keyword!r} is not a DICOM keyword")
        vr = dictionary_VR(tag)
        if tag >> 16 <= 0x0002 or vr not in _TEXT_VRS:
            raise CorrectionError(f"{keyword} cannot be corrected on the way out (not a dataset text attribute)")
        tags[tag] = (vr, text)
    return tags


@dataclass(frozen=True)
class _Span:
    start: int
    end: int


def _splice(fp: BinaryIO, start: int, tags: dict[int, tuple[str, str]], implicit: bool, little: bool,
            prefix: bytes) -> Correction:
    """Walk the top-level elements from `start` up to the last one to replace (values left
    unread: a deferral size of 0), then assemble the head from the stored bytes and the new
    elements."""
    last = max([*tags, CHARSET])
    spans: dict[int, _Span] = {}
    charset: bytes = b""
    position = start
    fp.seek(start)
    walk = data_element_generator(fp, implicit, little, stop_when=lambda tag, vr, length: tag > last, defer_size=0)
    for element in walk:
        spans[int(element.tag)] = _Span(position, fp.tell())
        if element.tag == CHARSET:
            charset = element.value or b""
        position = fp.tell()
    resume = position  # the first element after the last one replaced (or the end)
    fp.seek(start)
    stored = fp.read(resume - start)

    replacements = dict(_encoded(tuple(sorted(tags.items())), charset, implicit, little))
    _adjust_group_lengths(replacements, spans, stored, start, implicit, little)
    pieces = [prefix]
    cursor = start
    for tag in sorted(replacements):
        span = spans.get(tag)
        if span is None:  # absent: added before the first element with a greater tag
            at = next((s.start for t, s in sorted(spans.items()) if t > tag), resume)
            span = _Span(at, at)
        pieces += [stored[cursor - start:span.start - start], replacements[tag]]
        cursor = span.end
    pieces.append(stored[cursor - start:])
    return Correction(b"".join(pieces), resume)


@lru_cache(maxsize=256)
def _encoded(corrections: tuple[tuple[int, tuple[str, str]], ...], charset: bytes, implicit: bool,
             little: bool) -> tuple[tuple[int, bytes], ...]:
    """Each corrected element encoded; the same for every instance of a study that shares the
    syntax and character set, so computed once for them. A value outside the default repertoire
    (ASCII; pydicom would write Latin-1 there) moves an object without another character set
    to UTF-8, whose first 128 characters are that repertoire: every other text element keeps
    its meaning."""
    tags = dict(corrections)
    names = [n.strip() for n in charset.decode("ascii", "replace").split("\\")]
    default = all(n in _DEFAULT_CHARSETS for n in names)
    if not default or all(text.isascii() for _, text in tags.values()):
        encodings = convert_encodings(names) if not default else [default_encoding]
        return tuple((tag, _element(tag, vr, text, encodings, implicit, little)) for tag, (vr, text) in corrections)
    if CHARSET in tags:
        raise CorrectionError("SpecificCharacterSet is corrected, but not to one that holds the corrected values")
    utf8 = convert_encodings([_UTF8])
    encoded = {tag: _element(tag, vr, text, utf8, implicit, little) for tag, (vr, text) in corrections}
    encoded[CHARSET] = _element(CHARSET, "CS", _UTF8, utf8, implicit, little)
    return tuple(encoded.items())


def _element(tag: int, vr: str, text: str, encodings: list[str], implicit: bool, little: bool) -> bytes:
    """One element as the stored object's syntax writes it, checked by reading it back: an
    encoder replaces what a character set lacks ('?'), which must not reach a client."""
    element = DataElement(tag, vr, text or None, validation_mode=config.IGNORE)
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = little, implicit
    write_data_element(out, element, encodings)
    encoded = out.getvalue()
    (raw,) = data_element_generator(io.BytesIO(encoded), implicit, little, encoding=encodings)
    back = convert_raw_data_element(raw, encoding=encodings)
    if _text(back.value).rstrip() != text.rstrip():
        raise CorrectionError(f"{element.keyword} {text!r} cannot be written in the character set "
                              f"{'/'.join(encodings)} of the object")
    return encoded


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def _adjust_group_lengths(replacements: dict[int, bytes], spans: dict[int, _Span], stored: bytes, start: int,
                          implicit: bool, little: bool) -> None:
    """A group length element (gggg,0000; retired, still found in old objects) follows the
    size change of its group's replaced or added elements."""
    for group in {tag >> 16 for tag in replacements}:
        span = spans.get(group << 16)
        if span is None:
            continue
        delta = sum(len(new) - (spans[tag].end - spans[tag].start if tag in spans else 0)
                    for tag, new in replacements.items() if tag >> 16 == group)
        fmt = "<I" if little else ">I"
        old = struct.unpack(fmt, stored[span.end - start - 4:span.end - start])[0]
        length = DataElement(BaseTag(group << 16), "UL", old + delta)
        out = DicomBytesIO()
        out.is_little_endian, out.is_implicit_VR = little, implicit
        write_data_element(out, length)
        replacements[group << 16] = out.getvalue()
