"""deploy/services/cluster.py without starting anything: the layout each node's configuration describes."""

from __future__ import annotations

import importlib.util
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def cluster_module() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "deploy" / "services" / "cluster.py"
    spec = importlib.util.spec_from_file_location("expstream_cluster", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fresh() -> Iterator[tuple[ModuleType, dict[str, Any]]]:
    module = cluster_module()
    state = module._new_state()
    yield module, state
    for node in state["nodes"].values():
        shutil.rmtree(node["data_dir"], ignore_errors=True)


def test_two_shards_of_two_replicas_with_their_own_macros(fresh: tuple[ModuleType, dict[str, Any]]) -> None:
    module, state = fresh
    ports = {name: node["port"] for name, node in state["nodes"].items()}
    assert len(set(ports.values())) == len(ports)  # every node on its own port
    for name, shard in module.CLICKHOUSE_NODES:
        config = ET.fromstring(module._cluster_xml(state["nodes"][name], name, state))
        shards = config.findall(f"remote_servers/{module.CLUSTER}/shard")
        assert [[int(p.text or 0) for p in s.findall("replica/port")] for s in shards] == [
            [ports["clickhouse-1"], ports["clickhouse-2"]],
            [ports["clickhouse-3"], ports["clickhouse-4"]],
        ]
        assert all(s.findtext("internal_replication") == "true" for s in shards)  # the replicas copy, not Distributed
        assert config.findtext("macros/shard") == f"{shard:02d}" and config.findtext("macros/replica") == name
        assert int(config.findtext("zookeeper/node/port") or 0) == ports["zookeeper"]
        assert config.findtext("distributed_ddl/path")


def test_the_brokers_form_one_controller_quorum(
    fresh: tuple[ModuleType, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    module, state = fresh
    home = Path(state["nodes"]["kafka-1"]["data_dir"]) / "fake-kafka"
    monkeypatch.setattr(module.provision, "kafka_home", lambda: home)
    monkeypatch.setattr(module.provision, "_run", lambda cmd: None)  # no storage format: nothing is started
    voters = set()
    for i, name in enumerate(module.KAFKA_NODES, 1):
        node = state["nodes"][name]
        module._kafka_prepare(node, state)
        lines = (Path(node["data_dir"]) / "server.properties").read_text().splitlines()
        props = dict(line.split("=", 1) for line in lines)
        assert props["node.id"] == str(i) and props["process.roles"] == "broker,controller"
        assert props["offsets.topic.replication.factor"] == "3"
        voters.add(props["controller.quorum.voters"])
    assert len(voters) == 1 and voters.pop().count("@127.0.0.1:") == 3
