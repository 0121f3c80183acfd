"""docker-compose.yml, checked statically (no Docker engine here): the services the README promises,
health checks, volumes, and client settings that match the servers' credentials and published ports."""

from __future__ import annotations

import importlib.util
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from expstream.config import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def single_node(compose: dict[str, Any]) -> dict[str, Any]:
    """The services `docker compose up` starts: those of no profile."""
    return {name: svc for name, svc in compose["services"].items() if not svc.get("profiles")}


def test_every_server_has_a_health_check_and_a_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "clickhouse", "minio", "consumer"} <= set(services)
    assert "zookeeper" not in single_node(compose)  # KRaft; only the cluster profile's ClickHouse needs one
    for name in ("kafka", "clickhouse", "minio"):
        assert services[name]["healthcheck"]["test"], name
        assert services[name]["volumes"], name
        volume = services[name]["volumes"][0].split(":")[0]
        assert volume in compose["volumes"], name


def test_the_file_follows_the_compose_specification() -> None:
    """Every key and value type against the Compose specification (the YAML merge keys resolved first, as
    Compose does): a misspelt key, a wrong condition or a malformed port is refused."""
    compose_spec = pytest.importorskip("compose_spec", reason="compose-spec has wheels for Linux x86_64 only")
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # resolves the `<<:` merge keys
    parsed = compose_spec.PyCompose.from_json(json.dumps(document))
    assert set(parsed.service_names()) == set(document["services"])
    broken = json.loads(json.dumps(document))
    broken["services"]["consumer-cluster"]["depends_on"]["minio"]["condition"] = "service_happy"
    with pytest.raises(ValueError, match="service_happy"):  # the check does check
        compose_spec.PyCompose.from_json(json.dumps(broken))
    for name, service in document["services"].items():  # what the specification leaves to the engine
        assert set(service.get("depends_on", {})) <= set(document["services"]), name


