"""Fixtures of the legacy-API tests: one running experiment on the embedded default, and a sync helper."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pytest

import expstream
from expstream.backend import StreamBackend
from expstream.experiments import Experiment

Sync = Callable[..., None]


@pytest.fixture(autouse=True)
def _restore_excepthook() -> Iterator[None]:
    """Experiments install an excepthook; one a test leaves running must not leak into the next test."""
    previous = sys.excepthook
    yield
    current = expstream.project
    if isinstance(current, expstream.Project):
        current._stop_all()
    sys.excepthook = previous


@pytest.fixture
def reading(backend: StreamBackend) -> StreamBackend:
    """The backend with its query side opened, so ``sync()`` catches up in this process (no consumer process)."""
    assert backend.reader is not None
    return backend


@pytest.fixture
def sync(reading: StreamBackend) -> Sync:
    """``sync(exp, ...)``: make everything the experiments logged visible to queries."""

    def run(*experiments: Experiment) -> None:
        for experiment in experiments:
            experiment.sync(timeout=60)

    return run


@pytest.fixture
def exp(project: expstream.Project, reading: StreamBackend) -> Iterator[Experiment]:
    """A running experiment of acme/sandbox that uploads no sources; stopped after the test."""
    experiment = project.create_experiment(name="exp", upload_source_files=[])
    yield experiment
    experiment.stop()
