"""Rendered images (PS3.18 8.3.5, 10.4): one frame decoded by pydicom (pylibjpeg for
compressed syntaxes), the Modality LUT applied, then the VOI window (PS3.3 C.11.2.1.2),
and encoded as PNG or JPEG."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels.processing import apply_rescale, apply_voi_lut
from pydicom.pixels.utils import pixel_array

from ..errors import InvalidInput
from .errors import NotAcceptable
from .pixels import check_frames, frame_count

PNG, JPEG = "image/png", "image/jpeg"
_FUNCTIONS = {"linear": "LINEAR", "linear-exact": "LINEAR_EXACT", "sigmoid": "SIGMOID"}
_UNSUPPORTED = {"annotation", "iccprofile", "charset"}


@dataclass(frozen=True)
class Window:
    center: float
    width: float
    function: str = "LINEAR"  # a VOI LUT Function (0028,1056) defined term

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Stored-value-to-display mapping onto 0..255 (PS3.3 C.11.2.1.2 and C.11.2.1.3)."""
        c, w = self.center, self.width
        if self.function == "SIGMOID":
            return 255.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
        if self.function == "LINEAR_EXACT":
            y = (x - c) / w + 0.5
        else:
            y = (x - (c - 0.5)) / max(w - 1.0, 1e-9) + 0.5
        return np.clip(y, 0.0, 1.0) * 255.0


@dataclass(frozen=True)
class RenderOptions:
    media_type: str = PNG
    window: Window | None = None
    quality: int = 90
    viewport: tuple[int, int] | None = None


def parse_window(text: str) -> Window:
    """window=center,width[,function] (PS3.18 8.3.5.1)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        center, width = float(parts[0]), float(parts[1])
        function = _FUNCTIONS[parts[2].lower()] if len(parts) == 3 else "LINEAR"
    except (ValueError, IndexError, KeyError):
        raise InvalidInput(f"window={text!r}: expected center,width[,linear|linear-exact|sigmoid]") from None
    if len(parts) > 3 or width <= 0 or function == "LINEAR" and width < 1:
        raise InvalidInput(f"window={text!r}: width must be positive (at least 1 for linear)")
    return Window(center, width, function)


def parse_options(params: dict[str, str], media_type: str) -> RenderOptions:
    window, quality, viewport = None, 90, None
    for key, value in params.items():
        if key == "window":
            window = parse_window(value)
        elif key == "quality":
            if not value.isdigit() or not 1 <= int(value) <= 100:
                raise InvalidInput(f"quality must be an integer from 1 to 100, not {value!r}")
            quality = int(value)
        elif key == "viewport":
            sizes = value.split(",")
            if len(sizes) != 2 or not all(s.isdigit() and int(s) > 0 for s in sizes):
                raise InvalidInput(f"viewport={value!r}: expected width,height in pixels")
            viewport = (int(sizes[0]), int(sizes[1]))
        elif key in _UNSUPPORTED:
            raise InvalidInput(f"the rendering parameter {key} is not supported")
        else:
            raise InvalidInput(f"{key} is not a rendering parameter (window, quality, viewport)")
    return RenderOptions(media_type, window, quality, viewport)


def render(src: Path | bytes, frame: int, options: RenderOptions) -> bytes:
    """Blocking: decode one frame of a stored object (a file, or its bytes) and encode it
    as options.media_type. Only that frame is read and decoded."""
    header = dcmread(src, defer_size=1024) if isinstance(src, Path) else dcmread(io.BytesIO(src))
    check_frames([frame], frame_count(header))
    arr = pixel_array(src if isinstance(src, Path) else io.BytesIO(src), index=frame - 1)
    image = Image.fromarray(to_display(arr, header, options.window))
    if options.viewport:
        image = ImageOps.contain(image, options.viewport)
    out = io.BytesIO()
    if options.media_type == JPEG:
        image.save(out, format="JPEG", quality=options.quality)
    else:
        image.save(out, format="PNG")
    return out.getvalue()


def to_display(arr: np.ndarray, ds: Dataset, window: Window | None) -> np.ndarray:
    """8-bit display values: grayscale windowed (MONOCHROME1 inverted), colour scaled."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "PALETTE COLOR":
        raise NotAcceptable("rendering PALETTE COLOR images is not supported")
    if int(ds.get("SamplesPerPixel", 1)) > 1:
        if window is not None:
            raise InvalidInput("window applies to grayscale images only")
        shift = max(int(ds.get("BitsStored", 8)) - 8, 0)
        return (arr >> shift).astype(np.uint8) if shift else arr.astype(np.uint8)
    values = apply_rescale(arr, ds).astype(np.float64)
    if window is None:
        values, window = default_window(values, ds)
    display: np.ndarray = window.apply(values)
    if photometric == "MONOCHROME1":
        display = 255.0 - display
    shown: np.ndarray = np.rint(display).astype(np.uint8)
    return shown


def default_window(values: np.ndarray, ds: Dataset) -> tuple[np.ndarray, Window]:
    """The object's first Window Center/Width, else its VOI LUT, else the value range."""
    if "WindowCenter" in ds and "WindowWidth" in ds:
        center, width = (v[0] if isinstance(v, MultiValue) else v for v in (ds.WindowCenter, ds.WindowWidth))
        function = str(ds.get("VOILUTFunction", "LINEAR")) or "LINEAR"
        if float(width) > 0:
            return values, Window(float(center), float(width), function)
    if "VOILUTSequence" in ds:
        values = apply_voi_lut(values, ds).astype(np.float64)
    low, high = float(values.min()), float(values.max())
    return values, Window((low + high) / 2, max(high - low, 1.0), "LINEAR_EXACT")
