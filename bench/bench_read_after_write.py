"""What a read right after a write costs: ``append_tag`` then ``get_tags()``, ``set_property`` then
``get_properties()``, ``log_metric`` then ``get_numeric_channels_values``, each pair ``--rounds`` times in a
loop, and a read with nothing new written, on the embedded default and on the cluster.

Legacy scripts assert right after writing (docs/legacy-behaviour.md#read-your-writes), so every such read
flushes this process's writes and waits until they are visible: on the embedded default the reader catches
chdb up with the local log; on the cluster the consumers must have materialized them in ClickHouse. The
functional side is tests/api/test_read_your_writes.py; this prints the figures.

    .venv/bin/python bench/bench_read_after_write.py [--rounds 100] [--backend embedded|distributed|both]

The cluster part uses the services of a ``deploy/services/provision.py`` state file (``--services``, default
``$EXPSTREAM_TEST_SERVICES``) with its own topics, database and bucket, and one consumer service in a thread
of this process (sharing its 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + path, "", ""))


def _summary(label: str, seconds: list[float]) -> str:
    warm = sorted(seconds[1:])
    return (
        f"  {label:<44} first {seconds[0] * 1e3:8.1f} ms | then median {statistics.median(warm) * 1e3:7.2f} ms, "
        f"p90 {warm[int(len(warm) * 0.9)] * 1e3:7.2f} ms, max {warm[-1] * 1e3:7.2f} ms"
    )


def _measure(rounds: int, step: Callable[[int], None]) -> list[float]:
    times = []
    for i in range(rounds):
        start = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - start)
    return times


def _run(label: str, rounds: int) -> None:
    import expstream

    expstream.init("bench/read-after-write")
    exp = expstream.create_experiment(name="raw", upload_source_files=[], send_hardware_metrics=False)
    exp.get_tags()  # opens the query side (chdb load / ClickHouse connection) outside the figures

    def tag(i: int) -> None:
        exp.append_tag(f"t{i}")
        assert f"t{i}" in exp.get_tags()

    def prop(i: int) -> None:
        exp.set_property("step", i)
        assert exp.get_properties()["step"] == str(i)

    def metric(i: int) -> None:
        exp.log_metric("loss", i, 1.0 / (i + 1))
        assert len(exp.get_numeric_channels_values("loss")) == i + 1

    def new_log(i: int) -> None:
        exp.log_metric(f"new{i}", 0, 1.0)
        assert f"new{i}" in exp.get_logs()

    def read_only(i: int) -> None:
        exp.get_tags()

    print(f"{label}, {rounds} rounds each:")
    print(_summary("append_tag → get_tags()", _measure(rounds, tag)))
    print(_summary("set_property → get_properties()", _measure(rounds, prop)))
    print(_summary("log_metric → get_numeric_channels_values", _measure(rounds, metric)))
    print(_summary("first log_metric of a log → get_logs()", _measure(rounds, new_log)))
    print(_summary("get_tags() with nothing new written", _measure(rounds, read_only)))
    exp.stop()


def embedded(rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="expstream-bench-raw-") as folder:
        os.environ["EXPSTREAM_HOME"] = str(Path(folder) / "home")
        _run("embedded (local log → chdb)", rounds)


def distributed(rounds: int, state_file: str) -> None:
    state = json.loads(Path(state_file).read_text())
    env = state["env"]
    tag = uuid.uuid4().hex[:10]
    folder = tempfile.mkdtemp(prefix="expstream-bench-raw-")
    os.environ.update(env)
    os.environ.update(
        EXPSTREAM_HOME=str(Path(folder) / "home"),
        EXPSTREAM_KAFKA_TOPIC_PREFIX=f"bench{tag}",
        EXPSTREAM_KAFKA_PARTITIONS="4",
        EXPSTREAM_CONSUMER_GROUP=f"bench{tag}",
        EXPSTREAM_CLICKHOUSE=_with_path(env["EXPSTREAM_CLICKHOUSE"], f"bench_{tag}"),
        EXPSTREAM_S3=_with_path(env["EXPSTREAM_S3"], f"bench-{tag}"),
    )
    from expstream.config import load_settings
    from expstream.wiring import consumer_runner

    runner = consumer_runner(load_settings())
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    thread.start()
    try:
        _run("distributed (Kafka → consumer → ClickHouse 18.16), one consumer thread", rounds)
    finally:
        stop.set()
        thread.join(timeout=30)
        runner.source.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--backend", choices=["embedded", "distributed", "both"], default="both")
    parser.add_argument("--services", default=os.environ.get("EXPSTREAM_TEST_SERVICES"), help="provision.py state")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.backend in ("embedded", "both"):
        embedded(args.rounds)
    if args.backend in ("distributed", "both"):
        if not args.services or not Path(args.services).is_file():
            parser.error("the cluster part needs --services STATE (a deploy/services/provision.py state file)")
        for name in ("EXPSTREAM_KAFKA", "EXPSTREAM_CLICKHOUSE", "EXPSTREAM_S3"):
            os.environ.pop(name, None)
        distributed(args.rounds, args.services)


if __name__ == "__main__":
    main()
