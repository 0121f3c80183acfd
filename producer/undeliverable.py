"""Events no store will take (larger than the broker allows): kept in a folder, never in the way.

Limits are checked at the call, so nothing should ever land here; this is the net under that check
(an older spool, a broker whose ``max.message.bytes`` is below ``EXPSTREAM_MAX_EVENT_BYTES``). What
lands here is an Avro message as it would have been sent, next to a JSON note saying why, so that a
person can inspect it and replay it (``expstream replay`` reads Avro messages) once the limit allows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

from expstream.localfiles import write_atomically

__all__ = ["keep"]

log = logging.getLogger("expstream")


def keep(folder: Path, topic: str, key: str, message: bytes, reason: str) -> Path:
    """Write ``message`` under ``folder`` (atomically, fsynced) and log where; returns its path."""
    name = f"{int(time.time() * 1000)}-{hashlib.sha256(message).hexdigest()[:16]}"
    path = folder / f"{name}.avro"
    write_atomically(path, message)
    note = {"topic": topic, "key": key, "bytes": len(message), "reason": reason}
    write_atomically(folder / f"{name}.json", json.dumps(note).encode())
    log.error("expstream: an event of %d bytes cannot be delivered (%s); it is kept in %s", len(message), reason, path)
    return path
