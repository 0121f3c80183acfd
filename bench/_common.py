"""Shared set-up for the benchmarks: a fresh embedded home in a temporary folder."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def fresh_home() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="expstream-bench-") as folder:
        os.environ["EXPSTREAM_HOME"] = os.path.join(folder, "home")
        yield folder
