"""The cluster group: 3 Kafka brokers (KRaft), ZooKeeper and 2 x 2 ClickHouse servers, started once per session.

``deploy/services/cluster.py`` installs (cached) and starts the cluster on free loopback ports; objects go to the
S3 server of the ``services`` fixture. ``EXPSTREAM_TEST_CLUSTER=<state file>`` uses a cluster that cluster.py
already runs; ``EXPSTREAM_TEST_CLUSTER=off`` skips the group.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from expstream.config import Settings
from tests.conftest import _consumer, _installation


def cluster_module() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "deploy" / "services" / "cluster.py"
    spec = importlib.util.spec_from_file_location("expstream_cluster", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The running cluster's state (``nodes``, ``env``), with ``state_path`` and the ``cluster`` module."""
    existing = os.environ.get("EXPSTREAM_TEST_CLUSTER", "")
    if existing.lower() in ("off", "0", "no"):
        pytest.skip("EXPSTREAM_TEST_CLUSTER=off: the cluster group is skipped")
    module = cluster_module()
    if existing:
        yield module.load_state(existing) | {"state_path": existing, "cluster": module}
        return
    state_path = tmp_path_factory.mktemp("cluster") / "cluster.json"
    module.install()
    state = module.start(state_path)
    try:
        yield state | {"state_path": str(state_path), "cluster": module}
    finally:
        module.stop(None, state_path)


@pytest.fixture
def on_cluster(
    real_cluster: dict[str, Any], services: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """A fresh installation on the cluster (own topics, group, database) with the shared S3 for objects."""
    env = dict(real_cluster["env"]) | {k: v for k, v in services["env"].items() if k.startswith("EXPSTREAM_S3")}
    yield from _installation(env, tmp_path, monkeypatch)


@pytest.fixture
def cluster_consumer(on_cluster: Settings) -> Iterator[object]:
    """One consumer service materializing into the sharded tables, in a thread."""
    yield from _consumer(on_cluster)
