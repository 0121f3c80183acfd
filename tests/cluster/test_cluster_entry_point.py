"""The ClickHouse server of EXPSTREAM_CLICKHOUSE down on the cluster: the single entry point, as the README says.

The other three servers hold every row, but expstream only talks to the first: reads fail fast with StorageError,
logging goes on (events wait in Kafka), the consumers back off, and once the server is back every point is visible
exactly once.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest

import expstream
from expstream.config import Settings
from expstream.exceptions import StorageError
from tests.conftest import QUIET

ROUNDS, PER_ROUND = 40, 250


def test_the_entry_point_server_down_while_a_client_logs(
    on_cluster: Settings, cluster_consumer: Any, real_cluster: dict[str, Any]
) -> None:
    cluster, state_path = real_cluster["cluster"], real_cluster["state_path"]
    expstream.init("acme/entry")
    exp = expstream.create_experiment("entry-down", **QUIET)  # type: ignore[arg-type]
    exp.log_metric("m0", 0, 0.0)
    exp.sync(timeout=120)  # the schema exists and the consumer runs before the server goes
    halfway = threading.Event()

    def log() -> None:
        for r in range(ROUNDS):
            for i in range(max(1, r * PER_ROUND), (r + 1) * PER_ROUND):
                exp.log_metric("m0", i, float(i * 10))
            if r == ROUNDS // 4:
                halfway.set()
            time.sleep(0.25)  # 10 s of logging: the outage is in the middle of it

    logger = threading.Thread(target=log)
    logger.start()
    assert halfway.wait(timeout=60)
    cluster.stop(["clickhouse-1"], state_path, keep_data=True)
    try:
        started = time.monotonic()
        port = cluster.load_state(state_path)["nodes"]["clickhouse-1"]["port"]
        with pytest.raises(StorageError, match=re.escape(f"127.0.0.1:{port}")):  # names the server, no hang
            exp.get_numeric_channels_values("m0")
        assert time.monotonic() - started < 30
        logger.join(timeout=120)
        assert not logger.is_alive()
        exp.wait(timeout=60)  # logging went on: every event is durable in Kafka meanwhile
    finally:
        cluster.start(state_path)
    exp.stop()
    exp.sync(timeout=240)  # the consumer retried with backoff and caught up
    n = ROUNDS * PER_ROUND
    values = exp.get_numeric_channels_values("m0")
    assert values["x"].tolist() == [float(i) for i in range(n)]
    assert values["m0"].tolist() == [float(i * 10) for i in range(n)]
    counts = exp._backend.reader.tables.query_df(
        "SELECT count() AS n FROM points_numeric FINAL WHERE experiment_id = {e:String} AND namespace = 'user'",
        {"e": exp.internal_id},
    )
    assert int(counts["n"].iloc[0]) == n
