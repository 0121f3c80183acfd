"""Faults on the cluster, with exact counts: every point once, none missing."""

from __future__ import annotations

import threading
import time
from typing import Any

import expstream
from expstream.config import Settings
from expstream.eventlog.kafka import kafka_options, physical_topic

ROUNDS, PER_ROUND, CHANNELS = 40, 250, 2


def partitions_with_data(settings: Settings, topic: str) -> list[int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**kafka_options(settings), group_id=None)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        return [tp.partition for tp, end in consumer.end_offsets(parts).items() if end > 0]
    finally:
        consumer.close()


def test_partition_leader_sigkilled_while_a_client_logs(
    on_cluster: Settings, cluster_consumer: Any, real_cluster: dict[str, Any]
) -> None:
    cluster, state_path = real_cluster["cluster"], real_cluster["state_path"]
    expstream.init("acme/faults")
    exp = expstream.create_experiment("leader-killed", upload_source_files=[], send_hardware_metrics=False)
    exp.log_metric("m0", 0, 0.0)
    exp.wait(timeout=60)
    topic = physical_topic(on_cluster, "expstream.events")
    (partition,) = partitions_with_data(on_cluster, topic)  # the experiment's partition (its key)
    leader = cluster.kafka_leaders(cluster.load_state(state_path), topic)[partition]

    halfway = threading.Event()

    def log() -> None:
        for r in range(ROUNDS):
            for i in range(r * PER_ROUND + (r == 0), (r + 1) * PER_ROUND):  # x = 0 is logged above
                for c in range(CHANNELS):
                    exp.log_metric(f"m{c}", i, float(i * 10 + c))
            if r == ROUNDS // 4:
                halfway.set()
            time.sleep(0.1)

    logger = threading.Thread(target=log)
    logger.start()
    assert halfway.wait(timeout=60)
    cluster.kill([leader], state_path)  # SIGKILL: no clean shutdown, no leadership handed over
    logger.join(timeout=120)
    assert not logger.is_alive()
    deadline = time.monotonic() + 60  # the controller notices the dead broker and elects another leader
    while cluster.kafka_leaders(cluster.load_state(state_path), topic)[partition] in (leader, ""):
        assert time.monotonic() < deadline, f"{leader} still leads partition {partition}"
        time.sleep(0.5)
    cluster.start(state_path)  # the broker comes back on its ports with its data and catches up
    exp.stop()
    exp.sync(timeout=180)

    n = ROUNDS * PER_ROUND
    values = exp.get_numeric_channels_values(*[f"m{c}" for c in range(CHANNELS)])
    assert values["x"].tolist() == [float(i) for i in range(n)]
    assert values["m0"].tolist() == [float(i * 10) for i in range(n)]
    assert values["m1"].iloc[1:].tolist() == [float(i * 10 + 1) for i in range(1, n)]
    counts = exp._backend.reader.tables.query_df(
        "SELECT channel, count() AS n FROM points_numeric FINAL WHERE experiment_id = {e:String} "
        "AND namespace = 'user' GROUP BY channel ORDER BY channel",
        {"e": exp.internal_id},
    )
    assert counts["n"].astype(int).tolist() == [n, n - 1]  # m1 has no x = 0