def test_kafka_runs_in_kraft_mode(compose: dict[str, Any]) -> None:
    env = compose["services"]["kafka"]["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env
    assert int(env["KAFKA_MESSAGE_MAX_BYTES"]) >= 8 << 20  # a blob chunk message fits


def test_consumers_wait_for_healthy_servers_and_run_the_consumer_group(compose: dict[str, Any]) -> None:
    consumer = compose["services"]["consumer"]
    assert "expstream consume" in consumer["command"]
    assert consumer["deploy"]["replicas"] >= 2
    assert {name: d["condition"] for name, d in consumer["depends_on"].items()} == {
        "kafka": "service_healthy",
        "clickhouse": "service_healthy",
        "minio": "service_healthy",
    }


def test_client_settings_match_the_servers(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = services["consumer"]["environment"]
    settings = Settings(
        kafka=env["EXPSTREAM_KAFKA"], clickhouse=env["EXPSTREAM_CLICKHOUSE"], s3=env["EXPSTREAM_S3"], home=Path("/x")
    )
    assert settings.distributed
    clickhouse = urlsplit(env["EXPSTREAM_CLICKHOUSE"])
    ch = services["clickhouse"]["environment"]
    assert (clickhouse.username, clickhouse.password, clickhouse.path.strip("/")) == (
        ch["CLICKHOUSE_USER"], ch["CLICKHOUSE_PASSWORD"], ch["CLICKHOUSE_DB"]
    )  # fmt: skip
    s3 = urlsplit(env["EXPSTREAM_S3"])
    minio = services["minio"]["environment"]
    assert (s3.username, s3.password) == (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"])
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert env["EXPSTREAM_KAFKA"] in advertised


def test_the_readme_host_exports_reach_the_published_ports(compose: dict[str, Any]) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Docker compose") :]
    exports = dict(re.findall(r"export (EXPSTREAM_\w+)=(\S+)", section))
    published = {
        name: {int(p.split(":")[0]): int(p.split(":")[1]) for p in svc.get("ports", [])}
        for name, svc in compose["services"].items()
    }
    inside = compose["services"]["consumer"]["environment"]
    kafka_port = int(exports["EXPSTREAM_KAFKA"].rsplit(":", 1)[1])
    assert f"127.0.0.1:{kafka_port}" in compose["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    for name, service, internal in (("EXPSTREAM_CLICKHOUSE", "clickhouse", 9000), ("EXPSTREAM_S3", "minio", 9000)):
        host, container = urlsplit(exports[name]), urlsplit(inside[name])
        assert published[service][host.port] == internal == container.port, name
        assert (host.username, host.password, host.path) == (container.username, container.password, container.path)


# --- the cluster profile: the layout of deploy/services/cluster.py in containers ---------------------------


def cluster_module() -> ModuleType:
    path = ROOT / "deploy" / "services" / "cluster.py"
    spec = importlib.util.spec_from_file_location("expstream_cluster_compose", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cluster() -> ModuleType:
    return cluster_module()


def profile(compose: dict[str, Any]) -> dict[str, Any]:
    return {name: svc for name, svc in compose["services"].items() if "cluster" in svc.get("profiles", [])}


def test_the_cluster_profile_has_the_nodes_of_the_provisioned_cluster(compose: dict[str, Any], cluster: Any) -> None:
    services = profile(compose)
    assert set(services) == set(cluster.node_names()) | {"consumer-cluster"}
    for name in cluster.node_names():
        assert services[name]["healthcheck"]["test"], name
        volume = services[name]["volumes"][0].split(":")[0]
        assert volume in compose["volumes"], name
    hosts = [p.split(":")[0] for svc in compose["services"].values() for p in svc.get("ports", [])]
    assert len(hosts) == len(set(hosts))  # the cluster's published ports do not collide with the single node's


def test_the_cluster_brokers_form_one_kraft_quorum_replicating_like_the_provisioned_one(
    compose: dict[str, Any], cluster: Any
) -> None:
    services = profile(compose)
    brokers = {name: services[name]["environment"] for name in cluster.KAFKA_NODES}
    ids = {name: int(env["KAFKA_NODE_ID"]) for name, env in brokers.items()}
    assert sorted(ids.values()) == [1, 2, 3]
    voters = {f"{ids[name]}@{name}:9093" for name in cluster.KAFKA_NODES}
    for env in brokers.values():
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        assert "KAFKA_ZOOKEEPER_CONNECT" not in env
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == 2
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
        assert int(env["KAFKA_MESSAGE_MAX_BYTES"]) >= 8 << 20
    assert len({env["CLUSTER_ID"] for env in brokers.values()}) == 1
    consumer = services["consumer-cluster"]["environment"]
    for name, env in brokers.items():  # the consumers reach every broker at its advertised in-network listener
        docker = [a for a in env["KAFKA_ADVERTISED_LISTENERS"].split(",") if a.startswith("DOCKER://")]
        assert docker and docker[0].removeprefix("DOCKER://") in consumer["EXPSTREAM_KAFKA"].split(","), name


def test_the_cluster_clickhouse_servers_use_the_provisioned_clusters_config(
    compose: dict[str, Any], cluster: Any
) -> None:
    services = profile(compose)
    for name, shard in cluster.CLICKHOUSE_NODES:
        svc = services[name]
        assert svc["hostname"] == name == cluster.COMPOSE_ADDRESSES[name][0]  # the interserver host replicas use
        assert svc["depends_on"] == {"zookeeper": {"condition": "service_healthy"}}
        (mount,) = [v for v in svc["volumes"] if v.endswith(":/etc/clickhouse-server/config.d/cluster.xml:ro")]
        path = ROOT / mount.split(":")[0]
        # written by the function that configures the provisioned cluster, only the addresses differ
        assert path.read_text() == cluster.cluster_xml(name, shard, cluster.COMPOSE_ADDRESSES), (
            f"{path} is stale: run `python deploy/services/cluster.py compose-config`"
        )
        config = ET.fromstring(path.read_text())
        shards = config.findall(f"remote_servers/{cluster.CLUSTER}/shard")
        assert [[r.findtext("host") for r in s.findall("replica")] for s in shards] == [
            ["clickhouse-1", "clickhouse-2"],
            ["clickhouse-3", "clickhouse-4"],
        ]
        assert config.findtext("macros/replica") == name and config.findtext("macros/shard") == f"{shard:02d}"
        assert (config.findtext("zookeeper/node/host"), config.findtext("zookeeper/node/port")) == (
            "zookeeper", str(cluster.COMPOSE_ADDRESSES["zookeeper"][1])
        )  # fmt: skip
        version = svc["image"].rsplit(":", 1)[1]
        assert version.startswith("18.16")  # the ClickHouse the tests run the cluster DDL on


def test_the_cluster_consumers_create_the_sharded_schema(compose: dict[str, Any], cluster: Any) -> None:
    from expstream.consumers.sinks.base import cluster_ddl_statements

    consumer = profile(compose)["consumer-cluster"]
    env = consumer["environment"]
    assert "expstream consume" in consumer["command"] and consumer["deploy"]["replicas"] == 3
    assert ".:/app" in consumer["volumes"]  # the checkout's expstream, whose DDL is deploy/clickhouse/cluster/
    settings = Settings(
        kafka=env["EXPSTREAM_KAFKA"], clickhouse=env["EXPSTREAM_CLICKHOUSE"], s3=env["EXPSTREAM_S3"], home=Path("/x"),
        clickhouse_cluster=env["EXPSTREAM_CLICKHOUSE_CLUSTER"],
        kafka_replication_factor=env["EXPSTREAM_KAFKA_REPLICATION_FACTOR"],
        kafka_min_insync_replicas=env["EXPSTREAM_KAFKA_MIN_INSYNC_REPLICAS"],
    )  # fmt: skip
    assert settings.distributed and settings.clickhouse_cluster == cluster.CLUSTER
    assert (settings.kafka_replication_factor, settings.kafka_min_insync_replicas) == (3, 2)
    statements = cluster_ddl_statements(settings.clickhouse_cluster, "expstream")
    assert statements and all(f" ON CLUSTER {cluster.CLUSTER}" in s for s in statements)
    url = urlsplit(env["EXPSTREAM_CLICKHOUSE"])
    assert (url.hostname, url.port) == cluster.COMPOSE_ADDRESSES["clickhouse-1"]
    assert set(consumer["depends_on"]) == {*cluster.KAFKA_NODES, *(n for n, _ in cluster.CLICKHOUSE_NODES), "minio"}
    assert all(d["condition"] == "service_healthy" for d in consumer["depends_on"].values())


def test_the_compose_comment_exports_reach_the_cluster(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    section = text[text.index("`cluster` profile") : text.index("x-expstream")]
    exports = dict(re.findall(r"export (EXPSTREAM_\w+)=(\S+)", section))
    services = profile(compose)
    for address in exports["EXPSTREAM_KAFKA"].split(","):
        assert any(f"HOST://{address}" in services[n]["environment"]["KAFKA_ADVERTISED_LISTENERS"] for n in services
                   if n.startswith("kafka")), address  # fmt: skip
    host = urlsplit(exports["EXPSTREAM_CLICKHOUSE"])
    assert f"{host.port}:9000" in services["clickhouse-1"]["ports"]
    assert (
        exports["EXPSTREAM_CLICKHOUSE_CLUSTER"]
        == services["consumer-cluster"]["environment"]["EXPSTREAM_CLICKHOUSE_CLUSTER"]
    )
