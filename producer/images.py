"""Turn the values ``log_image`` accepts into the bytes stored for an image point
(docs/legacy-behaviour.md#logged-values).

Pure functions, no I/O beyond reading an image file: the experiment decides what to do with the
bytes (and with the warning of :func:`check_image_size`). Optional libraries (matplotlib, torch,
TensorFlow) are recognised by duck typing so that none of them is imported unless the caller's
value already comes from it.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
from PIL import Image

from expstream.exceptions import FileNotFound, InvalidChannelValue, NotAFile

__all__ = ["IMAGE_SIZE_LIMIT_BYTES", "check_image_size", "image_to_png_bytes"]

IMAGE_SIZE_LIMIT_BYTES = 15 * 1024 * 1024

# Modes Pillow can write as PNG as they are; anything else (CMYK, YCbCr, F, ...) is converted first.
_PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})


def image_to_png_bytes(value: Any) -> bytes:
    """Bytes to store for one image value; the caller's object is never modified.

    A path (``str`` or ``os.PathLike``) gives the file's raw bytes, unchecked, as legacy did; every
    other accepted kind is encoded as PNG. Raises ``FileNotFound`` for a missing path, ``NotAFile``
    for a directory, ``ValueError`` for an array of unusable shape and
    ``InvalidChannelValue('image', <type name>)`` for anything else.
    """
    if isinstance(value, (str, os.PathLike)):
        return _read_file(os.fspath(value))
    if isinstance(value, Image.Image):
        return _pil_to_png(value)
    if _is_matplotlib_figure(value):
        buffer = io.BytesIO()
        value.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()
    if isinstance(value, np.ndarray):
        return _array_to_png(value)
    array = _tensor_to_array(value)
    if array is not None:
        return _array_to_png(array)
    raise InvalidChannelValue("image", type(value).__name__)


def check_image_size(data: bytes, limit: int = IMAGE_SIZE_LIMIT_BYTES) -> str | None:
    """A warning when the image must not be stored (empty, or over ``limit``), else ``None``.

    Legacy queued such points without data and killed its sender thread; we drop them and warn.
    """
    limit_text = f"{limit / (1024 * 1024):g} MB"
    if not data:
        return f"The image is empty and was not logged (images must be between 1 byte and {limit_text})."
    if len(data) > limit:
        return f"The image is {len(data)} bytes, over the {limit_text} limit ({limit} bytes), and was not logged."
    return None


def _read_file(path: str) -> bytes:
    if not os.path.exists(path):
        raise FileNotFound(path)
    if not os.path.isfile(path):
        raise NotAFile(path)
    with open(path, "rb") as f:
        return f.read()


def _pil_to_png(image: Image.Image) -> bytes:
    if image.mode not in _PNG_MODES:
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _is_matplotlib_figure(value: Any) -> bool:
    """True for ``matplotlib.figure.Figure`` (and subclasses) without importing matplotlib."""
    return any(
        cls.__name__ == "Figure" and cls.__module__.startswith("matplotlib") for cls in type(value).__mro__
    ) and callable(getattr(value, "savefig", None))


def _tensor_to_array(value: Any) -> np.ndarray | None:
    """A numpy copy-or-view of a torch / TensorFlow tensor, or ``None`` when ``value`` is neither."""
    module = type(value).__module__ or ""
    if module.startswith("torch") and callable(getattr(value, "detach", None)):
        return np.asarray(value.detach().cpu().numpy())
    if module.startswith("tensorflow") and callable(getattr(value, "numpy", None)):
        return np.asarray(value.numpy())
    return None


def _array_to_png(array: np.ndarray) -> bytes:
    """Values in [0, 1] scaled to 0..255; out-of-range values wrap modulo 256 as legacy's cast did.

    The scaling writes into a scratch block, so the caller's array (or the tensor sharing its memory)
    is left untouched, unlike legacy, which multiplied in place; memory stays near the uint8 result.
    """
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (3, 4))):
        raise ValueError(
            f"Cannot log an array of shape {array.shape} as an image: expected (height, width) for grayscale, "
            "or (height, width, 1 | 3 | 4) for grayscale / RGB / RGBA."
        )
    if array.size == 0:
        raise ValueError(f"Cannot log an empty array (shape {array.shape}) as an image.")
    buffer = io.BytesIO()
    Image.fromarray(_to_pixels(array)).save(buffer, format="PNG")
    return buffer.getvalue()


#: float64 values converted at a time: a few MiB of scratch, whatever the image's size
_BLOCK_VALUES = 1 << 19


def _to_pixels(array: np.ndarray) -> np.ndarray:
    """``trunc(value * 255) mod 256`` as uint8 (NaN and infinities → 0), a block of rows at a time.

    An 8000 x 8000 float64 image is 512 MB: converting it whole would take several float64 copies of
    it at once (scaled, NaN-cleaned, truncated, wrapped). Only the uint8 result (an eighth of a
    float64 image) and one block of float64 scratch are ever allocated here; the caller's array is
    only read. Results are those of the whole-array computation, value for value.
    """
    pixels = np.empty(array.shape, dtype=np.uint8)
    row_values = max(1, array[0].size)
    rows = max(1, _BLOCK_VALUES // row_values)
    scratch = np.empty((min(rows, array.shape[0]), *array.shape[1:]), dtype=np.float64)
    for start in range(0, array.shape[0], rows):
        block = array[start : start + rows]
        work = scratch[: len(block)]
        np.multiply(block, 255.0, out=work, dtype=np.float64, casting="unsafe")
        np.nan_to_num(work, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        np.trunc(work, out=work)
        np.mod(work, 256, out=work)
        pixels[start : start + len(block)] = work  # each value is an integer in [0, 256): exact
    return pixels
