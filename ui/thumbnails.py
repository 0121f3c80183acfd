"""Gallery thumbnails: an image log's point can be up to 15 MB; the gallery shows it at most 360 px wide.

Sending the full image to every gallery slide would make the browser fetch and decode megabytes per step, so the
gallery asks for ``thumb=1`` and gets a PNG of at most :data:`SIZE` pixels a side (the full image is one click
away). Images already that small are sent as they are, byte for byte (telling reads only their header). The
thumbnails made are kept in a small in-process cache keyed by the image's content (at most :data:`CACHE_BYTES`,
the least recently used going first), so stepping back and forth through a log decodes each image once.

A point that is not an image Pillow reads (legacy logged a path's bytes unchecked), or one of more pixels than
Pillow's decompression-bomb limit, gets :class:`NotAnImage`: the UI answers it with a clear error (422), never a
traceback, and the point's bytes stay downloadable as they are from the full-image URL.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict

from PIL import Image, UnidentifiedImageError

from expstream.exceptions import NeptuneException

__all__ = ["CACHE_BYTES", "SIZE", "NotAnImage", "cached", "thumbnail"]

#: longest side of a thumbnail, in pixels (twice the gallery's 360 CSS px, for sharp high-DPI screens)
SIZE = 720
#: the most the cache of thumbnails holds (a thumbnail of noise is about 1.5 MB; of a photo, tens of KB)
CACHE_BYTES = 64 * 1024 * 1024
_cache: OrderedDict[str, bytes] = OrderedDict()
_cached_bytes = 0
_lock = threading.Lock()


class NotAnImage(NeptuneException):
    """An image log's point that no thumbnail can be made of (the message says why)."""


def cached(key: str) -> bytes | None:
    """The thumbnail made of the image whose SHA-256 is ``key``, if the cache holds it: the store need not be
    read again for it."""
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    return None


def thumbnail(data: bytes, key: str | None = None) -> bytes:
    """A PNG of ``data`` fitting SIZE x SIZE; ``data`` itself when it already fits. ``key``: the SHA-256 of ``data``
    when the caller knows it (the store addresses images by it), else computed here.

    Raises :class:`NotAnImage` when Pillow cannot read ``data`` or it has too many pixels to decode safely."""
    global _cached_bytes
    key = key or hashlib.sha256(data).hexdigest()
    found = cached(key)
    if found is not None:
        return found
    try:
        with Image.open(io.BytesIO(data)) as picture:
            width, height = picture.size
            if max(width, height) <= SIZE:
                return data
            if Image.MAX_IMAGE_PIXELS is not None and width * height > Image.MAX_IMAGE_PIXELS:
                raise NotAnImage(
                    f"an image of {width} x {height} pixels is more than the {Image.MAX_IMAGE_PIXELS:,} a thumbnail "
                    "is made of; its bytes are at the same URL without thumb=1"
                )
            picture.thumbnail((SIZE, SIZE))
            shown: Image.Image = picture
            if shown.mode not in ("RGB", "RGBA", "L", "LA"):
                shown = shown.convert("RGBA")
            buffer = io.BytesIO()
            shown.save(buffer, format="PNG", optimize=False)
            small = buffer.getvalue()
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        raise NotAnImage(
            f"not an image the UI can read ({type(exc).__name__}: {exc}); its {len(data):,} bytes are at the "
            "same URL without thumb=1"
        ) from None
    with _lock:
        if key not in _cache:
            _cache[key] = small
            _cached_bytes += len(small)
        while _cached_bytes > CACHE_BYTES and _cache:
            _cached_bytes -= len(_cache.popitem(last=False)[1])
    return small
