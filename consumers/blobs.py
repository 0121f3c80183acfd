"""Blob chunks → content-addressed objects, verified against the digest they claim before anyone sees them.

Every ``ArtifactChunk`` names the sha256 of its whole blob. Anything that can write to the log can
claim any digest, so a blob becomes visible (``blobs/<sha256>``) only once bytes that really hash to
that digest are there, and an existing blob is never replaced: a crafted upload under the digest of
someone's model can neither overwrite it nor take its place before it arrives.

* A blob in one chunk is checked by the materializer when the event is read (a mismatch is a
  malformed event, dead-lettered like any other).
* A blob in several chunks is stored as parts ``parts/<sha256>/<start>-<end>-<part digest>`` (the
  part's own digest in the key, so a crafted part never overwrites a good part of the same span).
  At the last chunk the parts that cover the blob end to end are composed with the digest checked
  while the object is written (:meth:`ObjectStore.compose` with ``sha256``); when several part sets
  cover it (uploads cut in chunks of different sizes, or a crafted part beside a good one), up to
  :data:`MAX_CHAINS` of them are tried. No set that hashes right: the blob is refused (the last
  chunk is dead-lettered with the reason) and the parts stay, so a good upload still completes.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from expstream.consumers.sinks.base import ObjectStore
from expstream.consumers.sinks.layout import blob_key, part_prefix
from expstream.exceptions import BlobIntegrityError

__all__ = ["MAX_CHAINS", "SHA256", "Refusal", "part_key", "write_chunks"]

log = logging.getLogger("expstream.consumer")

#: how many different part sets covering one blob are tried at its last chunk
MAX_CHAINS = 8
#: a blob's name: a lowercase hex sha256 (anything else could make an odd object key)
SHA256 = re.compile(r"[0-9a-f]{64}")


class Refusal(NamedTuple):
    """The last chunk of a blob whose parts do not hash to its digest, and why it was refused.

    ``data_sha256`` is the digest of that chunk's own bytes: a crafted last chunk and the genuine one
    share blob digest and offset, and only their bytes tell which record was refused."""

    sha256: str
    offset: int
    reason: str
    data_sha256: str


def part_key(sha256: str, offset: int, data: bytes) -> str:
    """The key of one part: its span, and its own digest so that parts with other bytes sit beside it."""
    return f"{part_prefix(sha256)}{offset:020d}-{offset + len(data):020d}-{hashlib.sha256(data).hexdigest()[:16]}"


def write_chunks(objects: ObjectStore, chunks: Sequence[tuple[str, int, int, bytes]]) -> list[Refusal]:
    """Write ``(sha256, offset, size, data)`` chunks; return the blobs refused (their last chunk).

    Whole-blob chunks are expected to be verified already (the materializer does it); they are
    written only when the blob is not there yet, so an existing blob is never replaced.
    """
    refused = []
    for sha256, offset, size, data in chunks:
        key = blob_key(sha256)
        if offset == 0 and len(data) == size:
            if not objects.exists(key):
                objects.put(key, data)
            continue
        objects.put(part_key(sha256, offset, data), data)
        if offset + len(data) != size:
            continue
        reason = _compose(objects, sha256, size)
        if reason is not None:
            log.warning("Blob %s refused: %s", sha256, reason)
            refused.append(Refusal(sha256, offset, reason, hashlib.sha256(data).hexdigest()))
    return refused


def _compose(objects: ObjectStore, sha256: str, size: int) -> str | None:
    """Compose the blob from its parts, checked; ``None`` when done, else why not."""
    key, prefix = blob_key(sha256), part_prefix(sha256)
    parts = objects.list(prefix)
    if objects.exists(key):  # already there (verified when it was written): the parts are leftovers
        _delete(objects, parts)
        return None
    tried = 0
    for chain in _chains(parts, prefix, size):
        tried += 1
        try:
            objects.compose(key, chain, sha256=sha256)
        except BlobIntegrityError:
            if tried >= MAX_CHAINS:
                break
            continue
        except KeyError:  # a part vanished (a concurrent consumer composed and cleaned up)
            return None if objects.exists(key) else "a part vanished while composing"
        _delete(objects, parts)
        return None
    if not tried:  # a chunk is missing: no blob rather than a wrong one; a re-upload completes it
        log.warning("Blob %s: last chunk came but not every part before it; not composed", sha256)
        return None
    return f"its chunks do not hash to sha256 {sha256} ({tried} part set(s) tried); the blob was not stored"


def _delete(objects: ObjectStore, parts: list[str]) -> None:
    for part in parts:
        objects.delete(part)


def _chains(parts: list[str], prefix: str, size: int) -> Iterator[list[str]]:
    """Lists of parts (``<start>-<end>[-<digest>]``) that cover ``[0, size)`` end to end, depth first.

    Uploads of one blob by several producers may have cut it in chunks of different sizes, and
    their parts may sit side by side: overlapping parts must not be concatenated. Parts ending
    further are tried first (fewer, larger parts: usually one producer's upload).
    """
    starting: dict[int, list[tuple[int, str]]] = {}
    for part in parts:
        fields = part[len(prefix) :].split("-")
        if len(fields) in (2, 3) and fields[0].isdigit() and fields[1].isdigit():
            start, end = int(fields[0]), int(fields[1])
            if start < end <= size:
                starting.setdefault(start, []).append((end, part))
    for options in starting.values():
        options.sort(key=lambda option: (-option[0], option[1]))
    stack: list[tuple[int, list[str]]] = [(0, [])]
    visits = 0
    while stack and visits < 64 * (len(parts) + 1):
        visits += 1
        at, chain = stack.pop()
        if at == size:
            yield chain
            continue
        for end, part in reversed(starting.get(at, [])):
            stack.append((end, [*chain, part]))
