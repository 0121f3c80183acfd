"""ui/thumbnails.py on its own: sizes, images passed through as they are, clear errors, the cache's bound."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from expstream.ui import thumbnails
from expstream.ui.thumbnails import SIZE, NotAnImage, thumbnail


def _png(width: int, height: int, mode: str = "RGB", seed: int = 0) -> bytes:
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels.squeeze(), mode=mode).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


@pytest.mark.parametrize(("width", "height", "mode"), [(1500, 400, "RGB"), (300, 2000, "RGBA"), (721, 721, "L")])
def test_a_big_image_becomes_a_png_at_most_size_a_side(width: int, height: int, mode: str) -> None:
    small = Image.open(io.BytesIO(thumbnail(_png(width, height, mode))))
    assert small.format == "PNG" and max(small.size) == SIZE and small.mode == mode
    assert abs(small.size[0] / small.size[1] - width / height) < 0.02  # the same shape


def test_an_image_that_fits_comes_back_as_it_is() -> None:
    data = _png(SIZE, 200)
    assert thumbnail(data) is data


@pytest.mark.parametrize("data", [b"not an image", b"", _png(1000, 800)[:5000]], ids=["text", "empty", "truncated"])
def test_what_pillow_cannot_read_is_not_an_image(data: bytes) -> None:
    with pytest.raises(NotAnImage, match=r"not an image the UI can read.*without thumb=1"):
        thumbnail(data)


def test_too_many_pixels_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000 * 800 - 1)
    with pytest.warns(Image.DecompressionBombWarning), pytest.raises(NotAnImage, match="1000 x 800 pixels"):
        thumbnail(_png(1000, 800, seed=5))


def test_the_cache_keeps_at_most_cache_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thumbnails, "_cache", type(thumbnails._cache)())
    monkeypatch.setattr(thumbnails, "_cached_bytes", 0)
    first = thumbnail(_png(1000, 1000, seed=1))
    monkeypatch.setattr(thumbnails, "CACHE_BYTES", int(len(first) * 2.5))
    made = [first] + [thumbnail(_png(1000, 1000, seed=seed)) for seed in (2, 3, 4)]
    assert len(thumbnails._cache) == 2 and thumbnails._cached_bytes == sum(len(t) for t in made[-2:])
    assert thumbnail(_png(1000, 1000, seed=4)) is made[-1]  # a hit: the same object, not made again


def test_a_thumbnail_is_found_by_the_digest_the_store_addresses_the_image_by(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thumbnails, "_cache", type(thumbnails._cache)())
    monkeypatch.setattr(thumbnails, "_cached_bytes", 0)
    data = _png(1000, 1000, seed=6)
    digest = hashlib.sha256(data).hexdigest()
    assert thumbnails.cached(digest) is None
    made = thumbnail(data, digest)
    assert thumbnails.cached(digest) is made  # the next request skips reading the 1000 x 1000 image
    assert thumbnail(data) is made  # the same key when the digest is computed here
