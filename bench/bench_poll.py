"""How long a source's ``poll`` takes: waiting out an empty log, and waking up for a record sent meanwhile.

The contract tests check what a poll returns; how fast is a figure, measured here and kept in
bench/README.md. Adapters: ``memory`` and ``local_log``, and ``kafka`` when ``EXPSTREAM_KAFKA`` is set.

    .venv/bin/python bench/bench_poll.py [--rounds 20] [--timeout 0.2] [--delay 0.1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from expstream.consumers.sources.pairs import ADAPTERS, NEEDS_SERVICES, open_pair
from expstream.eventlog.records import EVENTS


def measure(kind: str, rounds: int, timeout: float, delay: float) -> tuple[list[float], list[float]]:
    """``(empty poll durations, wake-up delays)``: seconds past ``timeout`` and past the send."""
    with tempfile.TemporaryDirectory(prefix="expstream-bench-poll-") as folder:
        transport, sources = open_pair(kind, Path(folder), partitions=4)
        source = sources()
        try:
            source.poll(timeout=0)  # a Kafka consumer joins its group here
            empty = []
            for _ in range(rounds):
                start = time.monotonic()
                source.poll(timeout=timeout)
                empty.append(time.monotonic() - start)
            wake = []
            for i in range(rounds):
                sent: list[float] = []

                def send(i: int = i, sent: list[float] = sent) -> None:
                    transport.send(EVENTS, "late", [f"hello {i}".encode()])
                    transport.flush()
                    sent.append(time.monotonic())

                timer = threading.Timer(delay, send)
                timer.start()
                got = source.poll(timeout=10)
                back = time.monotonic()
                timer.join()
                while not got:  # flushed just before the poll gave up
                    got = source.poll(timeout=10)
                    back = time.monotonic()
                wake.append(back - sent[0])
            return empty, wake
        finally:
            source.close()
            transport.close()


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    return f"median {statistics.median(ordered) * 1e3:.1f} ms, max {ordered[-1] * 1e3:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=0.2, help="seconds an empty poll waits")
    parser.add_argument("--delay", type=float, default=0.1, help="seconds before a record is sent during a poll")
    args = parser.parse_args()
    for kind in ADAPTERS:
        if kind in NEEDS_SERVICES and not os.environ.get("EXPSTREAM_KAFKA"):
            print(f"{kind}: skipped (set EXPSTREAM_KAFKA)")
            continue
        empty, wake = measure(kind, args.rounds, args.timeout, args.delay)
        print(
            f"{kind}: empty poll(timeout={args.timeout}) {_ms(empty)}; record sent during a poll → returned {_ms(wake)}"
        )


if __name__ == "__main__":
    main()
