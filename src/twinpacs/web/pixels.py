"""Frames of stored pixel data: as stored (native bytes sliced per PS3.5 8.2, or the
compressed bitstream of each frame per PS3.5 A.4), or decoded to native bytes."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.pixels.utils import get_expected_length, pixel_array
from pydicom.uid import UID

from ..errors import InvalidInput, NotFound
from .errors import NotAcceptable


def frame_count(ds: Dataset) -> int:
    if "PixelData" not in ds:
        raise NotFound(f"instance {ds.get('SOPInstanceUID', '')} has no pixel data")
    return int(ds.get("NumberOfFrames") or 1)


def parse_frame_list(text: str) -> list[int]:
    """'1,3,5' -> [1, 3, 5] (PS3.18 10.4: one-based, comma-separated)."""
    items = [item.strip() for item in text.split(",")]
    if not all(item.isdigit() and int(item) >= 1 for item in items):
        raise InvalidInput(f"{text!r} is not a comma-separated list of frame numbers starting at 1")
    return [int(item) for item in items]


def check_frames(numbers: list[int], count: int) -> None:
    missing = [n for n in numbers if n > count]
    if missing:
        raise NotFound(f"frame {missing[0]} does not exist; the instance has {count} frame(s)")


def stored_frames(ds: Dataset, transfer_syntax: str, numbers: list[int]) -> list[bytes]:
    count = frame_count(ds)
    check_frames(numbers, count)
    if UID(transfer_syntax).is_encapsulated:
        offsets = None
        if "ExtendedOffsetTable" in ds:
            offsets = (ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths)
        return [get_frame(ds.PixelData, n - 1, number_of_frames=count, extended_offsets=offsets)
                for n in numbers]
    if ds.BitsAllocated == 1 and (ds.Rows * ds.Columns * ds.SamplesPerPixel) % 8:
        raise NotAcceptable("1-bit frames that do not end on a byte boundary cannot be sent one by one")
    size = get_expected_length(ds, "bytes") // count
    data = ds.PixelData
    return [bytes(data[(n - 1) * size:n * size]) for n in numbers]


def decoded_frames(ds: Dataset, numbers: list[int]) -> list[bytes]:
    """Native little-endian bytes of each frame, decoded by pydicom's plugins (pylibjpeg)."""
    check_frames(numbers, frame_count(ds))
    frames = []
    for n in numbers:
        arr = pixel_array(ds, index=n - 1)
        frames.append(np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes())
    return frames