def test_clickhouse_replica_stopped_while_consumers_write_and_queries_run(
    on_cluster: Settings, cluster_consumer: Any, real_cluster: dict[str, Any]
) -> None:
    from expstream.consumers.sinks.clickhouse import ClickHouseTables

    cluster, state_path = real_cluster["cluster"], real_cluster["state_path"]
    expstream.init("acme/faults")
    for attempt in range(24):  # an experiment of shard 2, whose first replica (clickhouse-3) is stopped below
        exp = expstream.create_experiment(f"replica-{attempt}", upload_source_files=[], send_hardware_metrics=False)
        tables = exp._backend.reader.tables
        shard = tables.query_df("SELECT sipHash64({e:String}) % 2 AS s", {"e": exp.internal_id})["s"].iloc[0]
        if int(shard) == 1:
            break
        exp.stop()
    else:
        raise AssertionError("no experiment landed on shard 2")

    halfway, done, failures, reads = threading.Event(), threading.Event(), [], []

    def log() -> None:
        for r in range(ROUNDS):
            for i in range(r * PER_ROUND, (r + 1) * PER_ROUND):
                exp.log_metric("m0", i, float(i * 10))
            if r == ROUNDS // 4:
                halfway.set()
            time.sleep(0.1)

    def query() -> None:  # an analyst reading while the replica is down
        while not done.is_set():
            try:
                reads.append(len(exp.get_numeric_channels_values("m0")))
            except Exception as exc:  # every failed read is a finding
                failures.append(exc)
            time.sleep(0.2)

    logger, reader = threading.Thread(target=log), threading.Thread(target=query)
    logger.start()
    assert halfway.wait(timeout=60)
    cluster.stop(["clickhouse-3"], state_path, keep_data=True)
    reader.start()
    logger.join(timeout=120)
    exp.stop()
    exp.sync(timeout=180)
    done.set()
    reader.join(timeout=60)
    n = ROUNDS * PER_ROUND
    assert not failures and reads and reads == sorted(reads)  # reads went on (on clickhouse-4), never back in time
    # Replication is asynchronous: rows clickhouse-3 took just before it stopped, and clickhouse-4 had not fetched
    # yet, show again when it is back. The exact counts are asserted once it has caught up.
    cluster.start(state_path)  # clickhouse-3 back with its data: it fetches what it missed from clickhouse-4
    nodes = cluster.load_state(state_path)["nodes"]
    counts = []
    for name in ("clickhouse-3", "clickhouse-4"):
        local = ClickHouseTables("127.0.0.1", nodes[name]["port"], database=tables.database)
        try:
            local.query_df(f"SYSTEM SYNC REPLICA {tables.database}.points_numeric_local")
            df = local.query_df(
                "SELECT count() AS n FROM points_numeric_local FINAL WHERE experiment_id = {e:String} "
                "AND namespace = 'user'",
                {"e": exp.internal_id},
            )
            counts.append(int(df["n"].iloc[0]))
        finally:
            local.close()
    assert counts == [n, n]
    values = exp.get_numeric_channels_values("m0")  # through the Distributed table, clickhouse-3 first again
    assert values["x"].tolist() == [float(i) for i in range(n)]
    assert values["m0"].tolist() == [float(i * 10) for i in range(n)]


def test_zookeeper_stopped_for_20_seconds_while_consumers_write(
    on_cluster: Settings, cluster_consumer: Any, real_cluster: dict[str, Any]
) -> None:
    cluster, state_path = real_cluster["cluster"], real_cluster["state_path"]
    expstream.init("acme/faults")
    exp = expstream.create_experiment("zookeeper-down", upload_source_files=[], send_hardware_metrics=False)
    halfway = threading.Event()

    def log() -> None:
        for r in range(ROUNDS):
            for i in range(r * PER_ROUND, (r + 1) * PER_ROUND):
                exp.log_metric("m0", i, float(i * 10))
            if r == ROUNDS // 4:
                halfway.set()
            time.sleep(0.5)  # 20 s of logging: the outage is in the middle of it

    logger = threading.Thread(target=log)
    logger.start()
    assert halfway.wait(timeout=60)
    cluster.stop(["zookeeper"], state_path, keep_data=True)  # replicated tables turn read-only: inserts back off
    time.sleep(20)
    cluster.start(state_path)
    logger.join(timeout=120)
    exp.stop()
    exp.sync(timeout=240)
    n = ROUNDS * PER_ROUND
    values = exp.get_numeric_channels_values("m0")
    assert values["x"].tolist() == [float(i) for i in range(n)]
    assert values["m0"].tolist() == [float(i * 10) for i in range(n)]
    counts = exp._backend.reader.tables.query_df(
        "SELECT count() AS n FROM points_numeric FINAL WHERE experiment_id = {e:String} AND namespace = 'user'",
        {"e": exp.internal_id},
    )
    assert int(counts["n"].iloc[0]) == n
