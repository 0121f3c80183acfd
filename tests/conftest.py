"""Shared fixtures: every test gets its own EXPSTREAM_HOME and a clean module state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import expstream
from expstream.backend import StreamBackend


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty embedded home, with legacy globals reset before and after the test."""
    folder = tmp_path / "home"
    monkeypatch.setenv("EXPSTREAM_HOME", str(folder))
    monkeypatch.delenv("NEPTUNE_PROJECT", raising=False)
    monkeypatch.delenv("EXPSTREAM_PROJECT", raising=False)
    monkeypatch.delenv("NEPTUNE_BACKEND", raising=False)
    monkeypatch.chdir(tmp_path)
    _reset()
    yield folder
    _reset()


def _reset() -> None:
    for backend in list(expstream._backends.values()):
        backend.writer.close()
        reader = backend._reader
        if reader is not None:
            reader.tables.close()
    expstream._backends.clear()
    expstream.session = None
    expstream.project = None


@pytest.fixture
def backend(home: Path) -> StreamBackend:
    """The embedded backend of ``home``, as ``expstream.init`` builds it."""
    backend = expstream._default_backend(None, None)
    assert isinstance(backend, StreamBackend)
    return backend


@pytest.fixture
def project(home: Path) -> expstream.Project:
    return expstream.init("acme/sandbox")
