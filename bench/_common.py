"""Shared set-up for the benchmarks: a fresh embedded home in a temporary folder."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def fresh_home() -> Iterator[str]:
    """A temporary folder with ``EXPSTREAM_HOME`` at its ``home``. The home's warm materializer is stopped before
    the folder goes: left running, it wrote into the folder while it was removed (``Directory not empty``) and
    weighed on the next benchmark's figures until it went idle."""
    with tempfile.TemporaryDirectory(prefix="expstream-bench-") as folder:
        home = Path(folder) / "home"
        os.environ["EXPSTREAM_HOME"] = str(home)
        try:
            yield folder
        finally:
            _stop_materializer(home)


def _stop_materializer(home: Path) -> None:
    """Close this process's writers first (closing one flushes, which may start the daemon again), then stop the
    daemon of ``home`` and any this process started."""
    import expstream
    from expstream.consumers.warm.client import stop_daemons

    for backend in list(expstream._backends.values()):
        backend.writer.close()
    stop_daemons(home)
