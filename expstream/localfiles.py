"""Small state files under ``EXPSTREAM_HOME``: written so a crash cannot damage them, read so damage is not fatal.

Why: consumer positions, log metadata and counters are rewritten often, and a process killed in
the middle of a plain ``write`` leaves a half file that used to make every later read fail. A
file is written to a temporary sibling, fsynced, and moved over the old one with ``os.replace``
(atomic on POSIX), then the folder is fsynced so the new name survives a crash too. Readers of
cache-like files use :func:`read_json_or_none`: damage gives a warning naming the file and None,
and the caller rebuilds what the file only cached.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

__all__ = ["read_json_or_none", "write_atomically"]

logger = logging.getLogger("expstream.localfiles")


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: readers see the old content or the new one, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:  # some filesystems cannot fsync a folder; the data itself is synced
        pass
    finally:
        os.close(dir_fd)


def read_json_or_none(path: Path, what: str, instead: str) -> Any:
    """The JSON in ``path``; None when it is missing, or damaged (then with a warning naming it).

    ``what`` says in the warning what the file holds, ``instead`` what happens instead."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        logger.warning("ignoring damaged %s %s (%s); %s", what, path, exc, instead)
        return None
