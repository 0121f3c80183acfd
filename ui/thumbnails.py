"""Gallery thumbnails: an image log's point can be up to 15 MB; the gallery shows it at most 360 px wide.

Sending the full image to every gallery slide would make the browser fetch and decode megabytes per step, so the
gallery asks for ``thumb=1`` and gets a PNG of at most :data:`SIZE` pixels a side (the full image is one click
away). Images already that small are sent as they are, byte for byte. Thumbnails are kept in a small in-process
cache keyed by the image's content, so stepping back and forth through a log decodes each image once.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict

from PIL import Image, UnidentifiedImageError

__all__ = ["SIZE", "thumbnail"]

#: longest side of a thumbnail, in pixels (twice the gallery's 360 CSS px, for sharp high-DPI screens)
SIZE = 720
_CACHED = 128
_cache: OrderedDict[str, bytes] = OrderedDict()
_lock = threading.Lock()


def thumbnail(data: bytes) -> bytes:
    """A PNG of ``data`` fitting SIZE x SIZE; ``data`` itself when it already fits or is not an image."""
    key = hashlib.sha256(data).hexdigest()
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    try:
        with Image.open(io.BytesIO(data)) as picture:
            if max(picture.size) <= SIZE:
                small = data
            else:
                picture.thumbnail((SIZE, SIZE))
                shown: Image.Image = picture
                if shown.mode not in ("RGB", "RGBA", "L", "LA"):
                    shown = shown.convert("RGBA")
                buffer = io.BytesIO()
                shown.save(buffer, format="PNG", optimize=False)
                small = buffer.getvalue()
    except (UnidentifiedImageError, OSError, ValueError):  # not an image Pillow reads: the browser may
        small = data
    with _lock:
        _cache[key] = small
        while len(_cache) > _CACHED:
            _cache.popitem(last=False)
    return small
