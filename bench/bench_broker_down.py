"""``log_metric`` call times while the Kafka broker is down: the client must never wait for Kafka.

Starts a private broker with deploy/services/provision.py (never a shared one: this stops it), logs
about once a millisecond through the Kafka transport (the same ``ExperimentStream.log_metric`` that
``Experiment.log_metric`` calls), stops the broker for ``--outage`` seconds, starts it again, waits
until the spool has drained, and prints the call times. The functional side (every point arrives
exactly once, in order) is tests/producer/transports/test_kafka_spool.py; this prints the figures.

    .venv/bin/python bench/bench_broker_down.py [--outage 20]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _provision() -> ModuleType:
    spec = importlib.util.spec_from_file_location("provision", ROOT / "deploy" / "services" / "provision.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _p(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))]


def _line(label: str, durations: list[float]) -> str:
    ordered = sorted(durations)
    return (
        f"{label}: {len(ordered)} calls, median {_p(ordered, 0.5) * 1e6:.1f} µs, "
        f"p99.9 {_p(ordered, 0.999) * 1e3:.3f} ms, max {ordered[-1] * 1e3:.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=20.0, help="seconds the broker stays down")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="expstream-bench-down-"))
    state_path = folder / "services.json"
    provision = _provision()
    provision.install(["kafka"])
    state = provision.start(["kafka"], state_path)
    try:
        os.environ.update(
            EXPSTREAM_HOME=str(folder / "home"),
            EXPSTREAM_KAFKA=state["env"]["EXPSTREAM_KAFKA"],
            EXPSTREAM_KAFKA_TOPIC_PREFIX=f"down{uuid.uuid4().hex[:8]}",
        )
        from expstream.config import load_settings
        from expstream.producer.transports.kafka import KafkaTransport
        from expstream.producer.writer import Writer

        settings = load_settings()
        writer = Writer(KafkaTransport(settings, settings.home / "spool"), settings)
        stream = writer.open_stream(uuid.uuid4().hex)
        writer.flush(timeout=60)

        durations: list[float] = []
        stop = threading.Event()

        def train() -> None:
            clock, log_metric, i = time.perf_counter, stream.log_metric, 0
            while not stop.is_set():
                start = clock()
                log_metric("loss", i, i * 0.25)
                durations.append(clock() - start)
                i += 1
                time.sleep(0.001)

        thread = threading.Thread(target=train, daemon=True)
        thread.start()
        time.sleep(1.0)
        provision.stop(["kafka"], state_path, keep_data=True)
        down_from = len(durations)
        time.sleep(args.outage)
        down_to = len(durations)
        provision.start(["kafka"], state_path)
        time.sleep(1.0)  # keep logging while the spool drains
        stop.set()
        thread.join()
        drained = time.monotonic()
        writer.flush(timeout=120)
        print(_line("log_metric, whole run", durations))
        print(_line(f"log_metric while the broker was down ({args.outage:g} s)", durations[down_from:down_to]))
        print(f"spool drained {time.monotonic() - drained:.2f} s after logging stopped")
        writer.close()
    finally:
        provision.stop(None, state_path)


if __name__ == "__main__":
    main()
