"""Fixtures of the integration tests: third-party libraries driven through the ``neptune`` package.

``installation`` runs a test on the embedded default and, where a test asks for both, on the cluster
(shared Kafka, ClickHouse and S3, with a consumer service in a thread).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import expstream


def _stop_leftovers() -> None:
    """Stop what a test left running while its writer is still open (before the installation resets)."""
    if isinstance(expstream.project, expstream.Project):
        expstream.project._stop_all()


@pytest.fixture
def embedded(home: Path) -> Iterator[str]:
    yield "embedded"
    _stop_leftovers()


@pytest.fixture
def distributed(cluster: object, consumer: object) -> Iterator[str]:
    yield "distributed"
    _stop_leftovers()


@pytest.fixture(params=["embedded", "distributed"])
def installation(request: pytest.FixtureRequest) -> str:
    """Each backend in turn: the embedded default, then the cluster with one consumer service."""
    return str(request.getfixturevalue(request.param))
