"""Fixtures of the legacy-API tests: one running experiment on the embedded default, and a sync helper."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import expstream
from expstream.backend import StreamBackend
from expstream.experiments import Experiment

Sync = Callable[..., None]


@pytest.fixture(autouse=True)
def _stop_leftovers(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Stop every experiment a test left running, while its writer is still open (before ``home`` resets).

    Running experiments hold an excepthook, stdout/stderr mirrors and monitoring threads; projects
    replaced by a later ``init`` are tracked too, so none of them is left for the exit hooks.
    """
    created: list[expstream.Project] = []
    original = expstream.Project.__init__

    @functools.wraps(original)
    def tracking_init(self: expstream.Project, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        created.append(self)

    monkeypatch.setattr(expstream.Project, "__init__", tracking_init)
    previous = sys.excepthook
    yield
    for project in created:
        project._stop_all()
    sys.excepthook = previous


@pytest.fixture
def owner(monkeypatch: pytest.MonkeyPatch) -> str:
    """Experiments of this test are owned by 'alice'. Request it before any fixture that builds the backend."""
    monkeypatch.setenv("EXPSTREAM_OWNER", "alice")
    return "alice"


@pytest.fixture
def reading(backend: StreamBackend) -> Iterator[StreamBackend]:
    """The backend with its query side open, so ``sync()`` catches up in this process (no consumer process).

    The embedded database stays open for the whole test (one chdb session instead of one per read),
    which keeps the suite fast; tests that start a second reading process do not use this fixture.
    """
    with backend.reader.tables.hold():
        yield backend


@pytest.fixture
def sync(reading: StreamBackend) -> Sync:
    """``sync(exp, ...)``: make everything the experiments logged visible to queries."""

    def run(*experiments: Experiment) -> None:
        for experiment in experiments:
            experiment.sync(timeout=60)

    return run


@pytest.fixture
def exp(project: expstream.Project) -> Iterator[Experiment]:
    """A running experiment of acme/sandbox that uploads no sources; stopped after the test."""
    experiment = project.create_experiment(name="exp", upload_source_files=[])
    yield experiment
    experiment.stop()
