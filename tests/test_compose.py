"""docker-compose.yml, checked statically (no Docker engine here): the services the README promises,
health checks, volumes, and client settings that match the servers' credentials and published ports."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from expstream.config import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_server_has_a_health_check_and_a_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "clickhouse", "minio", "consumer"} <= set(services)
    assert "zookeeper" not in services
    for name in ("kafka", "clickhouse", "minio"):
        assert services[name]["healthcheck"]["test"], name
        assert services[name]["volumes"], name
        volume = services[name]["volumes"][0].split(":")[0]
        assert volume in compose["volumes"], name


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
