"""The legacy API on the cluster: client → 3 Kafka brokers → consumer → 2 x 2 sharded ClickHouse → queries.

The single-server answer is built from the same events: the cluster's topics replayed into a database on the
single ClickHouse server. Every read of the legacy API must give the same answer from both, with exact counts.
"""

from __future__ import annotations

import io
import time
import uuid
from typing import Any

import pandas as pd

import expstream
from expstream.config import Settings
from expstream.consumers.replay import replay
from expstream.consumers.sinks.clickhouse import ClickHouseTables
from expstream.consumers.sinks.s3 import S3ObjectStore
from expstream.query.reader import Reader
from expstream.wiring import replay_source
from tests.conftest import with_path

POINTS = 1500
TABLES = ("experiments", "points_numeric", "points_text", "tags", "events", "consumer_progress")


def single_server_url(services: dict) -> str:
    """A fresh database on the single ClickHouse server of the ``services`` fixture."""
    return with_path(services["env"]["EXPSTREAM_CLICKHOUSE"], f"db_ref_{uuid.uuid4().hex[:10]}")


def log_experiment(i: int) -> expstream.Experiment:
    exp = expstream.create_experiment(
        f"run-{i}",
        params={"lr": 0.1 * (i + 1), "arch": f"net{i % 3}"},
        properties={"host": f"h{i}"},
        tags=["fleet", f"group{i % 2}"],
        upload_source_files=[],
        send_hardware_metrics=False,
    )
    for x in range(POINTS):
        exp.log_metric("loss", x, float(POINTS - x) / (i + 1))
    for x in range(0, POINTS, 10):
        exp.log_metric("acc", x, x / POINTS)
    exp.log_text("notes", f"experiment {i}: it's ünïcode")
    if i % 3 == 0:
        exp.log_metric("lr", 0, 1.0)
        exp.reset_log("lr")  # a second generation: only its points count
        exp.log_metric("lr", 5, 0.5)
        exp.log_artifact(io.BytesIO(bytes([i]) * 1000), f"model/{i}.bin")
    exp.append_tag(f"t{i}")
    exp.set_property("done", i % 2 == 0)
    exp.stop()
    return exp


def shard_of(tables: ClickHouseTables, experiment_id: str) -> int:
    """The shard index (0, 1) the Distributed tables' sharding key sends this experiment to (weights 1, 1)."""
    df = tables.query_df("SELECT sipHash64({e:String}) % 2 AS shard", {"e": experiment_id})
    return int(df["shard"].iloc[0])


def local_counts(real_cluster: dict[str, Any], database: str) -> dict[str, dict[str, int]]:
    """{node: {experiment_id: numeric points (FINAL)}} of each server's local table, replicas synced first."""
    out = {}
    for name, node in real_cluster["nodes"].items():
        if not name.startswith("clickhouse"):
            continue
        local = ClickHouseTables("127.0.0.1", node["port"], database=database)
        try:
            local.query_df(f"SYSTEM SYNC REPLICA {database}.points_numeric_local")
            df = local.query_df(
                "SELECT experiment_id, count() AS n FROM points_numeric_local FINAL "
                "WHERE namespace = 'user' GROUP BY experiment_id"
            )
            out[name] = dict(zip(df["experiment_id"], df["n"].astype(int), strict=True))
        finally:
            local.close()
    return out


