"""Fixtures of the distributed tests: ``expstream consume`` processes, ended after the test."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest


def start_consumer() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "expstream", "consume"], stderr=subprocess.DEVNULL)


@pytest.fixture
def consumers() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        proc.wait(timeout=30)
