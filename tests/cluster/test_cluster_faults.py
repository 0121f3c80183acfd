"""Faults on the cluster, with exact counts: every point once, none missing."""

from __future__ import annotations

import threading
import time
from typing import Any

import expstream
from expstream.config import Settings
from expstream.producer.transports.kafka import kafka_options, physical_topic

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