def test_legacy_queries_on_the_sharded_cluster_equal_the_single_server(
    on_cluster: Settings, cluster_consumer: Any, services: dict, real_cluster: dict[str, Any]
) -> None:
    project = expstream.init("acme/shards")
    exps = [log_experiment(i) for i in range(6)]
    cluster_reader: Reader = exps[0]._backend.reader  # opens the reader over the Distributed tables
    shards = {shard_of(cluster_reader.tables, e.internal_id) for e in exps}  # type: ignore[arg-type]
    while shards != {0, 1} and len(exps) < 24:  # both shards hold experiments (each has a half chance)
        exps.append(log_experiment(len(exps)))
        shards.add(shard_of(cluster_reader.tables, exps[-1].internal_id))  # type: ignore[arg-type]
    for exp in exps:
        exp.sync(timeout=120)

    ref_tables = ClickHouseTables.from_url(single_server_url(services))
    objects = S3ObjectStore.from_url(on_cluster.s3.get_secret_value(), ca=on_cluster.s3_ca)  # type: ignore[union-attr]
    assert replay(replay_source(on_cluster), ref_tables, objects, group="reference") > 0
    reference = Reader(ref_tables, objects)

    # exact counts: every point once, on the cluster as on the single server
    for exp in exps:
        values = exp.get_numeric_channels_values("loss", "acc")
        assert len(values) == POINTS and values["acc"].count() == POINTS // 10
    expected = len(exps) * (POINTS + POINTS // 10) + 2 * len(exps[::3])  # lr: one point per generation
    for reader in (cluster_reader, reference):
        total = reader.tables.query_df("SELECT count() AS n FROM points_numeric FINAL WHERE namespace = 'user'")
        assert int(total["n"].iloc[0]) == expected

    # every read of the legacy API gives the single server's answer
    now = time.time()
    for exp in exps:
        e = exp.internal_id
        assert cluster_reader.experiment(e) == reference.experiment(e)
        assert cluster_reader.system_properties(e) == reference.system_properties(e)
        assert (
            cluster_reader.tags(e)
            == reference.tags(e)
            == sorted(["fleet", f"group{exps.index(exp) % 2}", f"t{exps.index(exp)}"])
        )
        assert cluster_reader.properties(e) == reference.properties(e)
        assert cluster_reader.parameters(e) == reference.parameters(e)
        assert cluster_reader.artifacts(e) == reference.artifacts(e)
        assert cluster_reader.sources(e) == reference.sources(e)
        for namespace in ("user", "system"):
            assert cluster_reader.channels(e, namespace) == reference.channels(e, namespace)
        names = [c.name for c in cluster_reader.channels(e) if c.channelType == "numeric"]
        pd.testing.assert_frame_equal(cluster_reader.numeric_values(e, names), reference.numeric_values(e, names))
        pd.testing.assert_frame_equal(cluster_reader.hardware_utilization(e), reference.hardware_utilization(e))
    assert [exp.get_logs()["notes"].y for exp in exps] == [f"experiment {i}: it's ünïcode" for i in range(len(exps))]
    for tags in (None, ["fleet"], ["group1"], ["group0", "t0"]):
        found = cluster_reader.find_experiments("acme/shards", tags=tags, now=now)
        assert found == reference.find_experiments("acme/shards", tags=tags, now=now)
        pd.testing.assert_frame_equal(
            cluster_reader.leaderboard("acme/shards", tags=tags, now=now),
            reference.leaderboard("acme/shards", tags=tags, now=now),
        )
    assert [e.id for e in project.get_experiments(tag="group1")] == [e.id for e in exps[1::2]]
    assert cluster_reader.owners("acme/shards") == reference.owners("acme/shards")
    assert cluster_reader.projects() == reference.projects() == ["acme/shards"]

    # one experiment lives on one shard, both replicas of a shard hold the same rows, both shards are used
    counts = local_counts(real_cluster, cluster_reader.tables.database)
    assert counts["clickhouse-1"] == counts["clickhouse-2"] and counts["clickhouse-3"] == counts["clickhouse-4"]
    assert counts["clickhouse-1"] and counts["clickhouse-3"]
    assert not set(counts["clickhouse-1"]) & set(counts["clickhouse-3"])
    assert {**counts["clickhouse-1"], **counts["clickhouse-3"]} == {
        e.internal_id: POINTS + POINTS // 10 + (2 if i % 3 == 0 else 0) for i, e in enumerate(exps)
    }
    ref_tables.close()
